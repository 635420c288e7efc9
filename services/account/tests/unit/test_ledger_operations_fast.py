"""The ledger's service layer (LedgerOperations over the Appender) against FakeRepository: what
a bank cares about — exactly-once crediting, exact caps, no overdraft, reversals, no
half-written state — in milliseconds, with no server. The same paths on FerretDB:
tests/integration/test_account_ledger_ops.py and test_account_concurrency.py."""

from datetime import datetime, timedelta

import pytest
from pymongo.errors import AutoReconnect, DuplicateKeyError

from account import caps, ledger, posting
from account.ledger import AccountNotOpen, InsufficientBalance, RequestKeyReused
from account.operations import LedgerOperations
from account.outbox import Relay
from account.repository import Repository
from account.tiers import Tiers
from account.verifier import verify_chain
from carbon_common.accounts import pool_owner_for
from carbon_common.clock import iso_z
from carbon_dev import payloads

from account_fakes import FakePublisher, FakeRepository


def cst_noon(days_ago: int, hour: int = 12) -> str:
    """occurred_at (UTC, Z) of a time on the China Standard Time day `days_ago` days ago."""
    day = (datetime.now(caps.CST) - timedelta(days=days_ago)).date()
    return iso_z(datetime(day.year, day.month, day.day, hour, tzinfo=caps.CST), "seconds")


RECENT = cst_noon(1)
# Older than the state's cap-usage retention: the cap is re-summed from the stored entries.
LATE = cst_noon(caps.RETENTION_DAYS + 10)
DAY_CAP = {"period": "day", "max_grams": 1000, "max_count": 0, "scope": "user_scenario"}


def reduction(user: str, n: int, grams: int, occurred_at: str = RECENT, caps_=(), **extra) -> dict:
    return payloads.reduction(user, n, grams, occurred_at=occurred_at, caps=list(caps_), **extra)


def acc(user: str) -> str:
    return ledger.account_id_for(user)


@pytest.fixture
def repo():
    return FakeRepository()


def new_ops(repo) -> LedgerOperations:
    """One account process (what dependencies.build_ledger builds, over the fake)."""
    ops = LedgerOperations(repo, Tiers())
    ops.pool_account()
    return ops


@pytest.fixture
def ops(repo):
    return new_ops(repo)


def balance(repo, user: str = "", account_id: str = "") -> int:
    entries = repo.account_entries(account_id or acc(user))
    return entries[-1]["balance_after"] if entries else 0


def money_events(publisher) -> list[tuple[str, str, int]]:
    """(event type, reason, grams) of the credit/debit events published, sorted."""
    return sorted(
        (t, d["reason"], d["grams"])
        for t, d, _, _ in publisher.published
        if t in ("account_credited", "account_debited")
    )


def assert_chain_holds(repo, user: str) -> list[dict]:
    """Seq 1..N without gaps, hashes linked, every state derived from its entries."""
    entries = repo.account_entries(acc(user))
    problems, state = verify_chain(acc(user), entries)
    assert problems == []
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert repo.get_state(acc(user), state["seq"])["balance"] == state["balance"]
    return entries


# exactly-once crediting ---------------------------------------------------------------------
def test_a_batch_credits_each_record_once_with_gapless_seq_and_the_right_balance(repo, ops):
    entries, openings = ops.credit_many(
        [reduction("alice", 1, 120), reduction("bob", 1, 75), reduction("alice", 2, 300)]
    )
    assert [e["type"] for e in entries] == ["credit"] * 3
    assert {o["account_id"] for o in openings} == {acc("alice"), acc("bob")}
    chain = assert_chain_holds(repo, "alice")
    assert [(e["type"], e["grams"], e["balance_after"]) for e in chain] == [
        ("opened", 0, 0),
        ("credit", 120, 120),
        ("credit", 300, 420),
    ]
    assert balance(repo, "bob") == 75
    # audit: each entry pins the methodology and factor set it was computed with
    assert chain[1]["methodology_version"] == "1.0.0" and chain[1]["factor_set_version"] == "2026.1"


