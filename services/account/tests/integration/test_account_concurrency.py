"""50 concurrent writers on one account on real FerretDB (reduced size; full size: make bench)."""

import eventlet

from carbon_dev import ledger_stress as stress
from account.tiers import Tiers

WRITERS, OPERATIONS = 50, 40


def spawn_all(jobs):
    pool = eventlet.GreenPool(len(jobs))
    for job in jobs:
        pool.spawn(job)
    pool.waitall()


def test_fifty_concurrent_writers_keep_every_ledger_invariant(repo):
    tally = stress.run(repo, Tiers(), WRITERS, OPERATIONS, spawn_all)
    figures = stress.check_invariants(repo, tally)
    print("concurrency figures:", figures)
    assert figures["credits"] == tally.credits_sent and tally.repeats_sent > 0
    assert figures["capped_credited"] == stress.CAP_COUNT  # more than the cap were sent
    assert figures["redemptions"] > 0
