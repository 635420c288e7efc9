"""The only module that touches MongoDB (the service's own database, default carbon_ingest).

FerretDB v1 has no transactions and non-atomic updates, so every concurrency-relevant write is
an insert with a unique key: receipts (_id = record key, unique partner_id+partner_record_id),
nonces (_id = partner:nonce), rate-limit slots (_id = partner:window:slot), consents
(_id = consent id), consent index slots (_id = partner:user_pid:n), consent revocations
(_id = consent id). Updates are only used for admin state and idempotent state flips.

FerretDB v1 answers only `_id` lookups from an index (single value or `$in`); any other filter
reads the whole collection. So every query a signed request sends is an `_id` lookup
(tests/integration/test_ingest_hot_path_queries.py proves it); scans are left to the admin API,
deletion requests and the relay's timer work on small collections.
"""

import itertools
import logging
import threading
import uuid
from collections import OrderedDict
from datetime import datetime, timedelta

import pymongo
from pymongo import ASCENDING
from pymongo.errors import OperationFailure, PyMongoError

from carbon_common.mongo import (
    create_query_index,
    find_by_ids,
    from_json_body,
    insert_new,
    insert_or_get_many,
    json_text,
)

log = logging.getLogger(__name__)

CONSENT_SLOTS_PER_READ = 2  # index slots read per (partner, customer) and round: most have one consent
RATE_SLOTS_PER_READ = 32  # rate-limit slots probed per `$in`
SLOT_CACHE_SIZE = 50_000  # (partner, customer) chains of consent slots kept per process
CONSENT_INDEX_READY = "consent_index_ready"


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


class Duplicate(Exception):
    """An insert hit a unique key: someone else got there first."""