def test_the_same_record_redelivered_is_credited_once(repo, ops):
    first, _ = ops.credit_many([reduction("alice", 1, 120)])
    again, openings = ops.credit_many([reduction("alice", 1, 120), reduction("alice", 1, 120)])
    later = new_ops(repo).credit(reduction("alice", 1, 120))  # another process, empty caches
    assert [e["_id"] for e in again] == [first[0]["_id"]] * 2 and later["_id"] == first[0]["_id"]
    assert openings == []  # alice's account is known and opened: no opening entry again
    assert [e["type"] for e in assert_chain_holds(repo, "alice")] == ["opened", "credit"]
    assert balance(repo, "alice") == 120


def test_the_same_trip_from_two_partners_is_credited_once(repo, ops):
    metro = reduction("alice", 1, 200, dedup_key="trip-42")
    bike = reduction("alice", 2, 200, dedup_key="trip-42", partner_id="bike-share")
    entries, _ = ops.credit_many([metro, bike])
    assert [e["type"] for e in entries] == ["credit", "declined"]
    assert entries[1]["code"] == "duplicate_behaviour"
    assert entries[1]["duplicate_of_record_key"] == metro["record_key"]
    # the first partner's record redelivered keeps its credit (it holds the claim itself)
    assert ops.credit(metro)["type"] == "credit"
    assert ops.credit(reduction("alice", 3, 200, dedup_key="trip-42"))["type"] == "declined"
    assert balance(repo, "alice") == 200


# caps ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("occurred_at", [RECENT, LATE], ids=["recent", "late_scan"])
@pytest.mark.parametrize("batched", [True, False], ids=["one_batch", "one_by_one"])
def test_a_daily_cap_is_exact(repo, ops, occurred_at, batched):
    records = [reduction("alice", n, 400, occurred_at, [DAY_CAP]) for n in range(4)]
    entries = ops.credit_many(records)[0] if batched else [ops.credit(r) for r in records]
    assert [(e["type"], e["grams"]) for e in entries] == [
        ("credit", 400),
        ("credit", 400),
        ("credit", 200),
        ("capped", 0),
    ]
    assert entries[2]["capped_grams"] == 200 and entries[2]["cap"]["period"] == "day"
    assert balance(repo, "alice") == 1000
    next_day = occurred_at.replace(
        occurred_at[:10], (datetime.fromisoformat(occurred_at[:10]) + timedelta(days=1)).date().isoformat()
    )
    assert ops.credit(reduction("alice", 9, 400, next_day, [DAY_CAP]))["grams"] == 400
    assert_chain_holds(repo, "alice")


def test_count_and_monthly_caps_bind_together(repo, ops):
    two_a_day = {"period": "day", "max_grams": 0, "max_count": 2, "scope": "user_scenario"}
    monthly = {"period": "month", "max_grams": 700, "max_count": 0, "scope": "user_scenario"}
    day1, day2 = cst_noon(1), cst_noon(2)
    if day1[:7] != day2[:7]:  # keep both days in one month
        day1, day2 = cst_noon(2), cst_noon(3)
    records = [
        reduction("alice", n, 250, day, [two_a_day, monthly]) for n, day in enumerate([day1, day1, day1, day2, day2])
    ]
    entries, _ = ops.credit_many(records)
    assert [(e["type"], e["grams"]) for e in entries] == [
        ("credit", 250),
        ("credit", 250),
        ("capped", 0),
        ("credit", 200),
        ("capped", 0),
    ]
    assert entries[2]["cap"]["period"] == "day" and entries[3]["cap"]["period"] == "month"


