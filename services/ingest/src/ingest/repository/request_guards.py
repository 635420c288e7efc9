"""What guards a signed request against replay and overuse (collections `nonces`, `rate_slots`).

A nonce is consumed by a unique insert (`_id` = partner:nonce), so it is used once across all
workers; a request takes one of the minute's `limit` rate slots (`_id` = partner:window:slot)
the same way, so the limit is exact. Both expire: MongoDB drops them by a TTL index, and
`purge_expired` (run by the relay, never per request) does it on FerretDB, which has none.
"""

import threading
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import OperationFailure

from carbon_common.mongo import create_query_index, find_by_ids

from ingest.repository.inserts import Duplicate, insert_unique

RATE_SLOTS_PER_READ = 32  # rate-limit slots probed per `$in`


class RequestGuards:
    def __init__(self, db):
        self.nonces = db["nonces"]
        self.rate_slots = db["rate_slots"]
        self._rate_hints = {}  # (partner_id, window) -> lowest slot that may be free (this process)
        self._rate_lock = threading.Lock()

    def create_indexes(self) -> None:
        for coll in (self.nonces, self.rate_slots):
            try:  # MongoDB expires them itself; purge_expired (run by the relay) covers FerretDB
                coll.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl")
            except OperationFailure:
                create_query_index(coll, [("expires_at", ASCENDING)], "expires_at")

    def nonce_seen(self, partner_id, nonce, now: datetime) -> bool:
        doc = self.nonces.find_one({"_id": f"{partner_id}:{nonce}"})
        return bool(doc) and doc["expires_at"] > now

    def consume_nonce(self, partner_id, nonce, now: datetime, ttl: timedelta) -> bool:
        """True if this call consumed the nonce; False if it was already used."""
        key = f"{partner_id}:{nonce}"
        for _ in range(2):
            try:
                insert_unique(self.nonces, {"_id": key, "expires_at": now + ttl})
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
                    insert_unique(
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
