"""The bridge's own database (the only Mongo code). Insert-only: FerretDB has no transactions
and non-atomic updates, so every state change is an insert against a unique key.

claims       {_id: claim_id, claimed_at}                 one per attempt to form a batch
items        {_id: entry_id, entry_id (unique), claim_id, grams, entry_hash, posted_at}
             an entry can be claimed once, ever: at most one batch, even with two bridges
batches      {_id: batch_id, claim_id (unique), batch, signature, public_key, entry_ids}
             a claim forms at most one batch, built only from that claim's items
submissions  {_id: batch_id, serial_start, serial_end, status, registered_at}  exchange answer
published    {_id: batch_id, published_at}               exchange_batch_registered confirmed
progress     {_id: "pool", seq}   the pool's seq up to which every credit is claimed: a hint
             that only saves reading (a stale value re-reads entries found claimed)
"""

from pymongo import ASCENDING

from carbon_common.mongo import insert_new, insert_or_get


class Repository:
    def __init__(self, db):
        self.db = db
        self.claims, self.items, self.batches = db["claims"], db["items"], db["batches"]
        self.submissions, self.published = db["submissions"], db["published"]
        self.progress = db["progress"]

    def ensure_indexes(self) -> None:
        self.items.create_index([("entry_id", ASCENDING)], unique=True, name="entry_id_unique")
        self.items.create_index([("claim_id", ASCENDING)], name="claim_id")
        self.batches.create_index([("claim_id", ASCENDING)], unique=True, name="claim_id_unique")

    # watermark
    def watermark(self) -> int:
        doc = self.progress.find_one({"_id": "pool"})
        return int(doc["seq"]) if doc else 0

    def advance_watermark(self, seq: int) -> None:
        self.progress.update_one({"_id": "pool"}, {"$max": {"seq": int(seq)}}, upsert=True)

    # claiming
    def claimed_ids(self, entry_ids: list[str]) -> set[str]:
        found = self.items.find({"_id": {"$in": list(entry_ids)}}, {"_id": 1})
        return {doc["_id"] for doc in found}

    def open_claim(self, claim_id: str, claimed_at: str) -> None:
        self.claims.insert_one({"_id": claim_id, "claimed_at": claimed_at})

    def claim_items(self, items: list[dict]) -> None:
        """Insert every item; those another claim holds already stay with it (duplicate key)."""
        insert_new(self.items, items)

    def items_of_claim(self, claim_id: str) -> list[dict]:
        return list(self.items.find({"claim_id": claim_id}))

    def claims_without_batch(self, claimed_before: str) -> list[str]:
        """Claims whose forming process died before inserting their batch (recovery)."""
        old = [doc["_id"] for doc in self.claims.find({"claimed_at": {"$lt": claimed_before}}, {"_id": 1})]
        formed = {doc["claim_id"] for doc in self.batches.find({"claim_id": {"$in": old}}, {"claim_id": 1})}
        return [claim for claim in old if claim not in formed]

    # batches and their fate
    def insert_batch(self, doc: dict) -> dict:
        """The stored batch of doc's claim: doc, or the one another instance stored first."""
        return insert_or_get(self.batches, doc, also_unique=("claim_id",))[0]

    def unsubmitted_batches(self) -> list[dict]:
        done = {doc["_id"] for doc in self.submissions.find({}, {"_id": 1})}
        return [doc for doc in self.batches.find({}) if doc["_id"] not in done]

    def record_submission(self, batch_id: str, result: dict) -> dict:
        doc = {
            "_id": batch_id,
            **{k: result[k] for k in ("serial_start", "serial_end", "status")},
            "registered_at": result["registered_at"],
        }
        return insert_or_get(self.submissions, doc)[0]

    def unpublished(self) -> list[tuple[dict, dict]]:
        """(batch, submission) pairs whose event is not confirmed yet."""
        sent = {doc["_id"] for doc in self.published.find({}, {"_id": 1})}
        pending = [doc for doc in self.submissions.find({}) if doc["_id"] not in sent]
        batches = {doc["_id"]: doc for doc in self.batches.find({"_id": {"$in": [s["_id"] for s in pending]}})}
        return [(batches[s["_id"]], s) for s in pending if s["_id"] in batches]

    def mark_published(self, batch_id: str, published_at: str) -> None:
        insert_new(self.published, [{"_id": batch_id, "published_at": published_at}])  # a repeat: same fact