def test_cap_days_are_china_standard_time_days(repo, ops):
    once_a_day = {"period": "day", "max_grams": 0, "max_count": 1, "scope": "user_scenario"}
    evening = cst_noon(2, hour=23)  # 15:00Z; the next CST day starts at 16:00Z the same UTC day
    after_midnight = iso_z(datetime.fromisoformat(evening.replace("Z", "+00:00")) + timedelta(hours=1), "seconds")
    assert evening[:10] == after_midnight[:10]
    entries, _ = ops.credit_many(
        [reduction("alice", 1, 100, evening, [once_a_day]), reduction("alice", 2, 100, after_midnight, [once_a_day])]
    )
    assert [e["type"] for e in entries] == ["credit", "credit"]


@pytest.fixture
def impatient(monkeypatch):
    """Give up after a few attempts (a broken repair fails the test with Contention instead of
    retrying for minutes)."""
    monkeypatch.setattr(posting, "MAX_ATTEMPTS", 8)
    monkeypatch.setattr(posting, "BACKOFF_CAP", 0.002)


def test_caps_hold_when_another_process_left_an_entry_without_its_state(repo, impatient):
    """Process one dies between inserting its entries and their states; process two's cached
    head is then stale: its insert hits the unique seq, it rebuilds the missing state and
    decides the cap against the entries before it."""
    one, two = new_ops(repo), new_ops(repo)
    two.credit_many([reduction("alice", 0, 100, caps_=[DAY_CAP])])  # two caches alice's head
    repo.fail_next("insert_states", AutoReconnect("connection lost"))
    with pytest.raises(AutoReconnect):
        one.credit_many([reduction("alice", 1, 600, caps_=[DAY_CAP])])  # entry in, state lost
    entries, _ = two.credit_many([reduction("alice", 2, 600, caps_=[DAY_CAP])])
    assert (entries[0]["type"], entries[0]["grams"], entries[0]["seq"]) == ("credit", 300, 4)
    chain = assert_chain_holds(repo, "alice")
    assert sum(e["grams"] for e in chain) == 1000
    # the repaired entry's events may never have gone out: it is in the outbox now
    assert ledger.credit_entry_id("red-alice-1") in {m["_id"] for m in repo.pending_outbox(100)}
    # process one's message is redelivered: nothing new
    assert one.credit(reduction("alice", 1, 600, caps_=[DAY_CAP]))["seq"] == 3
    assert len(repo.account_entries(acc("alice"))) == 4


def test_a_single_append_repairs_a_state_another_process_never_wrote(repo, impatient):
    one, two = new_ops(repo), new_ops(repo)
    one.credit_many([reduction("alice", 1, 500)])
    two.redeem(acc("alice"), 100, "order-1")  # two caches alice's head
    repo.fail_next("insert_states", AutoReconnect("connection lost"))
    with pytest.raises(AutoReconnect):
        one.redeem(acc("alice"), 150, "order-2")  # entry in, state lost
    with pytest.raises(InsufficientBalance):  # decided on the real balance
        two.redeem(acc("alice"), 251, "order-3")
    entry, _ = two.redeem(acc("alice"), 250, "order-3")
    assert entry["balance_after"] == 0
    assert [e["grams"] for e in assert_chain_holds(repo, "alice")] == [0, 500, -100, -150, -250]


# a failed batch -------------------------------------------------------------------------------
def test_a_batch_that_failed_to_write_is_credited_when_retried(repo, ops):
    """The store fails under a batch of new customers: nothing is half-written, and the retry
    (the batch handler re-runs it message by message) credits them — not declines them."""
    repo.fail_next("insert_entries_in_order", AutoReconnect("primary stepped down"))
    with pytest.raises(AutoReconnect):
        ops.credit_many([reduction("carol", 1, 150), reduction("dave", 1, 80)])
    assert repo.account_entries(acc("carol")) == [] and repo.account_entries(acc("dave")) == []
    assert ops.credit(reduction("carol", 1, 150))["type"] == "credit"
    assert ops.credit(reduction("dave", 1, 80))["type"] == "credit"
    assert [e["type"] for e in assert_chain_holds(repo, "carol")] == ["opened", "credit"]
    assert balance(repo, "carol") == 150 and balance(repo, "dave") == 80


