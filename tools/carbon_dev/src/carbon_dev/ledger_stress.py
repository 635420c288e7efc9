"""Many writers on one account, then the invariants — shared by the test suite and the bench.

Writers are spread over independent LedgerOperations (each like a separate process) and
mixes credits (half under a daily count cap), redemptions, and deliberate repeats of earlier
idempotency keys. check_invariants() then proves what a ledger must hold.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from account import ledger
from account.ledger import InsufficientBalance
from account.operations import LedgerOperations
from account.tiers import Tiers
from account.verifier import verify_all
from carbon_common.accounts import POOL_OWNERS

OWNER = "pid-stress"
CAP_COUNT = 100
CAPPED = {"period": "day", "max_grams": 0, "max_count": CAP_COUNT, "scope": "user_scenario"}


@dataclass
class Tally:
    credits_sent: int = 0
    capped_sent: int = 0
    repeats_sent: int = 0
    redemptions_sent: int = 0
    redemptions_refused: int = 0
    done: int = 0
    seconds: float = 0.0
    errors: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def _reduction(writer: int, i: int, capped: bool) -> dict:
    return {
        "reduction_id": f"stress-{writer}-{i}",
        "record_key": f"stress-rec-{writer}-{i}",
        "user_pid": OWNER,
        "scenario": "metro_ride" if capped else "bus_ride",
        "occurred_at": "2026-11-25T02:00:00Z",
        "grams": 25,
        "partner_id": "stress",
        "methodology_id": "m",
        "methodology_version": "1",
        "factor_set_id": "f",
        "factor_set_version": "1",
        "caps": [CAPPED] if capped else [],
    }


def writer_job(ops: LedgerOperations, writer: int, operations: int, tally: Tally) -> None:
    account_id = ledger.account_id_for(OWNER)
    for i in range(operations):
        try:
            if i % 4 == 3:
                tally.add(redemptions_sent=1)
                try:
                    ops.redeem(account_id, 30, f"stress-redeem-{writer}-{i}", "reward")
                except InsufficientBalance:
                    tally.add(redemptions_refused=1)
            elif i % 10 == 9:
                tally.add(repeats_sent=1)
                ops.credit(_reduction(writer, i - 1, capped=(i - 1) % 2 == 0))  # a redelivery
            else:
                tally.add(credits_sent=1, capped_sent=int(i % 2 == 0))
                ops.credit(_reduction(writer, i, capped=i % 2 == 0))
        except Exception as exc:  # reported, and fails the check
            tally.errors.append(repr(exc))
        tally.add(done=1)


def run(repository, tiers, writers: int, operations: int, spawn_all, appenders: int = 5, progress=None) -> Tally:
    """`writers` concurrent writers spread over `appenders` independent LedgerOperations (as
    that many service processes: writers sharing one queue per account, appenders racing each
    other through the database). spawn_all(callables) runs them concurrently and waits."""
    repository.ensure_indexes()
    processes = [LedgerOperations(repository, tiers) for _ in range(appenders)]
    processes[0].open_account(OWNER)
    tally = Tally()
    started = time.perf_counter()
    jobs = [lambda w=w: writer_job(processes[w % appenders], w, operations, tally) for w in range(writers)]
    if progress:
        jobs.append(lambda: progress(tally, writers * operations))
    spawn_all(jobs)
    tally.seconds = time.perf_counter() - started
    return tally


def check_invariants(repository, tally: Tally) -> dict:
    """Figures; raises AssertionError naming the first broken invariant."""
    account_id = ledger.account_id_for(OWNER)
    entries = repository.account_entries(account_id)
    assert not tally.errors, f"writer errors: {tally.errors[:3]}"
    report = verify_all(repository)
    assert report.ok, f"verifier: {report.problems[:3]}"
    assert all(e["balance_after"] >= 0 for e in entries), "a negative balance appeared"
    assert entries[-1]["balance_after"] == sum(e["grams"] for e in entries), "balance != sum of entries"
    per_key = Counter(e.get("reduction_id") or e.get("request_key") for e in entries if e["type"] != "opened")
    assert max(per_key.values()) == 1, "an idempotency key was applied twice"
    credits = [e for e in entries if e["type"] in ("credit", "capped")]
    assert len(credits) == tally.credits_sent, "a credit was lost or duplicated"
    capped_credited = sum(1 for e in credits if e["scenario"] == "metro_ride" and e["type"] == "credit")
    assert capped_credited == min(CAP_COUNT, tally.capped_sent), f"cap not exact: {capped_credited}"
    redemptions = [e for e in entries if e["type"] == "redemption"]
    assert len(redemptions) == tally.redemptions_sent - tally.redemptions_refused
    # settlement (what the outbox relay does for plain redemptions), then the pool's shards
    LedgerOperations(repository, Tiers()).settle_redemptions(redemptions)
    pool = [e for owner in POOL_OWNERS for e in repository.account_entries(ledger.account_id_for(owner))]
    assert sum(e["grams"] for e in pool) == -sum(e["grams"] for e in redemptions), "pool != redeemed"
    return {
        "entries": len(entries),
        "balance": entries[-1]["balance_after"],
        "credits": len(credits),
        "capped_credited": capped_credited,
        "redemptions": len(redemptions),
        "refused": tally.redemptions_refused,
        "repeats": tally.repeats_sent,
        "seconds": round(tally.seconds, 1),
        "appends_per_second": round((len(entries) + len(pool)) / max(tally.seconds, 1e-9), 1),
    }
