"""Receipts and what says whether each was published (collections `receipts`, `unpublished`,
`published`).

A receipt is stored once: `_id` = record key, SM3(partner_id:partner_record_id), so the pair is
unique through it (a second unique index only slowed every insert) and an existing receipt
wins over a replay. `unpublished` holds hints of receipts that may still need publishing: one
per request, listing its record keys, written *before* the receipts and deleted once the
request's publish is confirmed. Each receipt carries the id of the hint it was stored under
(`hint`): it is pending while that hint exists, published once it is gone, so publishing
writes no per-record marker (a hint is one document per request; a 100-document insert costs
FerretDB ~13 ms of CPU, one document ~3 ms). The relay reads this small collection instead of
scanning every receipt (FerretDB v1 would scan the whole collection).
Receipts stored by earlier versions have no `hint`: a marker in `published` (`_id` = record
key) says they are published; only such receipts still get one. Hints written by earlier
versions (one per record, `_id` = record key, no `keys`) are still read.
"""

import uuid
from datetime import datetime

from pymongo import ASCENDING

from carbon_common.mongo import (
    create_query_index,
    find_by_ids,
    from_json_body,
    insert_new,
    insert_or_get_many,
    json_text,
)

# A receipt is read only by `_id`, so it is stored as these fields plus one JSON string (`body`)
# with the rest: FerretDB pays per stored field, nested documents most (the receipt's
# `activity`); receipts written before 2026-11-30 are whole documents and are read as they are.
RECEIPT_FIELDS = ("_id", "hint", "created_at")


def _receipt_to_doc(receipt: dict) -> dict:
    doc = {k: receipt[k] for k in RECEIPT_FIELDS if k in receipt}
    doc["body"] = json_text({k: v for k, v in receipt.items() if k not in RECEIPT_FIELDS})
    return doc


def _doc_to_receipt(doc: dict | None) -> dict | None:
    return from_json_body(doc, "body", RECEIPT_FIELDS)


class ReceiptStore:
    def __init__(self, db):
        self.receipts = db["receipts"]
        self.published = db["published"]
        self.unpublished = db["unpublished"]

    def create_indexes(self) -> None:
        create_query_index(self.unpublished, [("created_at", ASCENDING)], "created_at")

    def store_receipts(self, docs, hint_id: str) -> list:
        """[(stored receipt, inserted now)] in order: an existing one (same record key) wins.
        New ones are stored under `hint_id`. The record key is SM3(partner_id:partner_record_id),
        so the second unique index is only ever hit together with `_id`."""
        receipts = [{**doc, "hint": hint_id} for doc in docs]
        stored = insert_or_get_many(self.receipts, [_receipt_to_doc(r) for r in receipts])
        # a new one is the receipt itself: only those stored before are decoded
        return [(r, True) if new else (_doc_to_receipt(doc), False) for r, (doc, new) in zip(receipts, stored)]

    def get_receipt(self, record_key):
        return _doc_to_receipt(self.receipts.find_one({"_id": record_key}))

    def get_receipts(self, record_keys) -> dict:
        return {k: _doc_to_receipt(d) for k, d in find_by_ids(self.receipts, record_keys).items()}

    def pending_among(self, receipts) -> tuple[set, dict]:
        """Which of these stored receipts still await a confirmed publish: (their record keys,
        {id: record keys} of the live hints tracking them). `_id` lookups only: one `$in` over
        their hints (mostly misses, which FerretDB answers almost for free), and one over the
        legacy markers only if a receipt predates hints."""
        live = {
            doc["_id"]: self.hint_keys(doc)
            for doc in find_by_ids(self.unpublished, [r["hint"] for r in receipts if "hint" in r], {"keys": 1}).values()
        }
        legacy_published = self.published_among([r["_id"] for r in receipts if "hint" not in r])
        pending = {
            r["_id"] for r in receipts if (r["hint"] in live if "hint" in r else r["_id"] not in legacy_published)
        }
        return pending, live

    def mark_published(self, receipts, at: datetime) -> None:
        """Legacy markers, for receipts stored before hints (no `hint`) once their publish is
        confirmed; receipts with a hint need none."""
        insert_new(self.published, [{"_id": r["_id"], "at": at} for r in receipts if "hint" not in r])

    def published_among(self, record_keys) -> set:
        """Record keys with a legacy marker (receipts stored before hints)."""
        return set(find_by_ids(self.published, record_keys, {"_id": 1}))

    def receipt_state(self, record_key) -> str | None:
        """The record status: "published", "pending" (stored, publish not yet confirmed) or None."""
        receipt = self.get_receipt(record_key)
        if receipt is None:
            return None
        return "pending" if self.pending_among([receipt])[0] else "published"

    # ---- relay hints ---------------------------------------------------------------------------
    def note_unpublished(self, record_keys, at: datetime, traceparent: str = "") -> str:
        """One hint for the relay listing these record keys; -> its id."""
        hint_id = "h_" + uuid.uuid4().hex
        self.unpublished.insert_one(
            {"_id": hint_id, "keys": list(record_keys), "created_at": at, "traceparent": traceparent}
        )
        return hint_id

    @staticmethod
    def hint_keys(hint: dict) -> list:
        return hint["keys"] if "keys" in hint else [hint["_id"]]

    def clear_unpublished(self, hint_ids) -> None:
        if hint_ids:
            self.unpublished.delete_many({"_id": {"$in": list(hint_ids)}})

    def unpublished_before(self, cutoff: datetime, limit: int) -> list:
        return list(self.unpublished.find({"created_at": {"$lt": cutoff}}).sort("created_at", ASCENDING).limit(limit))

    def count_unpublished(self) -> int:
        """Record keys in hints (records in flight or stuck): reads the whole, small collection."""
        return sum(len(self.hint_keys(h)) for h in self.unpublished.find({}, {"keys": 1}))