def test_one_bad_record_leaves_nothing_for_itself_and_spoils_no_other(repo, ops):
    bad = reduction("erin", 1, 90, caps_=[{"period": "week", "max_grams": 10}])
    good = reduction("frank", 1, 60)
    with pytest.raises(caps.InvalidCap):
        ops.credit_many([good, bad])
    assert repo.account_entries(acc("erin")) == [] and repo.account_entries(acc("frank")) == []
    assert ops.credit(good)["grams"] == 60  # handled alone after the batch failed
    with pytest.raises(caps.InvalidCap):
        ops.credit(bad)
    assert repo.get_entry(ledger.credit_entry_id("red-erin-1")) is None
    assert_chain_holds(repo, "frank")


# redemption -----------------------------------------------------------------------------------
def test_redeeming_more_than_the_balance_is_refused_and_leaves_nothing(repo, ops):
    ops.credit_many([reduction("alice", 1, 500)])
    pool = ops.pool_account()["_id"]
    before = (repo.account_entries(acc("alice")), repo.account_entries(pool), repo.pending_outbox(100))
    with pytest.raises(InsufficientBalance):
        ops.redeem(acc("alice"), 501, "order-1", "coupon")
    assert (repo.account_entries(acc("alice")), repo.account_entries(pool), repo.pending_outbox(100)) == before
    assert repo.get_entry(ledger.redemption_entry_id(acc("alice"), "order-1")) is None
    # the same key may then be used for what the balance covers
    entry, replayed = ops.redeem(acc("alice"), 500, "order-1", "coupon")
    assert (entry["grams"], entry["balance_after"], replayed) == (-500, 0, False)


def pool_entries(repo, redemption_id: str) -> list[dict]:
    """Entries of the pool shard a redemption settles to (carbon_common.accounts.pool_owner_for)."""
    return repo.account_entries(ledger.account_id_for(pool_owner_for(redemption_id)))


def relay_all(repo, ops) -> FakePublisher:
    publisher = FakePublisher()
    relay = Relay(repo, ops, publisher)
    while relay.relay_once() or relay.settle_due_once():
        pass
    return publisher


def test_a_redemption_moves_the_grams_to_the_pool_once(repo, ops):
    ops.credit_many([reduction("alice", 1, 500)])
    entry, replayed = ops.redeem(acc("alice"), 300, "order-1", "coupon")
    again, replayed_again = new_ops(repo).redeem(acc("alice"), 300, "order-1", "coupon")
    assert (replayed, replayed_again, again["_id"]) == (False, True, entry["_id"])
    with pytest.raises(RequestKeyReused):  # same key, another amount: refused, nothing written
        ops.redeem(acc("alice"), 100, "order-1", "coupon")
    assert balance(repo, "alice") == 200
    # settled by the relay's pass, which then announces the redemption and the transfer once
    publisher = relay_all(repo, ops)
    transfers = [e for e in pool_entries(repo, entry["_id"]) if e["type"] == "redemption_transfer"]
    assert [(t["grams"], t["source_entry_id"]) for t in transfers] == [(300, entry["_id"])]
    assert money_events(publisher) == [
        ("account_credited", "redemption_transfer", 300),
        ("account_debited", "redemption", 300),
    ]
    assert repo.pending_outbox(100) == [] and money_events(relay_all(repo, new_ops(repo))) == []


