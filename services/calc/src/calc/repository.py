"""The only module that touches MongoDB (database carbon_calc).

Insert-only with deterministic _ids (FerretDB v1 has no transactions and non-atomic updates):
  reductions  _id = reduction_id         ReductionCalculated payload + the BehaviourReceived it came from
  rejections  _id = record_key:revision  BehaviourRejected payload + the record
  reversals   _id = reversed reduction_id   ReductionReversed payload (a reduction is reversed at most once)
  locks       _id = reduction_id         registered at the exchange: never recalculated
A duplicate-key error on insert means "already stored": the stored document wins.
"""
import datetime
from typing import Any, Iterable, Iterator, Mapping

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from carbon_common.mongo import is_duplicate_key


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class CalcRepository:
    def __init__(self, db: Database):
        self.db = db
        self.reductions = db["reductions"]
        self.rejections = db["rejections"]
        self.reversals = db["reversals"]
        self.locks = db["locks"]

    def ensure_indexes(self) -> None:
        self.reductions.create_index([("methodology_id", ASCENDING), ("methodology_version", ASCENDING)])
        self.reductions.create_index([("factor_set_id", ASCENDING), ("factor_set_version", ASCENDING)])
        self.reductions.create_index([("record_key", ASCENDING)])

    def _insert(self, collection, doc: dict) -> tuple[dict, bool]:
        """Insert; on duplicate _id return the stored document. -> (document, inserted)."""
        try:
            collection.insert_one(doc)
            return doc, True
        except DuplicateKeyError:
            stored = collection.find_one({"_id": doc["_id"]})
            if stored is None:  # vanished between the two calls: cannot happen insert-only
                raise
            return stored, False

    # reductions -------------------------------------------------------------
    def save_reduction(self, payload: Mapping[str, Any], record: Mapping[str, Any]) -> tuple[dict, bool]:
        doc = {"_id": payload["reduction_id"], "payload": dict(payload), "record": dict(record),
               "record_key": payload["record_key"], "revision": payload["revision"],
               "methodology_id": payload["methodology_id"], "methodology_version": payload["methodology_version"],
               "factor_set_id": payload["factor_set_id"], "factor_set_version": payload["factor_set_version"],
               "stored_at": _now()}
        return self._insert(self.reductions, doc)

    def reduction(self, reduction_id: str) -> dict | None:
        return self.reductions.find_one({"_id": reduction_id})

    def pinned_to(self, kind: str, item_id: str, version: str) -> Iterator[dict]:
        """Reductions computed with methodology (kind="methodology") or factor set version."""
        prefix = "methodology" if kind == "methodology" else "factor_set"
        return self.reductions.find({f"{prefix}_id": item_id, f"{prefix}_version": version},
                                    sort=[("_id", ASCENDING)], batch_size=500)

    def count_pinned_to(self, kind: str, item_id: str, version: str) -> int:
        prefix = "methodology" if kind == "methodology" else "factor_set"
        return self.reductions.count_documents({f"{prefix}_id": item_id, f"{prefix}_version": version})

    # rejections -------------------------------------------------------------
    def save_rejection(self, payload: Mapping[str, Any], record: Mapping[str, Any], revision: int = 0) -> tuple[dict, bool]:
        doc = {"_id": f"{payload['record_key']}:{revision}", "payload": dict(payload), "record": dict(record),
               "record_key": payload["record_key"], "revision": revision, "stored_at": _now()}
        return self._insert(self.rejections, doc)

    def rejection(self, record_key: str, revision: int = 0) -> dict | None:
        return self.rejections.find_one({"_id": f"{record_key}:{revision}"})

    # reversals and locks ------------------------------------------------------
    def save_reversal(self, payload: Mapping[str, Any]) -> tuple[dict, bool]:
        return self._insert(self.reversals, {"_id": payload["reduction_id"], "payload": dict(payload),
                                             "stored_at": _now()})

    def is_reversed(self, reduction_id: str) -> bool:
        return self.reversals.count_documents({"_id": reduction_id}, limit=1) > 0

    def lock(self, reduction_ids: Iterable[str], batch_id: str) -> int:
        """Record reductions registered at the exchange. Idempotent; returns how many were new."""
        docs = [{"_id": rid, "batch_id": batch_id, "locked_at": _now()} for rid in dict.fromkeys(reduction_ids)]
        if not docs:
            return 0
        try:
            return len(self.locks.insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            if not is_duplicate_key(exc):
                raise
            return exc.details.get("nInserted", 0)

    def is_locked(self, reduction_id: str) -> bool:
        return self.locks.count_documents({"_id": reduction_id}, limit=1) > 0
