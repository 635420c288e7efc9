"""In-memory stand-ins for what the bridge's service layer (exchange_bridge.bridge.Bridge) uses.

FakeRepository   the bridge's own store (exchange_bridge.repository.Repository), with the same
                 unique keys: items by _id = entry_id (an entry joins one claim, ever), batches
                 by _id and by claim_id (one batch per claim), claims, submissions and published
                 by _id; an insert that hits one keeps the document stored first.
FakeAccount      outside the bridge's bounded context: account's RPC `list_entries_after` over
                 the bank pool's ledger, as the account service answers it.
FakeExchange     outside it too: the exchange as ExchangeClient.submit presents it — verifies
                 the SM2 signature, idempotent by batch_id, one serial per gram; a refusal or
                 an exchange that stays unavailable is SubmissionFailed, as the client raises it.
FakeDispatch     nameko's EventDispatcher: records (event_type, payload, event_id).
"""

import copy

from nameko.exceptions import RemoteError
from pymongo.errors import DuplicateKeyError

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_common.clock import utc_now_iso
from carbon_common.gm import sm3_hex
from carbon_common.mongo import DUPLICATE_KEY

from exchange_bridge.exchange import SubmissionFailed


class FakeRepository:
    def __init__(self):
        self.claims: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.submissions: dict[str, dict] = {}
        self.published: dict[str, dict] = {}
        self.progress: dict[str, int] = {}

    # watermark
    def watermark(self) -> int:
        return self.progress.get("pool", 0)

    def advance_watermark(self, seq: int) -> None:
        self.progress["pool"] = max(self.progress.get("pool", 0), int(seq))

    # claiming
    def claimed_ids(self, entry_ids: list[str]) -> set[str]:
        return {e for e in entry_ids if e in self.items}

    def open_claim(self, claim_id: str, claimed_at: str) -> None:
        if claim_id in self.claims:
            raise DuplicateKeyError(f"E11000 duplicate key error: claims _id {claim_id}", DUPLICATE_KEY)
        self.claims[claim_id] = {"_id": claim_id, "claimed_at": claimed_at}

    def claim_items(self, items: list[dict]) -> None:
        for item in items:  # an entry another claim holds stays with it
            self.items.setdefault(item["_id"], copy.deepcopy(item))

    def items_of_claim(self, claim_id: str) -> list[dict]:
        return [copy.deepcopy(i) for i in self.items.values() if i["claim_id"] == claim_id]

    def claims_without_batch(self, claimed_before: str) -> list[str]:
        formed = {b["claim_id"] for b in self.batches.values()}
        return [c["_id"] for c in self.claims.values() if c["claimed_at"] < claimed_before and c["_id"] not in formed]

    # batches and their fate
    def insert_batch(self, doc: dict) -> dict:
        for stored in self.batches.values():
            if stored["claim_id"] == doc["claim_id"] or stored["_id"] == doc["_id"]:
                return copy.deepcopy(stored)
        self.batches[doc["_id"]] = copy.deepcopy(doc)
        return doc

    def unsubmitted_batches(self) -> list[dict]:
        return [copy.deepcopy(b) for b in self.batches.values() if b["_id"] not in self.submissions]

    def record_submission(self, batch_id: str, result: dict) -> dict:
        doc = {
            "_id": batch_id,
            **{k: result[k] for k in ("serial_start", "serial_end", "status")},
            "registered_at": result["registered_at"],
        }
        return copy.deepcopy(self.submissions.setdefault(batch_id, doc))

    def unpublished(self) -> list[tuple[dict, dict]]:
        return [
            (copy.deepcopy(self.batches[s["_id"]]), copy.deepcopy(s))
            for s in self.submissions.values()
            if s["_id"] not in self.published and s["_id"] in self.batches
        ]

    def mark_published(self, batch_id: str, published_at: str) -> None:
        self.published.setdefault(batch_id, {"_id": batch_id, "published_at": published_at})


class FakeAccount:
    """The pool's ledger as account's `list_entries_after` serves it: entries with seq > after_seq
    in seq order, at most `limit` read, then filtered by `types`; last_seq is the newest seq read.
    Until the first redemption opens the pool, the pool account is a LookupError."""

    def __init__(self):
        self.pool: list[dict] = []
        self.calls: list[int] = []  # after_seq of each call

    def post(self, grams: int, kind: str = "redemption_transfer") -> dict:
        if not self.pool:
            self._append("opened", 0)
        return self._append(kind, grams)

    def _append(self, kind: str, grams: int) -> dict:
        seq = len(self.pool) + 1
        entry = {
            "entry_id": sm3_hex(f"pool-entry-{seq}".encode()),
            "account_id": "acc_pool",
            "seq": seq,
            "type": kind,
            "grams": grams,
            "hash": sm3_hex(f"hash-{seq}".encode()),
            "posted_at": utc_now_iso(),
            "balance_after": sum(e["grams"] for e in self.pool) + grams,
        }
        self.pool.append(entry)
        return entry

    def list_entries_after(self, after_seq=0, limit=500, types=(), account_id=None, owner_pid=None):
        if not self.pool:
            raise RemoteError("LookupError", "no account for bank-pool")
        if not 0 < int(limit) <= 1000 or int(after_seq) < 0:
            raise RemoteError("InvalidRequest", "limit must be 1..1000 and after_seq >= 0")
        self.calls.append(after_seq)
        read = self.pool[after_seq : after_seq + limit]
        return {
            "entries": [dict(e) for e in read if not types or e["type"] in types],
            "last_seq": read[-1]["seq"] if read else after_seq,
        }


class FakeExchange:
    def __init__(self):
        self.registered: dict[str, dict] = {}  # batch_id -> the record the exchange keeps
        self.attempts: list[str] = []  # batch_id of every submission that reached it
        self.refusal = ""  # set: every submission fails with this message
        self._next_serial = 1

    def submit(self, signed: dict) -> dict:
        batch = signed["batch"]
        self.attempts.append(batch["batch_id"])
        if self.refusal:
            raise SubmissionFailed(self.refusal)
        if not gm.sm2_verify(signed["public_key"], canonical_bytes(batch), bytes.fromhex(signed["signature"])):
            raise SubmissionFailed("exchange refused batch: 401 bad_signature")
        known = self.registered.get(batch["batch_id"])
        if known is None:
            start, self._next_serial = self._next_serial, self._next_serial + batch["quantity"]
            known = self.registered[batch["batch_id"]] = {
                "batch_id": batch["batch_id"],
                "status": "issued",
                "unit": "gCO2e",
                "quantity": batch["quantity"],
                "serial_start": f"CN-PCA-{start:015d}",
                "serial_end": f"CN-PCA-{start + batch['quantity'] - 1:015d}",
                "merkle_root": batch["merkle_root"],
                "registered_at": utc_now_iso(),
            }
        return dict(known)


class FakeDispatch:
    def __init__(self):
        self.events: list[tuple[str, dict, str]] = []

    def __call__(self, event_type: str, payload: dict, event_id: str = "") -> None:
        self.events.append((event_type, copy.deepcopy(payload), event_id))