def test_a_settlement_interrupted_before_the_pools_credit_is_completed_once(repo, ops):
    ops.credit_many([reduction("alice", 1, 500)])
    entry, _ = ops.redeem(acc("alice"), 300, "order-1", "coupon")
    # the relay decides the settlement, then loses the store before the pool's credit
    repo.fail_next("insert_entries_in_order", AutoReconnect("connection lost"))
    with pytest.raises(AutoReconnect):
        Relay(repo, ops, FakePublisher()).relay_once()
    assert balance(repo, "alice") == 200 and len(pool_entries(repo, entry["_id"])) == 1
    publisher = relay_all(repo, new_ops(repo))  # another process's relay finishes it
    assert [(e["type"], e["grams"]) for e in pool_entries(repo, entry["_id"])] == [
        ("opened", 0),
        ("redemption_transfer", 300),
    ]
    assert money_events(publisher) == [
        ("account_credited", "redemption_transfer", 300),
        ("account_debited", "redemption", 300),
    ]
    assert repo.pending_outbox(100) == []


def test_a_frozen_account_earns_nothing_and_cannot_redeem(repo, ops):
    ops.credit_many([reduction("alice", 1, 500)])
    ops.set_status(acc("alice"), "frozen", "fraud-case-7", "fraud_review")
    declined = ops.credit(reduction("alice", 2, 100))
    assert (declined["type"], declined["code"], declined["grams"]) == ("declined", "account_frozen", 0)
    with pytest.raises(AccountNotOpen):
        ops.redeem(acc("alice"), 100, "order-2")
    assert ledger.redemption_entry_id(acc("alice"), "order-2") not in {m["_id"] for m in repo.pending_outbox(100)}
    assert balance(repo, "alice") == 500


# reversals ------------------------------------------------------------------------------------
def test_a_reversal_takes_the_credit_back_once_and_gives_the_cap_room_back(repo, ops):
    ops.credit_many([reduction("alice", 1, 1000, caps_=[DAY_CAP])])
    reversal = {"reduction_id": "red-alice-1", "user_pid": "alice", "reason": "partner_correction"}
    entry = ops.reverse(reversal)
    assert (entry["type"], entry["grams"], entry["shortfall_grams"]) == ("reversal", -1000, 0)
    assert new_ops(repo).reverse(reversal)["_id"] == entry["_id"]  # redelivered: once
    assert balance(repo, "alice") == 0
    assert ops.credit(reduction("alice", 2, 1000, caps_=[DAY_CAP]))["grams"] == 1000
    assert_chain_holds(repo, "alice")


def test_a_reversal_of_redeemed_grams_is_refused_and_recorded_never_overdrawn(repo, ops):
    ops.credit_many([reduction("alice", 1, 400)])
    ops.redeem(acc("alice"), 300, "order-1")
    entry = ops.reverse({"reduction_id": "red-alice-1", "user_pid": "alice"})
    assert (entry["type"], entry["grams"], entry["code"], entry["balance_after"]) == (
        "reversal",
        0,
        "locked_redeemed",
        100,
    )
    assert verify_chain(acc("alice"), repo.account_entries(acc("alice")))[0] == []


def test_a_reversal_that_arrives_first_declines_the_late_credit(repo, ops):
    early = ops.reverse({"reduction_id": "red-alice-1", "user_pid": "alice"})
    assert (early["grams"], early["code"]) == (0, "original_not_credited")
    late = ops.credit(reduction("alice", 1, 400))
    assert (late["type"], late["code"], late["grams"]) == ("declined", "reversed_before_credit", 0)
    assert balance(repo, "alice") == 0