class _LRU:
    """A small thread-safe least-recently-used map (for immutable values only)."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def consent_slot_id(partner_id: str, user_pid: str, n: int) -> str:
    """Partner ids are [a-z0-9_-] and user_pids hex, so ':' separates unambiguously."""
    return f"{partner_id}:{user_pid}:{n}"


class Repository:
    def __init__(self, db):
        self.db = db
        self.partners = db["partners"]
        self.keys = db["keys"]
        self.consents = db["consents"]
        self.consent_index = db["consent_index"]
        self.consent_revocations = db["consent_revocations"]
        self.meta = db["meta"]
        self.nonces = db["nonces"]
        self.receipts = db["receipts"]
        self.rate_slots = db["rate_slots"]
        self.deletions = db["deletions"]
        self.published = db["published"]
        self.unpublished = db["unpublished"]
        self._rate_hints = {}  # (partner_id, window) -> lowest slot that may be free (this process)
        self._rate_lock = threading.Lock()
        self._consent_index_ready = False
        self._indexed = False
        self._slot_cache = _LRU(SLOT_CACHE_SIZE)  # (partner_id, user_pid) -> its slots read so far

    def ensure_indexes_once(self) -> bool:
        """True once the indexes exist. A worker booting during a store outage must not die (its
        master would exit and take ingest down): it serves 503 until this succeeds."""
        if not self._indexed:
            try:
                with pymongo.timeout(2):
                    self.ensure_indexes()
            except PyMongoError:
                return False
        return True

    def ensure_indexes(self) -> None:
        # Receipts need no index beyond _id: it is SM3(partner_id:partner_record_id), so the pair
        # is unique through it (a second unique index only slowed every insert).
        create_query_index(self.keys, [("partner_id", ASCENDING)], "partner")
        create_query_index(self.consents, [("user_pid", ASCENDING)], "user")
        create_query_index(self.unpublished, [("created_at", ASCENDING)], "created_at")
        for coll in (self.nonces, self.rate_slots):
            try:  # MongoDB expires them itself; purge_expired (run by the relay) covers FerretDB
                coll.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl")
            except OperationFailure:
                create_query_index(coll, [("expires_at", ASCENDING)], "expires_at")
        if not self.consent_index_ready() and self.consents.find_one({}, {"_id": 1}) is None:
            self.mark_consent_index_ready()  # a new database: nothing to backfill
        self._indexed = True

    def ping(self) -> None:
        with pymongo.timeout(2):  # readiness answers within the probe's timeout
            self.db.command("ping")

    @staticmethod
    def _insert(coll, doc) -> None:
        """Insert one document; Duplicate if its unique key is taken (carbon_common.mongo)."""
        if insert_new(coll, [doc]):
            raise Duplicate(f"{coll.name} {doc['_id']}")

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
        for _ in range(2):
            try:
                self._insert(self.nonces, {"_id": key, "expires_at": now + ttl})
                return True
            except Duplicate:
                doc = self.nonces.find_one({"_id": key})
                if doc and doc["expires_at"] > now:
                    return False
                # expired, not yet purged: only an expired one goes (an _id lookup, then a check)
                self.nonces.delete_one({"_id": key, "expires_at": {"$lte": now}})
        return False

    def take_rate_slot(self, partner_id, window: int, limit: int, expires_at: datetime) -> bool:
        """Claim one of `limit` slots of this window; unique inserts make it exact across workers.

        The first free slot is found with `$in` reads by `_id` (never a count, which FerretDB
        answers with a scan), starting from where this process last found one."""
        prefix = f"{partner_id}:{window}:"
        hint_key = (partner_id, window)
        start = self._rate_hints.get(hint_key, 0)
        while start < limit:
            ids = [f"{prefix}{n}" for n in range(start, min(start + RATE_SLOTS_PER_READ, limit))]
            taken = find_by_ids(self.rate_slots, ids, {"_id": 1})
            for n, slot_id in enumerate(ids, start):
                if slot_id in taken:
                    continue
                try:
                    self._insert(
                        self.rate_slots,
                        {"_id": slot_id, "partner_id": partner_id, "window": window, "expires_at": expires_at},
                    )
                except Duplicate:
                    continue
                self._set_rate_hint(hint_key, n + 1)
                return True
            start += len(ids)
            self._set_rate_hint(hint_key, start)
        return False

    def _set_rate_hint(self, hint_key, slot: int) -> None:
        partner_id, window = hint_key
        with self._rate_lock:
            for stale in [k for k in self._rate_hints if k[0] == partner_id and k[1] < window]:
                del self._rate_hints[stale]
            self._rate_hints[hint_key] = max(slot, self._rate_hints.get(hint_key, 0))

    def purge_expired(self, now: datetime) -> int:
        """Timer work for servers without TTL indexes (FerretDB): a scan, so never per request."""
        return sum(
            coll.delete_many({"expires_at": {"$lt": now}}).deleted_count for coll in (self.nonces, self.rate_slots)
        )

    # ---- consents ---------------------------------------------------------------------
    # Intake needs "the live consents of these customers for this partner". A filter on
    # (partner_id, user_pid) is a scan on FerretDB, so each consent is also listed in an
    # insert-only index: slots 0, 1, 2, … of (partner_id, user_pid), each holding one consent's
    # id and immutable terms (scenarios, granted_at, expires_at: a consent's content never
    # changes). Revocation, the one thing that does change, is an insert-only marker with the
    # consent id as `_id`, written before the consent document is updated. Intake reads slots
    # and markers by `_id` (`$in`; markers are mostly misses, which FerretDB answers almost for
    # free). A process keeps only the immutable slots it has read, never a marker or the end of
    # a chain, so a revocation or a new consent counts at once in every process.
    def insert_consent(self, doc) -> None:
        self._insert(self.consents, doc)

    def get_consent(self, consent_id):
        return self.consents.find_one({"_id": consent_id})

    def index_consent(self, consent: dict) -> None:
        """List `consent` in its (partner, customer) index, once (idempotent; safe to repeat)."""
        partner_id, user_pid, consent_id = consent["partner_id"], consent["user_pid"], consent["_id"]
        n = 0
        while True:
            ids = [consent_slot_id(partner_id, user_pid, i) for i in range(n, n + CONSENT_SLOTS_PER_READ)]
            slots = find_by_ids(self.consent_index, ids, {"consent_id": 1})
            if any(s["consent_id"] == consent_id for s in slots.values()):
                return
            free = next((slot_id for slot_id in ids if slot_id not in slots), None)
            if free is None:
                n += CONSENT_SLOTS_PER_READ
                continue
            try:
                self._insert(
                    self.consent_index,
                    {
                        "_id": free,
                        "consent_id": consent_id,
                        **{name: consent[name] for name in ("scenarios", "granted_at", "expires_at")},
                    },
                )
                return
            except Duplicate:
                continue  # another consent of this customer took the slot: read again

    def note_revoked(self, consent_id: str, at: datetime) -> None:
        """Intake refuses the consent from now on (insert-only; a repeat keeps the first)."""
        insert_new(self.consent_revocations, [{"_id": consent_id, "revoked_at": at}])

    def consents_for(self, partner_id, user_pids) -> list:
        """Unrevoked consents of these customers for this partner (their `_id`, `user_pid`,
        scenarios, granted_at, expires_at): `_id` lookups only.

        Slots are immutable and a chain has no holes (each consent takes the first free slot),
        so the slots this process has already read are kept (`_slot_cache`); every request
        still reads the slot positions after them (misses, unless a consent was added) and the
        revocation markers, so nothing that can change is ever taken from memory."""
        user_pids = list(user_pids)
        if not user_pids:
            return []
        if not self.consent_index_ready():
            log.warning("consent index not backfilled yet (the relay does it): scanning consents")
            return list(
                self.consents.find({"partner_id": partner_id, "user_pid": {"$in": user_pids}, "revoked_at": None})
            )
        chains = {pid: list(self._slot_cache.get((partner_id, pid), ())) for pid in user_pids}
        pending = user_pids
        while pending:  # rounds of `$in` until each customer's chain ends at a free slot
            windows = {
                pid: [
                    consent_slot_id(partner_id, pid, i)
                    for i in range(len(chains[pid]), len(chains[pid]) + CONSENT_SLOTS_PER_READ)
                ]
                for pid in pending
            }
            slots = find_by_ids(self.consent_index, [sid for window in windows.values() for sid in window])
            pending = []
            for pid, window in windows.items():
                new = list(itertools.takewhile(slots.__contains__, window))
                if new:
                    chains[pid].extend(slots[sid] for sid in new)
                    self._slot_cache.put((partner_id, pid), tuple(chains[pid]))
                if len(new) == len(window):
                    pending.append(pid)
        listed = [
            {**slot, "_id": slot["consent_id"], "user_pid": pid, "revoked_at": None}
            for pid, chain in chains.items()
            for slot in chain
        ]
        revoked = find_by_ids(self.consent_revocations, [c["_id"] for c in listed], {"_id": 1})
        return [c for c in listed if c["_id"] not in revoked]

    def consent_index_ready(self) -> bool:
        """Every consent is listed in the index (a marker, written once by the backfill)."""
        if not self._consent_index_ready:
            self._consent_index_ready = self.meta.find_one({"_id": CONSENT_INDEX_READY}) is not None
        return self._consent_index_ready

    def mark_consent_index_ready(self) -> None:
        insert_new(self.meta, [{"_id": CONSENT_INDEX_READY}])
        self._consent_index_ready = True

    def backfill_consent_index(self) -> int:
        """List every stored consent in the index and mark the revoked ones (consents recorded
        before the index existed), then write the marker. A scan of all consents: run by the
        relay until the marker exists, never per request. Idempotent."""
        count = 0
        for consent in self.consents.find(
            {}, {"partner_id": 1, "user_pid": 1, "scenarios": 1, "granted_at": 1, "expires_at": 1, "revoked_at": 1}
        ):
            self.index_consent(consent)
            if consent.get("revoked_at") is not None:
                self.note_revoked(consent["_id"], consent["revoked_at"])
            count += 1
        self.mark_consent_index_ready()
        return count

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
    # `unpublished` holds hints of receipts that may still need publishing: one per request,
    # listing its record keys, written *before* the receipts and deleted once the request's
    # publish is confirmed. Each receipt carries the id of the hint it was stored under
    # (`hint`): it is pending while that hint exists, published once it is gone, so publishing
    # writes no per-record marker (a hint is one document per request; a 100-document insert
    # costs FerretDB ~13 ms of CPU, one document ~3 ms). The relay reads this small collection
    # instead of scanning every receipt (FerretDB v1 would scan the whole collection).
    # Receipts stored by earlier versions have no `hint`: a marker in `published` (`_id` =
    # record key) says they are published; only such receipts still get one. Hints written by
    # earlier versions (one per record, `_id` = record key, no `keys`) are still read.
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
