"""Appending to the ledger under concurrency, on a database without transactions.

Append = take the account state after entry N, decide the entry from it, seal it as N+1 and
insert it. The insert is the only concurrency primitive: a duplicate `_id` means this
idempotency key was already applied (return that entry); a duplicate (account_id, seq) means
someone appended first — move to the newer state and decide again. Every decision (caps,
balance, status, "already reversed?") is thus made against exactly the entries before it.

After the insert the state is written; it is derived from the entry, so a crash in between
is repaired: the next appender whose insert hits that seq while its head stays put rebuilds
the missing state from the entry. Every append goes through `append_many`; a single one (RPC,
reversal: `append`) first writes its outbox marker *before* the entry, so the relay finds every
entry whose events may be unpublished without scanning the ledger; a batch append
(`append_many`) writes no marker — its caller publishes the entries' events before it acks
the messages that caused them, and a redelivery publishes them again.

Single appends are group-committed: the concurrent callers of `append` in one process (gRPC
server threads) are appended by one round — one `$in` for the entries already there, one insert
of their markers, one `append_many` — led by one of them, while the next callers queue for the
next round. A round holds one request per account (the process's writers of one account queue,
as they did behind a lock per account) and each caller gets its own entry or its own refusal;
a refused request's marker is dropped. A decide() runs in the leading thread: it must not append.

`append_many` is the hot path: one `$in` read for the entries already applied, one for the
heads it does not hold, the entries sealed in memory account by account, one ordered
insert_many for the entries and one for their states. A unique-key hit stops the ordered
insert there; what follows is sealed again against fresh heads.
"""

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from opentelemetry import trace

from carbon_common import attributes
from carbon_common.coalesce import Coalesced
from carbon_common.metrics import PROCESSING_LAG
from carbon_common.telemetry import current_traceparent

from account import ledger
from account.metrics import APPEND_CONFLICTS, ENTRIES_APPENDED, GRAMS_POSTED

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10_000
BACKOFF_BASE, BACKOFF_CAP = 0.003, 0.4
HINT_EVERY = 16  # the head hint is refreshed every HINT_EVERY entries
GROUP_MAX = 64  # requests appended by one round of group commit


def observe_posted(entry: dict, span=None) -> None:
    GRAMS_POSTED.labels(entry["type"]).inc(abs(int(entry.get("grams", 0))))
    (span or trace.get_current_span()).set_attributes(
        {
            attributes.LEDGER_ENTRY_ID: entry["_id"],
            attributes.ACCOUNT_ID: entry["account_id"],
            attributes.OUTCOME: entry["type"],
            attributes.GRAMS: int(entry.get("grams", 0)),
        }
    )
    if entry["type"] == ledger.CREDIT and entry.get("occurred_at"):
        occurred = datetime.fromisoformat(entry["occurred_at"].replace("Z", "+00:00"))
        PROCESSING_LAG.labels("account", "credited").observe(
            max((datetime.now(timezone.utc) - occurred).total_seconds(), 0)
        )


class Contention(RuntimeError):
    """Could not append after many attempts (retry the message later)."""


@dataclass
class Request:
    """One append of a batch. decide(state) -> draft; may raise a LedgerError (nothing written)."""

    account_id: str
    entry_id: str
    decide: Callable[[dict], dict]


_UNSET = object()


class _Pending:
    """A caller of `Appender.append`: its request, and its result once its round ran."""

    __slots__ = ("request", "traceparent", "result")

    def __init__(self, request: Request, traceparent: str):
        self.request, self.traceparent = request, traceparent
        self.result = _UNSET


def _one_per_account(pendings: list[_Pending]) -> list[int]:
    """A round holds one request per account, up to GROUP_MAX: the process's writers of one
    account queue (as they did behind a lock per account) instead of colliding in the database."""
    taken, accounts = [], set()
    for i, pending in enumerate(pendings):
        if len(taken) < GROUP_MAX and pending.request.account_id not in accounts:
            accounts.add(pending.request.account_id)
            taken.append(i)
    return taken


