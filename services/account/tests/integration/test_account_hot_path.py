"""The crediting hot path asks the store only for `_id` lookups, and stays exact in batches.

FerretDB v1 scans a whole collection for any other filter, so each record would cost more as
the ledger grows (docs/adr/0002-insert-only-storage-on-ferretdb.md); these tests record every command a batch sends.
"""

import pytest

from account import ledger
from account.operations import LedgerOperations
from account.repository import Repository
from account.tiers import Tiers

TIERS = "seedling:0,sprout:1000,tree:10000"
DAILY_CAP = [{"period": "day", "max_grams": 250, "max_count": 0, "scope": "user_scenario"}]


@pytest.fixture
def recorded_ops(recorded_database):
    make, recorder = recorded_database
    repo = Repository(make("account"))
    repo.ensure_indexes()
    ops = LedgerOperations(repo, Tiers(TIERS))
    return ops, recorder


def test_a_batch_of_credits_reads_and_writes_by_id_only(recorded_ops, make_reduction):
    ops, recorder = recorded_ops
    # new and known accounts, a cap that binds, two partners reporting one trip
    first = [make_reduction(user_pid=f"pid-{i % 7}", grams=100, caps=DAILY_CAP) for i in range(40)]
    ops.credit_many(first)
    second = [make_reduction(user_pid=f"pid-{i % 11}", grams=90, caps=DAILY_CAP) for i in range(40)]
    second += [make_reduction(user_pid="pid-1", dedup_key="trip-42", partner_id=p) for p in ("bus-a", "bus-b")]
    # a consent revoked while its records were in flight: declined `consent_revoked`, by `_id` too
    ops.record_revocation({"consent_id": "consent-revoked", "revoked_at": "2026-11-25T08:00:00Z"})
    second += [make_reduction(user_pid=f"pid-{i}", consent_id="consent-revoked") for i in (2, 3)]
    recorder.clear()
    entries, opened = ops.credit_many(second)
    ops.credit_many(second)  # the same batch redelivered
    assert recorder.commands, "the batch sent no command at all"
    assert recorder.not_by_id() == []
    assert len(opened) == 4  # pid-7 … pid-10 were new in the second batch
    assert {e["type"] for e in entries} >= {ledger.CREDIT, ledger.CAPPED, ledger.DECLINED}
    assert [e["code"] for e in entries[-2:]] == ["consent_revoked"] * 2


def test_batch_credits_equal_one_by_one_credits(repo, ops, mongo_database, make_reduction):
    """The same reductions credited in one batch and one at a time give the same ledger."""
    reductions = [
        make_reduction(user_pid=f"pid-{i % 3}", grams=70 + i, caps=DAILY_CAP, n=10_000 + i) for i in range(30)
    ]
    batch_entries, _ = ops.credit_many(reductions)
    single_repo = Repository(mongo_database("account"))
    single_repo.ensure_indexes()
    single = LedgerOperations(single_repo, Tiers(TIERS))
    single_entries = [single.credit(r) for r in reductions]
    strip = ("posted_at", "hash", "prev_hash", "month")
    assert [{k: v for k, v in e.items() if k not in strip} for e in batch_entries] == [
        {k: v for k, v in e.items() if k not in strip} for e in single_entries
    ]
    # the cap held per user and day: 250 g at most each
    for pid in ("pid-0", "pid-1", "pid-2"):
        assert sum(e["grams"] for e in batch_entries if e["owner_pid"] == pid) == 250


def test_a_redelivered_batch_writes_nothing_new(repo, ops, make_reduction):
    reductions = [make_reduction(user_pid=f"pid-{i % 5}") for i in range(25)]
    first, _ = ops.credit_many(reductions)
    count = repo.entries.count_documents({})
    again, _ = ops.credit_many(list(reversed(reductions)))
    assert repo.entries.count_documents({}) == count
    assert sorted(e["_id"] for e in again) == sorted(e["_id"] for e in first)


def test_two_writers_on_the_same_accounts_keep_seq_gapless(repo, make_reduction):
    """Two processes' appenders (no shared cache) interleave batches on the same accounts: the
    unique (account_id, seq) index makes the loser re-seal; no gap, no double credit."""
    a, b = (LedgerOperations(repo, Tiers(TIERS)) for _ in range(2))
    batches = [[make_reduction(user_pid=f"pid-{i % 4}", grams=10) for i in range(20)] for _ in range(6)]
    for i, batch in enumerate(batches):
        (a if i % 2 == 0 else b).credit_many(batch)
    for pid in range(4):
        account_id = ledger.account_id_for(f"pid-{pid}")
        seqs = [e["seq"] for e in repo.account_entries(account_id)]
        assert seqs == list(range(1, len(seqs) + 1))
        credits = [e for e in repo.account_entries(account_id) if e["type"] == ledger.CREDIT]
        assert len(credits) == 30 and sum(e["grams"] for e in credits) == 300


def test_entries_after_a_watermark_read_by_id_only(recorded_ops, make_reduction):
    """The bridge's periodic read: what is new since its watermark, never the history."""
    from account.queries import Queries

    ops, recorder = recorded_ops
    ops.credit_many([make_reduction(user_pid="pid-w", grams=10 + i) for i in range(30)])
    queries = Queries(ops.repo, ops.appender)
    account_id = ledger.account_id_for("pid-w")
    recorder.clear()
    first = queries.entries_after(account_id, 0, limit=20)
    rest = queries.entries_after(account_id, first["last_seq"], limit=20)
    nothing = queries.entries_after(account_id, rest["last_seq"], limit=20)
    assert recorder.not_by_id() == []
    assert [e["seq"] for e in first["entries"] + rest["entries"]] == list(range(1, 32))  # opening + 30 credits
    assert nothing == {"entries": [], "last_seq": 31}
    credits = queries.entries_after(account_id, 0, limit=100, types=["credit"])
    assert [e["grams"] for e in credits["entries"]] == [10 + i for i in range(30)]
