"""Group commit of single appends (account.posting.Appender.append) over FakeRepository: many
gRPC threads redeem at once and are appended by shared rounds, yet every caller gets its own
entry or its own refusal, nothing of a refused or failed request is written (its outbox marker
is dropped) and every chain stays gapless with balance = the sum of its entries."""

import threading
import time

import pytest
from pymongo.errors import AutoReconnect

from account import ledger
from account.ledger import AccountNotOpen, InsufficientBalance
from account.operations import LedgerOperations
from account.tiers import Tiers
from account.verifier import verify_chain
from carbon_dev import payloads

from account_fakes import FakeRepository

PRICE = 10


class SlowRepository(FakeRepository):
    """A round trip takes a moment (as on FerretDB), so concurrent callers meet in one round;
    `gate` (when set up) holds the next round's marker insert until released."""

    def __init__(self):
        super().__init__()
        self.gate: threading.Event | None = None
        self.held = threading.Event()

    def entries_by_ids(self, entry_ids):
        time.sleep(0.0005)
        return super().entries_by_ids(entry_ids)

    def add_outbox_many(self, markers):  # a round's (and only a round's) write of its markers
        gate, self.gate = self.gate, None
        if gate is not None:
            self.held.set()
            gate.wait(10)
        return super().add_outbox_many(markers)

    def insert_entries_in_order(self, entries):
        time.sleep(0.001)
        return super().insert_entries_in_order(entries)


def acc(user: str) -> str:
    return ledger.account_id_for(user)


@pytest.fixture
def repo():
    return SlowRepository()


@pytest.fixture
def ops(repo):
    ops = LedgerOperations(repo, Tiers())
    ops.pool_account()
    return ops


def group_sizes(ops) -> list[int]:
    """Records the number of requests each append_many round carries."""
    sizes, real = [], ops.appender.append_many

    def counting(requests, stored=None):
        sizes.append(len(requests))
        return real(requests, stored)

    ops.appender.append_many = counting
    return sizes


def run_at_once(calls) -> list:
    """Runs each call in its own thread, all released together -> [result or exception]."""
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the caller's own outcome, checked by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def assert_chain_holds(repo, account_id: str) -> list[dict]:
    entries = repo.account_entries(account_id)
    problems, state = verify_chain(account_id, entries)
    assert problems == []
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert sum(e["grams"] for e in entries) == entries[-1]["balance_after"] == state["balance"]
    assert repo.get_state(account_id, state["seq"])["balance"] == state["balance"]
    return entries


def test_concurrent_redemptions_are_appended_together_and_each_caller_gets_its_own_outcome(repo, ops):
    users = [f"cust-{n:02d}" for n in range(24)]
    # 35 g each: three 10 g redemptions fit, the fourth is refused; cust-00 is frozen
    ops.credit_many([payloads.reduction(u, n, 35) for n, u in enumerate(users)])
    ops.set_status(acc(users[0]), "frozen", "freeze-1")
    sizes = group_sizes(ops)
    calls, wanted = [], []
    for u in users:
        for k in range(4):
            calls.append(lambda u=u, k=k: ops.redeem(acc(u), PRICE, f"order-{k}", "coupon"))
            wanted.append((u, f"order-{k}"))
        # the same request twice at once (a client retry): one entry, the other replays it
        calls.append(lambda u=u: ops.redeem(acc(u), PRICE, "order-0", "coupon"))
        wanted.append((u, "order-0"))
    results = run_at_once(calls)

    assert max(sizes) > 1, f"no round held more than one request: {sizes}"
    by_user: dict[str, list] = {u: [] for u in users}
    for (user, key), result in zip(wanted, results):
        by_user[user].append((key, result))
        if isinstance(result, Exception):
            continue
        entry, _ = result
        # its own entry: this account, this key, this amount
        assert entry["_id"] == ledger.redemption_entry_id(acc(user), key)
        assert (entry["account_id"], entry["request_key"], entry["grams"]) == (acc(user), key, -PRICE)

    outbox = {m["_id"] for m in repo.pending_outbox(10_000)}
    for user in users:
        outcomes = by_user[user]
        entries = assert_chain_holds(repo, acc(user))
        redemptions = {e["_id"] for e in entries if e["type"] == ledger.REDEMPTION}
        if user == users[0]:
            assert all(isinstance(r, AccountNotOpen) for _, r in outcomes)
            assert redemptions == set()
            continue
        made = [r for _, r in outcomes if isinstance(r, tuple) and not r[1]]  # created, not replayed
        refused = [r for _, r in outcomes if isinstance(r, Exception)]
        assert len(made) == len(redemptions) == 3
        assert all(isinstance(r, InsufficientBalance) for r in refused)
        # order-0 asked twice: one entry, the other caller got it back (or was refused if it came
        # after the balance ran out, and then order-0 itself was refused too)
        order_0 = [r for key, r in outcomes if key == "order-0"]
        assert sum(isinstance(r, tuple) for r in order_0) in (0, 2)
        assert entries[-1]["balance_after"] == 35 - 3 * PRICE
        # markers: one for each entry made, none for a refused request
        refused_ids = {ledger.redemption_entry_id(acc(user), k) for k, r in outcomes if isinstance(r, Exception)}
        assert redemptions <= outbox and not (refused_ids - redemptions) & outbox
    assert not {ledger.redemption_entry_id(acc(users[0]), f"order-{k}") for k in range(4)} & outbox


