"""Consents and what intake reads of them (collections `consents`, `consent_index`,
`consent_revocations`, `meta`), and deletion requests (`deletions`).

Intake needs "the live consents of these customers for this partner". A filter on
(partner_id, user_pid) is a scan on FerretDB, so each consent is also listed in an insert-only
index: slots 0, 1, 2, … of (partner_id, user_pid) (`_id` = partner:user_pid:n), each holding
one consent's id and immutable terms (scenarios, granted_at, expires_at: a consent's content
never changes). Revocation, the one thing that does change, is an insert-only marker with the
consent id as `_id`, written before the consent document is updated. Intake reads slots and
markers by `_id` (`$in`; markers are mostly misses, which FerretDB answers almost for free).
A process keeps only the immutable slots it has read (`SlotCache`), never a marker or the end
of a chain, so a revocation or a new consent counts at once in every process.
"""

import itertools
import logging
from datetime import datetime

from pymongo import ASCENDING

from carbon_common.mongo import create_query_index, find_by_ids, insert_new

from ingest.repository.inserts import Duplicate, insert_unique
from ingest.repository.slot_cache import SLOT_CACHE_SIZE, SlotCache

log = logging.getLogger("ingest.repository")  # one logger name for the whole store, whichever module logs

CONSENT_SLOTS_PER_READ = 2  # index slots read per (partner, customer) and round: most have one consent
CONSENT_INDEX_READY = "consent_index_ready"


def consent_slot_id(partner_id: str, user_pid: str, n: int) -> str:
    """Partner ids are [a-z0-9_-] and user_pids hex, so ':' separates unambiguously."""
    return f"{partner_id}:{user_pid}:{n}"


class ConsentStore:
    def __init__(self, db):
        self.consents = db["consents"]
        self.consent_index = db["consent_index"]
        self.consent_revocations = db["consent_revocations"]
        self.meta = db["meta"]
        self.deletions = db["deletions"]
        self._consent_index_ready = False
        self._slot_cache = SlotCache(SLOT_CACHE_SIZE)  # (partner_id, user_pid) -> its slots read so far

    def create_indexes(self) -> None:
        create_query_index(self.consents, [("user_pid", ASCENDING)], "user")
        if not self.consent_index_ready() and self.consents.find_one({}, {"_id": 1}) is None:
            self.mark_consent_index_ready()  # a new database: nothing to backfill

    def insert_consent(self, doc) -> None:
        insert_unique(self.consents, doc)

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
                insert_unique(
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
        chains = self._chains([(partner_id, pid) for pid in user_pids])
        listed = [
            {**slot, "_id": slot["consent_id"], "user_pid": pid, "revoked_at": None}
            for (_, pid), chain in chains.items()
            for slot in chain
        ]
        revoked = find_by_ids(self.consent_revocations, [c["_id"] for c in listed], {"_id": 1})
        return [c for c in listed if c["_id"] not in revoked]

    def _chains(self, keys) -> dict:
        """(partner_id, user_pid) -> every slot of its index chain, in order: rounds of one `$in`
        until each chain ends at a free slot, starting after the slots this process has read."""
        chains = {key: list(self._slot_cache.get(key, ())) for key in keys}
        pending = list(chains)
        while pending:  # rounds of `$in` until each customer's chain ends at a free slot
            windows = {
                key: [
                    consent_slot_id(*key, i) for i in range(len(chains[key]), len(chains[key]) + CONSENT_SLOTS_PER_READ)
                ]
                for key in pending
            }
            slots = find_by_ids(self.consent_index, [sid for window in windows.values() for sid in window])
            pending = []
            for key, window in windows.items():
                new = list(itertools.takewhile(slots.__contains__, window))
                if new:
                    chains[key].extend(slots[sid] for sid in new)
                    self._slot_cache.put(key, tuple(chains[key]))
                if len(new) == len(window):
                    pending.append(key)
        return chains

    def customer_consents(self, user_pid: str, partner_ids) -> list:
        """Every consent of this customer with any of these partners, revoked or not (full
        documents, in no particular order): the index chains of (partner, customer) and the
        consents they list, read by `_id` only. Before the index is backfilled, a scan."""
        if not self.consent_index_ready():
            log.warning("consent index not backfilled yet (the relay does it): scanning consents")
            return self.user_consents(user_pid)
        chains = self._chains([(partner_id, user_pid) for partner_id in partner_ids])
        ids = [slot["consent_id"] for chain in chains.values() for slot in chain]
        return list(find_by_ids(self.consents, ids).values())

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

    # ---- deletion requests (`_id` = user_pid: one per customer, however often it is sent) ----
    def insert_deletion(self, doc) -> bool:
        try:
            insert_unique(self.deletions, doc)
            return True
        except Duplicate:
            return False

    def get_deletion(self, user_pid):
        return self.deletions.find_one({"_id": user_pid})

    def set_deletion_published(self, user_pid) -> None:
        self.deletions.update_one({"_id": user_pid}, {"$set": {"published": True}})
