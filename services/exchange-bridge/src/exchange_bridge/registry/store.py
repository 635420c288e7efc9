"""The registry's own database: collections, unique keys, and gapless chains of documents.

FerretDB v1 rules (ADR 0002): no transactions, non-atomic updates, so every decision is a
unique insert with a deterministic `_id`, and every read is an `_id` point read or `$in`.

A *chain* is a run of documents with `_id = key(1), key(2), …` and no gaps: the next link is
claimed by inserting key(n+1); a duplicate means another writer took n, so try n+1. That is
how the registry allocates transaction sequence numbers and lists a holder's blocks, never
with a `$inc` counter. A link also carries a field with its own unique index (`unique`), so
one item is never appended twice, whatever crashes and retries happen.
"""

import threading

from carbon_common.mongo import insert_new

COLLECTIONS = (
    "participants",  # _id participant id
    "keys",  # _id "participant/key_id": a bank's SM2 public key
    "key_revocations",  # _id "participant/key_id": present = revoked
    "nonces",  # _id "participant:nonce": a request nonce used once
    "reductions",  # _id reduction id: claimed by one batch (tag batch_id)
    "issuances",  # _id "group:n" chain: the group's n-th issued batch, its serials and remainder
    "batches",  # _id batch id: the submission as received
    "transitions",  # _id "batch_id:state": a batch's lifecycle states
    "fates",  # _id block id: the signed record of the operation that consumed the block
    "records",  # _id operation id: every signed transaction record
    "sequence",  # chain _id 1, 2, …: the order of records (op_id unique)
    "holdings",  # chain _id "holder:n": blocks a holder received or sent (key unique)
)
UNIQUE = {"sequence": "op_id", "holdings": "key", "issuances": "batch_id"}


def ensure_indexes(db) -> None:
    for name, field in UNIQUE.items():
        db[name].create_index(field, unique=True, name=f"{field}_unique")


def counts(db) -> dict:
    """Documents per collection (tests: a refused request leaves every count unchanged)."""
    return {name: db[name].count_documents({}) for name in COLLECTIONS}


class Chains:
    """Gapless chains, with an in-memory hint of each chain's length (a lower bound only:
    another process may have appended since; probing forward finds the true end)."""

    def __init__(self, db):
        self.db = db
        self.hints: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()

    @staticmethod
    def key(prefix: str, n: int):
        return n if prefix == "" else f"{prefix}:{n:012d}"

    def _present(self, collection: str, prefix: str, n: int) -> bool:
        return self.db[collection].find_one({"_id": self.key(prefix, n)}, {"_id": 1}) is not None

    def length(self, collection: str, prefix: str) -> int:
        """The number of links: probe forward from the hint, doubling, then bisect."""
        low = self.hints.get((collection, prefix), 0)  # key(low) is present (or low == 0)
        step = 1
        while self._present(collection, prefix, low + step):
            low, step = low + step, step * 2
        high = low + step  # absent
        while high - low > 1:
            middle = (low + high) // 2
            if self._present(collection, prefix, middle):
                low = middle
            else:
                high = middle
        self._hint(collection, prefix, low)
        return low

    def _hint(self, collection: str, prefix: str, n: int) -> None:
        with self.lock:
            if n > self.hints.get((collection, prefix), 0):
                self.hints[(collection, prefix)] = n

    def read(self, collection: str, prefix: str, n: int) -> dict | None:
        return self.db[collection].find_one({"_id": self.key(prefix, n)}) if n > 0 else None

    def append(self, collection: str, prefix: str, doc: dict) -> int:
        """Append `doc` (holding the collection's unique field) -> its position n. Appending
        the same unique value again returns the position it already has."""
        field = UNIQUE[collection]
        n = self.length(collection, prefix) + 1
        while True:
            if not insert_new(self.db[collection], [{**doc, "_id": self.key(prefix, n), "n": n}]):
                self._hint(collection, prefix, n)
                return n
            stored = self.read(collection, prefix, n)
            if stored is None:  # the unique field was hit, not _id: appended before (rare: a scan)
                return self.db[collection].find_one({field: doc[field]}, {"n": 1})["n"]
            if stored[field] == doc[field]:
                return n
            n += 1  # another writer took n