def test_one_round_for_many_accounts_one_refusal_and_one_crashing_decide_spoil_no_other(repo, ops):
    users = [f"shop-{n:02d}" for n in range(12)]
    ops.credit_many([payloads.reduction(u, n, 100) for n, u in enumerate(users)])
    markers_before = {m["_id"] for m in repo.pending_outbox(1000)}  # the pool's openings
    sizes = group_sizes(ops)
    # hold a first round, queue all the others behind it: they form the next round together
    repo.gate = gate = threading.Event()
    first = threading.Thread(target=ops.redeem, args=(acc("shop-00"), PRICE, "warm-up"))
    first.start()
    assert repo.held.wait(5)

    def broken(state):
        raise RuntimeError("decide crashed")

    calls = [lambda u=u: ops.redeem(acc(u), PRICE, "order-1") for u in users[1:10]]
    calls.append(lambda: ops.redeem(acc(users[10]), 101, "too-much"))
    calls.append(lambda: ops.appender.append(acc(users[11]), "entry-of-a-broken-decide", broken))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(ops.appender._rounds._queue) < len(calls) and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()
    first.join(10)
    for t in threads:
        t.join(10)

    assert sizes[-1] == len(calls), sizes  # the queued callers went in as one round
    for user, (entry, replayed) in zip(users[1:10], results[:9]):
        assert (entry["account_id"], entry["grams"], replayed) == (acc(user), -PRICE, False)
        assert assert_chain_holds(repo, acc(user))[-1]["balance_after"] == 90
    assert isinstance(results[9], InsufficientBalance)
    assert isinstance(results[10], RuntimeError) and str(results[10]) == "decide crashed"
    for user, entry_id in (
        (users[10], ledger.redemption_entry_id(acc(users[10]), "too-much")),
        (users[11], "entry-of-a-broken-decide"),
    ):
        assert repo.get_entry(entry_id) is None
        assert assert_chain_holds(repo, acc(user))[-1]["balance_after"] == 100
    markers = {m["_id"] for m in repo.pending_outbox(1000)} - markers_before
    assert markers == {e["_id"] for e, _ in results[:9]} | {ledger.redemption_entry_id(acc("shop-00"), "warm-up")}


def test_a_round_that_loses_the_store_fails_each_caller_and_leaves_no_marker(repo, ops):
    users = [f"late-{n}" for n in range(6)]
    ops.credit_many([payloads.reduction(u, n, 100) for n, u in enumerate(users)])
    markers_before = {m["_id"] for m in repo.pending_outbox(1000)}
    repo.fail_next("insert_entries_in_order", AutoReconnect("connection lost"))
    results = run_at_once([lambda u=u: ops.redeem(acc(u), PRICE, "order-1") for u in users])
    failed = [u for u, r in zip(users, results) if isinstance(r, AutoReconnect)]
    assert failed, results  # the round(s) that hit the lost connection
    for user, result in zip(users, results):
        entry_id = ledger.redemption_entry_id(acc(user), "order-1")
        if user in failed:
            assert repo.get_entry(entry_id) is None
        else:
            assert result[0]["_id"] == entry_id
        assert_chain_holds(repo, acc(user))
    assert {m["_id"] for m in repo.pending_outbox(1000)} - markers_before == {
        ledger.redemption_entry_id(acc(u), "order-1") for u in users if u not in failed
    }
    # a retry of a failed call goes through
    for user in failed:
        entry, replayed = ops.redeem(acc(user), PRICE, "order-1")
        assert (entry["grams"], replayed) == (-PRICE, False)