# consent revocation ---------------------------------------------------------------------------
def test_a_revocation_declines_the_consent_s_records_not_yet_credited_and_keeps_the_credited(repo, ops):
    credited = ops.credit(reduction("alice", 1, 400, consent_id="cns-a"))
    assert ops.record_revocation({"consent_id": "cns-a", "revoked_at": "2026-11-25T08:00:00Z"}) is True
    assert ops.record_revocation({"consent_id": "cns-a", "revoked_at": "2026-11-25T09:00:00Z"}) is False

    entries, _ = ops.credit_many(
        [
            reduction("alice", 2, 300, consent_id="cns-a"),  # in flight when the revocation came
            reduction("alice", 3, 200, consent_id="cns-b"),  # another consent of hers
            reduction("bob", 1, 100, consent_id="cns-a", dedup_key="trip-9"),  # the code says why: revoked
        ]
    )
    assert [(e["type"], e.get("code"), e["grams"]) for e in entries] == [
        ("declined", "consent_revoked", 0),
        ("credit", None, 200),
        ("declined", "consent_revoked", 0),
    ]
    assert entries[0]["requested_grams"] == 300 and entries[0]["consent_id"] == "cns-a"
    assert balance(repo, "alice") == 400 + 200  # what was credited before the revocation stays
    assert ops.credit(reduction("alice", 1, 400, consent_id="cns-a")) == credited  # a redelivery: the same entry
    assert_chain_holds(repo, "alice")


def test_a_declined_record_announces_reduction_declined_with_its_code(repo, ops):
    from account.outbox import event_items

    ops.record_revocation({"consent_id": "cns-a", "revoked_at": "2026-11-25T08:00:00Z"})
    entry = ops.credit(reduction("alice", 1, 400, consent_id="cns-a"))
    [(event_type, data, event_id, _)] = event_items(entry)
    assert (event_type, event_id, data["code"]) == ("reduction_declined", entry["_id"], "consent_revoked")


def test_after_a_revocation_a_correction_restates_what_the_ledger_judged_before_and_nothing_else(repo, ops):
    ops.credit(reduction("alice", 1, 400, consent_id="cns-a"))
    ops.record_revocation({"consent_id": "cns-a", "revoked_at": "2026-11-25T08:00:00Z"})
    declined = ops.credit(reduction("alice", 2, 300, consent_id="cns-a"))
    assert declined["code"] == "consent_revoked"

    corrections, _ = ops.credit_many(
        [
            reduction("alice", 1, 350, consent_id="cns-a", reduction_id="red-alice-1-r1", supersedes="red-alice-1"),
            reduction("alice", 2, 250, consent_id="cns-a", reduction_id="red-alice-2-r1", supersedes="red-alice-2"),
            reduction("alice", 3, 250, consent_id="cns-a", reduction_id="red-alice-3-r1", supersedes="red-alice-3"),
        ]
    )
    # credited before the revocation: the correction replaces it as any correction does
    assert (corrections[0]["type"], corrections[0]["grams"]) == ("credit", 350)
    # declined for the revocation, or never judged: the correction counts no more than the original
    assert [(e["type"], e["code"]) for e in corrections[1:]] == [("declined", "consent_revoked")] * 2
    assert balance(repo, "alice") == 350
    assert_chain_holds(repo, "alice")


# the fake itself ------------------------------------------------------------------------------
def test_the_fake_has_the_real_repositorys_signatures():
    import inspect

    for name, method in inspect.getmembers(FakeRepository, inspect.isfunction):
        if name.startswith("_") or name == "fail_next":
            continue
        assert list(inspect.signature(method).parameters) == list(
            inspect.signature(getattr(Repository, name)).parameters
        ), name


def test_the_fake_refuses_what_the_real_unique_indexes_refuse(repo):
    from carbon_common.mongo import is_duplicate_key

    entry = {"_id": "e1", "account_id": "a", "seq": 1}
    repo._insert_entry(entry)
    for clash in ({**entry, "seq": 2}, {**entry, "_id": "e2"}):
        with pytest.raises(DuplicateKeyError) as caught:
            repo._insert_entry(clash)
        assert is_duplicate_key(caught.value)
    assert (
        repo.insert_entries_in_order(
            [{"_id": "e3", "account_id": "a", "seq": 2}, entry, {"_id": "e4", "account_id": "a", "seq": 3}]
        )
        == 1
    )
    assert repo.get_entry("e4") is None
    assert repo.insert_accounts([{"_id": "x", "owner_pid": "p"}, {"_id": "y", "owner_pid": "p"}]) == {1}
