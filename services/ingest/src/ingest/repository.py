"""The only module that touches MongoDB (the service's own database, default carbon_ingest).

FerretDB v1 has no transactions and non-atomic updates, so every concurrency-relevant write is
an insert with a unique key: receipts (_id = record key, unique partner_id+partner_record_id),
nonces (_id = partner:nonce), rate-limit slots (_id = partner:window:slot), consents
(_id = consent id). Updates are only used for admin state and idempotent state flips.
"""
import logging
import random
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from carbon_common.mongo import is_duplicate_key

log = logging.getLogger(__name__)
PURGE_PROBABILITY = 0.005


class Duplicate(Exception):
    """An insert hit a unique key: someone else got there first."""


class Repository:
    def __init__(self, db):
        self.db = db
        self.partners = db["partners"]
        self.keys = db["keys"]
        self.consents = db["consents"]
        self.nonces = db["nonces"]
        self.receipts = db["receipts"]
        self.rate_slots = db["rate_slots"]
        self.deletions = db["deletions"]
        self.published = db["published"]
        self.unpublished = db["unpublished"]

    def ensure_indexes(self) -> None:
        self.receipts.create_index([("partner_id", ASCENDING), ("partner_record_id", ASCENDING)],
                                   unique=True, name="partner_record_unique")
        self.keys.create_index([("partner_id", ASCENDING)], name="partner")
        self.consents.create_index([("partner_id", ASCENDING), ("user_pid", ASCENDING)], name="partner_user")
        self.consents.create_index([("user_pid", ASCENDING)], name="user")
        self.unpublished.create_index([("created_at", ASCENDING)], name="created_at")
        for coll in (self.nonces, self.rate_slots):
            try:  # MongoDB expires them itself; purge_expired covers servers without TTL support
                coll.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl")
            except OperationFailure:
                coll.create_index([("expires_at", ASCENDING)], name="expires_at")

    def ping(self) -> None:
        self.db.command("ping")

    @staticmethod
    def _insert(coll, doc) -> None:
        try:
            coll.insert_one(doc)
        except DuplicateKeyError as exc:
            raise Duplicate(str(exc)) from None
        except OperationFailure as exc:
            if is_duplicate_key(exc):
                raise Duplicate(str(exc)) from None
            raise

    # ---- partners and keys -------------------------------------------------------------
    def insert_partner(self, doc) -> None:
        self._insert(self.partners, doc)

    def get_partner(self, partner_id):
        return self.partners.find_one({"_id": partner_id})

    def partner_ids(self) -> list:
        return [d["_id"] for d in self.partners.find({}, {"_id": 1}).sort("_id", ASCENDING)]

    def set_partner_fields(self, partner_id, fields) -> None:
        self.partners.update_one({"_id": partner_id}, {"$set": fields})

    def insert_key(self, doc) -> None:
        self._insert(self.keys, doc)

    def get_key(self, key_id):
        return self.keys.find_one({"_id": key_id})

    def partner_keys(self, partner_id):
        return list(self.keys.find({"partner_id": partner_id}).sort("created_at", ASCENDING))

    def set_key_fields(self, key_id, fields) -> None:
        self.keys.update_one({"_id": key_id}, {"$set": fields})

    # ---- nonces and rate limits ----------------------------------------------------------
    def nonce_seen(self, partner_id, nonce, now: datetime) -> bool:
        doc = self.nonces.find_one({"_id": f"{partner_id}:{nonce}"})
        return bool(doc) and doc["expires_at"] > now

    def consume_nonce(self, partner_id, nonce, now: datetime, ttl: timedelta) -> bool:
        """True if this call consumed the nonce; False if it was already used."""
        key = f"{partner_id}:{nonce}"
        self._maybe_purge(now)
        for _ in range(2):
            try:
                self._insert(self.nonces, {"_id": key, "expires_at": now + ttl})
                return True
            except Duplicate:
                doc = self.nonces.find_one({"_id": key})
                if doc and doc["expires_at"] > now:
                    return False
                self.nonces.delete_one({"_id": key, "expires_at": {"$lte": now}})
        return False

    def take_rate_slot(self, partner_id, window: int, limit: int, expires_at: datetime) -> bool:
        """Claim one of `limit` slots of this window; inserts make it exact across workers."""
        prefix = f"{partner_id}:{window}:"
        used = self.rate_slots.count_documents({"partner_id": partner_id, "window": window})
        for slot in range(used, limit):
            try:
                self._insert(self.rate_slots, {"_id": f"{prefix}{slot}", "partner_id": partner_id,
                                               "window": window, "expires_at": expires_at})
                return True
            except Duplicate:
                continue
        return False

    def _maybe_purge(self, now: datetime) -> None:
        if random.random() < PURGE_PROBABILITY:
            self.purge_expired(now)

    def purge_expired(self, now: datetime) -> None:
        for coll in (self.nonces, self.rate_slots):
            coll.delete_many({"expires_at": {"$lt": now}})

    # ---- consents ---------------------------------------------------------------------
    def insert_consent(self, doc) -> None:
        self._insert(self.consents, doc)

    def get_consent(self, consent_id):
        return self.consents.find_one({"_id": consent_id})

    def consents_for(self, partner_id, user_pids):
        return list(self.consents.find({"partner_id": partner_id, "user_pid": {"$in": list(user_pids)},
                                        "revoked_at": None}))

    def user_consents(self, user_pid):
        return list(self.consents.find({"user_pid": user_pid}))

    def set_consent_fields(self, consent_id, fields) -> None:
        self.consents.update_one({"_id": consent_id}, {"$set": fields})

    def insert_deletion(self, doc) -> bool:
        try:
            self._insert(self.deletions, doc)
            return True
        except Duplicate:
            return False

    def get_deletion(self, user_pid):
        return self.deletions.find_one({"_id": user_pid})

    def set_deletion_published(self, user_pid) -> None:
        self.deletions.update_one({"_id": user_pid}, {"$set": {"published": True}})

    # ---- receipts ---------------------------------------------------------------------
    # A receipt is "published" once a marker with its _id exists in `published`: inserting
    # markers in bulk is ~100x cheaper on FerretDB than updating receipts one by one.
    # `unpublished` holds a hint per receipt that may still need publishing, written *before*
    # the receipt and removed once it is published: the relay reads this small collection
    # instead of scanning every receipt (FerretDB v1 would scan the whole collection).
    @staticmethod
    def _insert_new(coll, docs) -> set:
        """Insert what is new; return the indexes (into docs) that already existed."""
        if not docs:
            return set()
        try:
            coll.insert_many(docs, ordered=False)
            return set()
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            return {e["index"] for e in errors}

    def insert_receipts(self, docs) -> set:
        """Insert what is new; return the indexes (into docs) that already existed."""
        return self._insert_new(self.receipts, docs)

    def get_receipt(self, record_key):
        return self.receipts.find_one({"_id": record_key})

    def mark_published(self, record_keys, at: datetime) -> None:
        self._insert_new(self.published, [{"_id": key, "at": at} for key in record_keys])

    def is_published(self, record_key) -> bool:
        return self.published.find_one({"_id": record_key}, {"_id": 1}) is not None

    def receipt_state(self, record_key) -> str | None:
        if self.get_receipt(record_key) is None:
            return None
        return "published" if self.is_published(record_key) else "pending"

    def note_unpublished(self, record_keys, at: datetime, traceparent: str = "") -> None:
        """Hints for the relay (an existing hint keeps its older created_at)."""
        self._insert_new(self.unpublished, [{"_id": key, "created_at": at, "traceparent": traceparent}
                                            for key in record_keys])

    def clear_unpublished(self, record_keys) -> None:
        if record_keys:
            self.unpublished.delete_many({"_id": {"$in": list(record_keys)}})

    def unpublished_before(self, cutoff: datetime, limit: int) -> list:
        return list(self.unpublished.find({"created_at": {"$lt": cutoff}}).sort("created_at", ASCENDING).limit(limit))

    def count_unpublished(self) -> int:
        return self.unpublished.count_documents({})