class _DecideFailed(ledger.LedgerError):
    """A decide() of a group raised something else than a LedgerError: like a refusal, it ends
    that request only (append_many stops a whole batch for an unexpected error)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def _isolated(decide):
    def isolated_decide(state):
        try:
            return decide(state)
        except (ledger.LedgerError, ledger.AlreadyApplied):
            raise
        except Exception as exc:
            raise _DecideFailed(exc) from exc

    return isolated_decide


def _speculated(decide, known: dict):
    """decide() run now against `known` (a state): in the round, the same draft (or refusal)
    when the head is still that state, a fresh decide() against any other state."""
    try:
        outcome = (decide(known), None)
    except ledger.LedgerError as exc:
        outcome = (None, exc)
    except Exception:  # noqa: BLE001 - decided (and reported) again in the round
        return decide

    def speculated_decide(state):
        if state["seq"] != known["seq"] or state["hash"] != known["hash"]:
            return decide(state)
        draft, refusal = outcome
        if refusal is not None:
            raise refusal
        return dict(draft)

    return speculated_decide


class Appender:
    def __init__(self, repository, tiers, on_outbox=lambda: None):
        """on_outbox: called after an outbox marker was written (wakes the relay)."""
        self.repo = repository
        self.tiers = tiers
        self.on_outbox = on_outbox
        self._heads: dict[str, dict] = {}  # per-process cache of the newest known state
        # Group commit (`append`): callers queue; one round runs at a time and holds one request
        # per account, so writers of one process queue per account instead of colliding in the
        # database; across processes the unique seq index still decides (and the loser retries).
        self._rounds = Coalesced(self._round, pick=_one_per_account)
        self._sealing = threading.local()  # .unstored: account -> entries a batch sealed, not yet inserted

    def head(self, account_id: str, fresh: bool = True) -> dict:
        """The newest state (walks forward from the cached/hinted one); fresh=False: the state
        this process knows, unread (it may be behind another process's appends)."""
        if not fresh and account_id in self._heads:
            return self._heads[account_id]
        return self.heads_many([account_id])[account_id]

    def _repair(self, account_id: str, state: dict) -> None:
        """The entry after `state` exists but its state was never written (its writer died)."""
        entry = self.repo.entry_at(account_id, state["seq"] + 1)
        if entry is None:
            return
        rebuilt, new_state = ledger.seal(state, ledger.draft_of(entry), entry["posted_at"], self.tiers.tier_for)
        if rebuilt["hash"] != entry["hash"]:
            raise RuntimeError(f"entry {entry['_id']} does not follow its predecessor: run the verifier")
        self.repo.insert_state(new_state)
        self.repo.add_outbox(entry["_id"], account_id, current_traceparent())  # its events may be unsent too
        self.on_outbox()
        log.warning("rebuilt missing ledger state", extra={"account_id": account_id, "seq": new_state["seq"]})
        self._remember(new_state)

    def append(self, account_id: str, entry_id: str, decide) -> tuple[dict, bool]:
        """(entry, created). `decide(state) -> draft` may raise a LedgerError (nothing written).

        Group commit: concurrent callers are appended together. A caller queues its request;
        the first to arrive while no round runs leads a round for everything queued (one
        request per account, up to GROUP_MAX), the next queued caller leads the next one.
        Before it queues, the caller decides against the head it knows (its reads then run in
        parallel with the others'); the round takes that decision only if the head it seals
        against is that same state (seq and hash), and decides again otherwise."""
        known = self._heads.get(account_id)
        if known is not None:
            decide = _speculated(decide, known)
        entry, created = self._rounds(_Pending(Request(account_id, entry_id, decide), current_traceparent()))
        if created:
            observe_posted(entry)
        return entry, created

    def _round(self, group: list[_Pending]) -> list:
        """One round of group commit (carbon_common.coalesce) -> each caller's (entry, created)
        or its exception."""
        self._append_group(group)
        return [RuntimeError("group append interrupted") if p.result is _UNSET else p.result for p in group]

    def _append_group(self, group: list["_Pending"]) -> None:
        """One round: sets each caller's result, (entry, created) or its exception; never raises.

        As a single append: the entries already in the ledger are returned as they are; the
        others' outbox markers go in (one insert) *before* their entries — no redelivery brings
        an RPC/gRPC call back, so its events go through the outbox, and a crash in between leaves
        a marker, never an entry without one; then one append_many for all. A request refused
        (its LedgerError) or failed writes nothing: its marker is dropped."""
        try:
            stored = self.repo.entries_by_ids([p.request.entry_id for p in group])
            for pending in group:
                if pending.request.entry_id in stored:
                    pending.result = (stored[pending.request.entry_id], False)
            new = [p for p in group if p.result is _UNSET]
            if not new:
                return
            try:
                self.repo.add_outbox_many([(p.request.entry_id, p.request.account_id, p.traceparent) for p in new])
                requests = [Request(p.request.account_id, p.request.entry_id, _isolated(p.request.decide)) for p in new]
                for pending, result in zip(new, self.append_many(requests, stored={})):
                    pending.result = result.error if isinstance(result, _DecideFailed) else result
            except Exception as exc:
                for pending in new:
                    pending.result = exc
            finally:
                self.on_outbox()
            failed = [p.request.entry_id for p in new if isinstance(p.result, BaseException)]
            if failed:  # refused or failed: no entry, no marker
                written = self.repo.entries_by_ids(failed)
                self.repo.drop_outbox([e for e in failed if e not in written])
        except Exception as exc:  # reading or cleaning up failed
            log.warning("group append failed", extra={"error": repr(exc)})
            for pending in group:
                if pending.result is _UNSET:
                    pending.result = exc

    def _applied(self, account_id: str, entry_id: str) -> dict:
        """The entry a decide() found already in the chain (ledger.AlreadyApplied)."""
        existing = self.repo.get_entry(entry_id)
        if existing is None:
            raise RuntimeError(f"{account_id}: entry {entry_id} claimed applied but missing")
        return existing

    def _remember(self, state: dict) -> None:
        if self._heads.get(state["account_id"], {}).get("seq", -1) < state["seq"]:
            self._heads[state["account_id"]] = state

    def cap_usage(self, account_id: str, key: str, max_seq: int) -> tuple[int, int]:
        """[grams, count] used under a cap key by the account's entries up to max_seq, summed
        from the entries (for keys the state no longer carries): the stored ones and those the
        batch being sealed holds in memory, which are not inserted yet."""
        grams, count = self.repo.cap_usage_scan(account_id, key, max_seq)
        for entry in getattr(self._sealing, "unstored", {}).get(account_id, ()):
            if entry["seq"] <= max_seq and key in entry.get("cap_keys", ()):
                grams += entry.get("cap_grams", 0)
                count += entry.get("cap_count", 0)
        return grams, count

    # batches ------------------------------------------------------------------------------
    def heads_many(self, account_ids) -> dict[str, dict]:
        """The newest state of each account: cached or hinted, then walked forward with one
        `$in` per step for all of them (another process may have appended meanwhile)."""
        states = {a: self._heads.get(a) for a in account_ids}
        missing = [a for a, st in states.items() if st is None]
        if missing:
            hints = self.repo.head_hints(missing)
            hinted = self.repo.states_at({a: seq for a, seq in hints.items() if seq})
            for a in missing:
                states[a] = hinted.get(a) or ledger.genesis_state(a)
        frontier = dict(states)
        while frontier:
            frontier = self.repo.states_at({a: st["seq"] + 1 for a, st in frontier.items()})
            states.update(frontier)
        for state in states.values():
            self._remember(state)
        return states

    def append_many(self, requests: list[Request], stored: dict | None = None) -> list:
        """Per request, in order: (entry, created) or the LedgerError its decide raised.
        Requests of one account are applied in their order; a repeated entry id (already in
        the ledger, or twice in the batch) returns the stored entry, created=False.
        `stored`: the caller's lookup of (at least) these entry ids, read just before."""
        results: list = [None] * len(requests)
        if stored is None:
            stored = self.repo.entries_by_ids([r.entry_id for r in requests])
        todo, first = [], {}
        for i, r in enumerate(requests):
            if r.entry_id in stored:
                results[i] = (stored[r.entry_id], False)
            elif r.entry_id not in first:
                first[r.entry_id] = i
                todo.append(i)
        for attempt in range(MAX_ATTEMPTS):
            if not todo:
                break
            todo = self._append_round(requests, todo, results)
            if todo:
                time.sleep(random.uniform(0, min(BACKOFF_BASE * 2 ** min(attempt, 12), BACKOFF_CAP)))
        else:
            raise Contention(f"could not append a batch of {len(requests)} after {MAX_ATTEMPTS} attempts")
        for i, r in enumerate(requests):
            if results[i] is None:  # the same entry id earlier in the batch
                entry = results[first[r.entry_id]]
                results[i] = (entry[0], False) if isinstance(entry, tuple) else entry
        return results

    def _append_round(self, requests, todo, results) -> list[int]:
        """Seal `todo` against the current heads and insert; -> the indexes still to do."""
        heads = self.heads_many({requests[i].account_id for i in todo})
        sealed, refused = [], {}
        now = ledger.utc_now_iso()
        self._sealing.unstored = unstored = {}
        try:
            for i in todo:
                r = requests[i]
                try:
                    draft = r.decide(heads[r.account_id])
                except ledger.LedgerError as exc:
                    refused[i] = exc
                    continue
                except ledger.AlreadyApplied:  # written by another writer after this batch looked
                    results[i] = (self._applied(r.account_id, r.entry_id), False)
                    continue
                draft["_id"] = r.entry_id
                entry, heads[r.account_id] = ledger.seal(heads[r.account_id], draft, now, self.tiers.tier_for)
                sealed.append((i, entry, heads[r.account_id]))
                unstored.setdefault(r.account_id, []).append(entry)
        finally:
            self._sealing.unstored = {}
        count = self.repo.insert_entries_in_order([entry for _, entry, _ in sealed])
        done = sealed[:count]
        self.repo.insert_states([state for _, _, state in done])
        hints = {}
        for i, entry, state in done:
            results[i] = (entry, True)
            self._remember(state)
            if state["seq"] % HINT_EVERY == 0:
                hints[state["account_id"]] = state["seq"]
            ENTRIES_APPENDED.labels(entry["type"]).inc()
        self.repo.set_head_hints(hints)
        if count == len(sealed):
            for i, exc in refused.items():
                results[i] = exc
            return []
        # The entry at `count` hit a unique key: applied meanwhile (its _id), or someone else
        # took its seq. Everything after it is sealed again on fresh heads; refusals too,
        # since they were decided on a state that may have been stale.
        i, entry, _ = sealed[count]
        again = self.repo.get_entry(entry["_id"])
        if again is not None:
            results[i] = (again, False)
        else:
            APPEND_CONFLICTS.inc()
            self._resync(entry["account_id"])
        return sorted([j for j, _, _ in sealed[count:] if results[j] is None] + list(refused))

    def _resync(self, account_id: str) -> None:
        """Drop the cached head; if its successor's state was never written, rebuild it."""
        cached = self._heads.pop(account_id, None)
        state = self.head(account_id)
        if cached is not None and state["seq"] == cached["seq"]:
            self._repair(account_id, state)
