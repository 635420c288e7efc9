"""An in-memory stand-in for account.enterprise.store.EnterpriseStore, with its unique `_id`s,
for the enterprise unit tests; it counts the reads and writes each collection gets.
tests/integration/test_enterprise_store_contract.py holds it and the real store to the same
assertions."""

import copy
from collections import Counter


class FakeEnterpriseStore:
    NAMES = ("links", "requests", "members", "slots", "contributions", "meta")

    def __init__(self):
        self.collections: dict[str, dict[str, dict]] = {name: {} for name in self.NAMES}
        self.reads: Counter = Counter()
        self.writes: Counter = Counter()
        self.fail_next: dict[str, Exception] = {}

    def _maybe_fail(self, method: str) -> None:
        exc = self.fail_next.pop(method, None)
        if exc is not None:
            raise exc

    def _insert(self, name: str, doc: dict) -> bool:
        self.writes[name] += 1
        coll = self.collections[name]
        if doc["_id"] in coll:
            return False
        coll[doc["_id"]] = copy.deepcopy(doc)
        return True

    def _by_ids(self, name: str, ids) -> dict:
        self.reads[name] += 1
        coll = self.collections[name]
        return {i: copy.deepcopy(coll[i]) for i in dict.fromkeys(ids) if i in coll}

    def ensure_indexes(self) -> None:
        pass

    def links_by_ids(self, ids) -> dict:
        return self._by_ids("links", ids)

    def insert_link(self, doc: dict) -> bool:
        self._maybe_fail("insert_link")
        return self._insert("links", doc)

    def get_request(self, request_id: str) -> dict | None:
        return self._by_ids("requests", [request_id]).get(request_id)

    def insert_request(self, doc: dict) -> bool:
        return self._insert("requests", doc)

    def members_by_ids(self, ids) -> dict:
        return self._by_ids("members", ids)

    def insert_member(self, doc: dict) -> bool:
        return self._insert("members", doc)

    def slots_by_ids(self, ids) -> dict:
        return self._by_ids("slots", ids)

    def slot_ids_among(self, ids) -> set[str]:
        return set(self._by_ids("slots", ids))

    def insert_slots(self, docs: list[dict]) -> set[int]:
        self._maybe_fail("insert_slots")
        return {i for i, doc in enumerate(docs) if not self._insert("slots", doc)}

    def contributions_by_ids(self, ids) -> dict:
        return self._by_ids("contributions", ids)

    def insert_contributions(self, docs: list[dict]) -> None:
        self._maybe_fail("insert_contributions")
        for doc in docs:
            self._insert("contributions", doc)

    def pseudonym_key(self) -> bytes:
        self._insert("meta", {"_id": "pseudonym_key", "hex": "ab" * 32})
        return bytes.fromhex(self.collections["meta"]["pseudonym_key"]["hex"])
