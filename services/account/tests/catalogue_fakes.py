"""An in-memory stand-in for account.catalogue.store.CatalogueStore, with its unique `_id`s and
its conditional deletes (only the holder's attempt goes), for the catalogue's unit tests.
tests/integration/test_catalogue_store_contract.py holds it and the real store to the same
assertions."""

import copy


class FakeCatalogueStore:
    def __init__(self):
        self.collections: dict[str, dict[str, dict]] = {
            name: {} for name in ("items", "heads", "claims", "redemptions", "fulfilments", "open")
        }

    def _insert(self, name: str, doc: dict) -> bool:
        coll = self.collections[name]
        if doc["_id"] in coll:
            return False
        coll[doc["_id"]] = copy.deepcopy(doc)
        return True

    def _by_ids(self, name: str, ids, projection=None) -> dict:
        coll = self.collections[name]
        out = {}
        for i in dict.fromkeys(ids):
            if i in coll:
                doc = copy.deepcopy(coll[i])
                if projection:
                    doc = {k: v for k, v in doc.items() if k == "_id" or k in projection}
                out[i] = doc
        return out

    def ensure_indexes(self) -> None:
        pass

    # items
    def insert_head(self, item_id: str) -> bool:
        return self._insert("heads", {"_id": item_id, "version": 0})

    def head_hints(self, item_ids) -> dict[str, int]:
        return {i: d["version"] for i, d in self._by_ids("heads", item_ids).items()}

    def list_heads(self, after: str = "", limit: int = 0) -> list[str]:
        ids = sorted(i for i in self.collections["heads"] if i > after)
        return ids[:limit] if limit else ids

    def raise_heads(self, versions: dict[str, int]) -> None:
        for item_id, version in versions.items():
            head = self.collections["heads"].get(item_id)
            if head is not None:
                head["version"] = max(head["version"], version)

    def insert_version(self, doc: dict) -> bool:
        return self._insert("items", doc)

    def versions_by_ids(self, version_ids) -> dict:
        return self._by_ids("items", version_ids)

    def version(self, version_id: str) -> dict | None:
        return self._by_ids("items", [version_id]).get(version_id)

    # claims
    def claims_by_ids(self, claim_ids) -> dict:
        return self._by_ids("claims", claim_ids)

    def held(self, claim_ids) -> set[str]:
        return set(self._by_ids("claims", list(claim_ids)))

    def insert_claim(self, doc: dict) -> bool:
        return self._insert("claims", doc)

    def insert_claims(self, docs: list[dict]) -> set[int]:
        return {i for i, doc in enumerate(docs) if not self._insert("claims", doc)}

    def delete_claims(self, claim_ids, attempt: str) -> int:
        coll, n = self.collections["claims"], 0
        for claim_id in claim_ids:
            if claim_id in coll and coll[claim_id]["attempt"] == attempt:
                del coll[claim_id]
                n += 1
        return n

    # redemptions
    def insert_redemption(self, doc: dict) -> bool:
        return self._insert("redemptions", doc)

    def get_redemption(self, redemption_id: str):
        return self._by_ids("redemptions", [redemption_id]).get(redemption_id)

    def redemptions_by_ids(self, ids, projection=None) -> dict:
        return self._by_ids("redemptions", ids, projection)

    def delete_redemption(self, redemption_id: str, attempt: str) -> None:
        coll = self.collections["redemptions"]
        if redemption_id in coll and coll[redemption_id]["attempt"] == attempt:
            del coll[redemption_id]

    # fulfilments
    def decide(self, decision: dict) -> tuple[dict, bool]:
        created = self._insert("fulfilments", decision)
        return copy.deepcopy(self.collections["fulfilments"][decision["_id"]]), created

    def record_closed(self, closed: dict) -> None:
        self._insert("fulfilments", closed)

    def fulfilment_docs(self, ids) -> dict:
        return self._by_ids("fulfilments", ids)

    # open partner fulfilments
    def add_open(self, doc: dict) -> None:
        self._insert("open", doc)

    def unannounced(self, limit: int) -> list[dict]:
        return [copy.deepcopy(d) for d in self.collections["open"].values() if not d["announced"]][:limit]

    def due(self, now_iso: str, limit: int) -> list[dict]:
        return [copy.deepcopy(d) for d in self.collections["open"].values() if d["fulfil_by"] <= now_iso][:limit]

    def mark_announced(self, ids) -> None:
        for i in ids:
            if i in self.collections["open"]:
                self.collections["open"][i]["announced"] = True

    def drop_open(self, ids) -> None:
        for i in ids:
            self.collections["open"].pop(i, None)
