"""The enterprise collections (database carbon_account) — the only enterprise module that touches
MongoDB/FerretDB. Insert-only, every read by `_id` (one value or `$in`):

  enterprise_links          "<enterprise>:<employee>:<n>" the pair's link chain: n even a link
                            (with the employee's consent), n odd an unlink (account.enterprise.links)
  enterprise_link_requests  SM3("enterprise-link:<employee>:<request_key>") -> the request's
                            fingerprint: a key is used for one request only
  enterprise_members        "<employee>:<k>" -> {enterprise_id}: the enterprises an employee ever
                            linked to (the read model's way from a credit to its enterprises)
  enterprise_slots          "<enterprise>:<YYYY-MM>:<n>" -> {contributions: JSON text of [{entry_id,
                            scenario, pseudonym, grams}]}: one per (enterprise, month) a read-model
                            batch touched
  enterprise_contributions  _id = ledger entry id (a credit or a reversal) -> what it contributed,
                            per enterprise: written after its slots (redelivery writes nothing new)
  enterprise_meta           "pseudonym_key": the key of the per-enterprise pseudonyms when
                            ENTERPRISE_PSEUDONYM_KEY is not set (first writer wins)
"""

import secrets

import orjson

from carbon_common.mongo import find_by_ids, insert_new, json_text

COLLECTIONS = (
    "enterprise_links",
    "enterprise_link_requests",
    "enterprise_members",
    "enterprise_slots",
    "enterprise_contributions",
    "enterprise_meta",
)
IN_CHUNK = 5000


class EnterpriseStore:
    def __init__(self, database):
        self.db = database
        self.links = database["enterprise_links"]
        self.requests = database["enterprise_link_requests"]
        self.members = database["enterprise_members"]
        self.slots = database["enterprise_slots"]
        self.contributions = database["enterprise_contributions"]
        self.meta = database["enterprise_meta"]

    def ensure_indexes(self) -> None:
        pass  # `_id` only

    @staticmethod
    def _by_ids(collection, ids) -> dict[str, dict]:
        ids, out = list(dict.fromkeys(ids)), {}
        for start in range(0, len(ids), IN_CHUNK):
            out.update(find_by_ids(collection, ids[start : start + IN_CHUNK]))
        return out

    # links ------------------------------------------------------------------------------------
    def links_by_ids(self, ids) -> dict[str, dict]:
        return self._by_ids(self.links, ids)

    def insert_link(self, doc: dict) -> bool:
        """False if that chain position is taken (another request was first)."""
        return not insert_new(self.links, [doc])

    def get_request(self, request_id: str) -> dict | None:
        return self.requests.find_one({"_id": request_id})

    def insert_request(self, doc: dict) -> bool:
        return not insert_new(self.requests, [doc])

    def members_by_ids(self, ids) -> dict[str, dict]:
        return self._by_ids(self.members, ids)

    def insert_member(self, doc: dict) -> bool:
        return not insert_new(self.members, [doc])

    # the read model ----------------------------------------------------------------------------
    def slots_by_ids(self, ids) -> dict[str, dict]:
        found = self._by_ids(self.slots, ids)
        for doc in found.values():
            doc["contributions"] = orjson.loads(doc["contributions"])
        return found

    def slot_ids_among(self, ids) -> set[str]:
        """Which of these slots exist (`$in` by `_id`, ids only)."""
        return set(find_by_ids(self.slots, ids, {"_id": 1}))

    def insert_slots(self, docs: list[dict]) -> set[int]:
        """One unordered insert -> the indexes of the docs whose slot was taken already. The
        contributions are stored as one JSON string (FerretDB reads and writes a string several
        times faster than an array of documents)."""
        return insert_new(self.slots, [{**d, "contributions": json_text(d["contributions"])} for d in docs])

    def contributions_by_ids(self, ids) -> dict[str, dict]:
        return self._by_ids(self.contributions, ids)

    def insert_contributions(self, docs: list[dict]) -> None:
        insert_new(self.contributions, docs)  # a duplicate is the same document, written before

    # the pseudonym key ----------------------------------------------------------------------------
    def pseudonym_key(self) -> bytes:
        """The stored key (32 random bytes), made by the first process that asks."""
        insert_new(self.meta, [{"_id": "pseudonym_key", "hex": secrets.token_hex(32)}])
        return bytes.fromhex(self.meta.find_one({"_id": "pseudonym_key"})["hex"])
