"""Appending to the ledger under concurrency, on a database without transactions.

Append = take the account state after entry N, decide the entry from it, seal it as N+1 and
insert it. The insert is the only concurrency primitive: a duplicate `_id` means this
idempotency key was already applied (return that entry); a duplicate (account_id, seq) means
someone appended first — move to the newer state and decide again. Every decision (caps,
balance, status, "already reversed?") is thus made against exactly the entries before it.

After the insert the state and the outbox marker are written; both are derived from the
entry, so a crash in between is repaired: the next appender rebuilds a missing state from
the entry, and the relay's sweep finds entries still marked unpublished.
"""
import logging
import random
import threading
import time
from datetime import datetime, timezone

from opentelemetry import trace
from pymongo.errors import DuplicateKeyError

from carbon_common import attributes
from carbon_common.metrics import PROCESSING_LAG
from carbon_common.telemetry import current_traceparent

from account import ledger
from account.metrics import APPEND_CONFLICTS, ENTRIES_APPENDED, GRAMS_POSTED

log = logging.getLogger(__name__)

STALL_REPAIR_SECONDS = 0.5   # a state missing this long after its entry: rebuild it
MAX_ATTEMPTS = 10_000
BACKOFF_BASE, BACKOFF_CAP = 0.003, 0.4
HINT_EVERY = 16              # the head hint is refreshed every HINT_EVERY entries
LOCK_STRIPES = 64


def observe_posted(entry: dict) -> None:
    GRAMS_POSTED.labels(entry["type"]).inc(abs(int(entry.get("grams", 0))))
    trace.get_current_span().set_attributes({
        attributes.LEDGER_ENTRY_ID: entry["_id"], attributes.ACCOUNT_ID: entry["account_id"],
        attributes.OUTCOME: entry["type"], attributes.GRAMS: int(entry.get("grams", 0))})
    if entry["type"] == ledger.CREDIT and entry.get("occurred_at"):
        occurred = datetime.fromisoformat(entry["occurred_at"].replace("Z", "+00:00"))
        PROCESSING_LAG.labels("account", "credited").observe(
            max((datetime.now(timezone.utc) - occurred).total_seconds(), 0))


class Contention(RuntimeError):
    """Could not append after many attempts (retry the message later)."""


class Appender:
    def __init__(self, repository, tiers):
        self.repo = repository
        self.tiers = tiers
        self._heads: dict[str, dict] = {}  # per-process cache of the newest known state
        # Writers of one process queue per account instead of colliding in the database;
        # across processes the unique seq index still decides (and the loser retries).
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def head(self, account_id: str) -> dict:  # noqa: D401
        """The newest state (walks forward from the cached/hinted one)."""
        state = self._heads.get(account_id)
        if state is None:
            hint = self.repo.head_hint(account_id)
            state = (self.repo.get_state(account_id, hint) if hint else None) or ledger.genesis_state(account_id)
        return self._advance(account_id, state)

    def _advance(self, account_id: str, state: dict) -> dict:
        while (newer := self.repo.get_state(account_id, state["seq"] + 1)) is not None:
            state = newer
        self._heads[account_id] = state
        return state

    def _repair(self, account_id: str, state: dict) -> dict:
        """The entry after `state` exists but its state was never written (its writer died)."""
        entry = self.repo.entry_at(account_id, state["seq"] + 1)
        if entry is None:
            return state
        rebuilt, new_state = ledger.seal(state, ledger.draft_of(entry), entry["posted_at"], self.tiers.tier_for)
        if rebuilt["hash"] != entry["hash"]:
            raise RuntimeError(f"entry {entry['_id']} does not follow its predecessor: run the verifier")
        self.repo.insert_state(new_state)
        self.repo.add_outbox(entry["_id"], account_id, current_traceparent())
        log.warning("rebuilt missing ledger state", extra={"account_id": account_id, "seq": new_state["seq"]})
        return self._advance(account_id, new_state)

    def append(self, account_id: str, entry_id: str, decide) -> tuple[dict, bool]:
        """(entry, created). `decide(state) -> draft` may raise a LedgerError (nothing written)."""
        with self._locks[hash(account_id) % LOCK_STRIPES]:
            return self._append(account_id, entry_id, decide)

    def _append(self, account_id: str, entry_id: str, decide) -> tuple[dict, bool]:
        existing = self.repo.get_entry(entry_id)
        if existing is not None:
            return existing, False
        state = self._heads.get(account_id) or self.head(account_id)
        stalled_at, stalled_since = -1, 0.0
        for attempt in range(MAX_ATTEMPTS):
            draft = decide(state)
            draft["_id"] = entry_id
            entry, new_state = ledger.seal(state, draft, ledger.utc_now_iso(), self.tiers.tier_for)
            try:
                self.repo.insert_entry(entry)
            except DuplicateKeyError:
                existing = self.repo.get_entry(entry_id)
                if existing is not None:
                    return existing, False
                APPEND_CONFLICTS.inc()
                state = self._advance(account_id, state)
                if state["seq"] != stalled_at:
                    stalled_at, stalled_since = state["seq"], time.monotonic()
                elif time.monotonic() - stalled_since > STALL_REPAIR_SECONDS:
                    state = self._repair(account_id, state)
                # Exponential backoff with full jitter: under heavy contention the losers spread out
                # instead of all re-reading and colliding again.
                time.sleep(random.uniform(0, min(BACKOFF_BASE * 2 ** min(attempt, 12), BACKOFF_CAP)))
                continue
            self.repo.insert_state(new_state)
            self.repo.add_outbox(entry_id, account_id, current_traceparent())
            if new_state["seq"] % HINT_EVERY == 0:
                self.repo.set_head_hint(account_id, new_state["seq"])
            if self._heads.get(account_id, {}).get("seq", -1) < new_state["seq"]:
                self._heads[account_id] = new_state
            ENTRIES_APPENDED.labels(entry["type"]).inc()
            observe_posted(entry)
            return {**entry, "published": False}, True
        raise Contention(f"could not append to {account_id} after {MAX_ATTEMPTS} attempts")
