"""Account ledger under contention on real FerretDB: 50 writers x 100 credits/debits, one account.

    MONGO_URI=mongodb://127.0.0.1:27017/ python tests/bench/bench_account.py [--writers 50] [--ops 100]
        [--appenders 5]

Writers are real threads spread over `--appenders` independent ledgers (as that many service
processes). Prints progress, then the invariants (balance = sum of entries, never negative,
each idempotency key once, cap exact, pool = redeemed, SM3 chain verifies) and the figures:
appends/s and conflicts per append. Uses a throwaway database, dropped at the end.
"""

import argparse
import os
import sys
import threading
import time
import uuid

from carbon_common.mongo import client

from carbon_dev import ledger_stress as stress
from account.metrics import APPEND_CONFLICTS
from account.repository import Repository
from account.tiers import Tiers


def spawn_all(jobs):
    threads = [threading.Thread(target=job, daemon=True) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def progress(tally, total):
    started = time.perf_counter()
    while tally.done < total:
        time.sleep(5)
        elapsed = time.perf_counter() - started
        print(
            f"  {tally.done:>6}/{total} operations  {elapsed:6.0f} s  {tally.done / elapsed:6.1f} ops/s  "
            f"conflicts {APPEND_CONFLICTS._value.get():.0f}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--appenders", type=int, default=5)
    args = parser.parse_args()
    uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
    name = f"bench_account_{uuid.uuid4().hex[:8]}"
    repo = Repository(client(uri)[name])
    print(
        f"bench_account: {args.writers} writers x {args.ops} operations on one account, "
        f"{args.appenders} appenders, database {name}",
        flush=True,
    )
    try:
        tally = stress.run(repo, Tiers(), args.writers, args.ops, spawn_all, args.appenders, progress=progress)
        figures = stress.check_invariants(repo, tally)
    finally:
        client(uri).drop_database(name)
    conflicts = APPEND_CONFLICTS._value.get()
    appends = figures["entries"] + figures["redemptions"]
    print("invariants hold: balance = sum of entries, never negative, keys once, cap exact, pool = redeemed, chain ok")
    for key, value in figures.items():
        print(f"  {key:22} {value}")
    print(f"  {'conflicts':22} {conflicts:.0f}  ({conflicts / max(appends, 1):.2f} per append)")
    print(f"  {'ops_per_second':22} {args.writers * args.ops / figures['seconds']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
