"""The bridge's service layer (exchange_bridge.bridge.Bridge) against fakes: the pool's grams
reach the exchange once — never twice, never lost — through re-reads, crashes between any two
steps, two bridges at once and refusals; in milliseconds, with no server. The same flow over
the real account service, RabbitMQ, FerretDB and the sandbox: tests/integration/test_bridge.py."""

from datetime import timedelta

import pytest
from pymongo.errors import AutoReconnect

from carbon_common import gm
from carbon_common.clock import utc_now
from exchange_bridge import bridge as bridge_module
from exchange_bridge import domain
from exchange_bridge.bridge import Bridge
from exchange_bridge.exchange import Signer
from exchange_bridge.repository import Repository

from bridge_fakes import FakeAccount, FakeDispatch, FakeExchange, FakeRepository

GRACE = 300


@pytest.fixture(scope="module")
def signer():
    return Signer(*gm.generate_sm2_keypair())


@pytest.fixture
def account():
    return FakeAccount()


@pytest.fixture
def repo():
    return FakeRepository()


@pytest.fixture
def exchange():
    return FakeExchange()


@pytest.fixture
def dispatch():
    return FakeDispatch()


@pytest.fixture
def make_bridge(account, repo, signer, exchange, dispatch):
    """A bridge instance (a process) over the shared store, account and exchange."""

    def make(min_grams: int = 1) -> Bridge:
        return Bridge(account, repo, signer, exchange, dispatch, min_grams=min_grams, claim_grace_seconds=GRACE)

    return make


@pytest.fixture
def later(monkeypatch):
    """Move the bridge's clock past the claim grace period (a later run, minutes after)."""

    def move():
        moment = utc_now() + timedelta(seconds=GRACE + 1)
        monkeypatch.setattr(bridge_module, "utc_now", lambda: moment)

    return move


def registered_grams(exchange) -> int:
    return sum(r["quantity"] for r in exchange.registered.values())


def submitted_entry_ids(repo) -> list[str]:
    """Every entry id in a stored batch, with repeats (an entry in two batches shows twice)."""
    return sorted(e for b in repo.batches.values() for e in b["entry_ids"])


def test_new_pool_credits_become_one_signed_batch_registered_and_announced_once(
    account, repo, exchange, dispatch, make_bridge
):
    entries = [account.post(g) for g in (300, 450, 250)]
    result = make_bridge().run()
    assert result["failed"] == 0 and len(result["registered"]) == 1
    batch_id = result["registered"][0]
    assert list(exchange.registered) == [batch_id] and registered_grams(exchange) == 1000
    [(event_type, payload, event_id)] = dispatch.events
    assert (event_type, event_id) == ("exchange_batch_registered", batch_id)
    assert payload["entry_ids"] == sorted(e["entry_id"] for e in entries) and payload["grams"] == 1000
    ordered = sorted(entries, key=lambda e: e["entry_id"])
    assert payload["merkle_root"] == domain.merkle_root([e["hash"] for e in ordered])
    assert (payload["serial_start"], payload["serial_end"]) == ("CN-PCA-000000000000001", "CN-PCA-000000000001000")
    # the next run finds nothing new: nothing is submitted or announced again
    assert make_bridge().run() == {"registered": [], "failed": 0}
    assert exchange.attempts == [batch_id] and len(dispatch.events) == 1


def test_only_pool_credits_after_the_watermark_are_read_and_submitted(
    account, repo, exchange, make_bridge, monkeypatch
):
    monkeypatch.setattr(bridge_module, "PAGE_SIZE", 2)  # several pages per run
    first = [account.post(g) for g in (100, 200, 300)]
    account.post(-50, kind="reversal")  # not a pool credit (a stray type): never batched
    make_bridge().run()
    seen = account.pool[-1]["seq"]
    assert repo.watermark() == seen
    account.calls.clear()
    second = [account.post(g) for g in (40, 60)]
    (batch_id,) = make_bridge().run()["registered"]
    assert account.calls[0] == seen  # the old entries are not read again
    assert repo.batches[batch_id]["entry_ids"] == sorted(e["entry_id"] for e in second)
    assert submitted_entry_ids(repo) == sorted(e["entry_id"] for e in first + second)
    assert registered_grams(exchange) == 700


def test_entries_read_again_are_not_submitted_twice(account, repo, exchange, make_bridge):
    for grams in (100, 200):
        account.post(grams)
    make_bridge().run()
    repo.progress.clear()  # the watermark is only a hint: lost or stale, the entries are re-read
    assert make_bridge().run() == {"registered": [], "failed": 0}
    assert len(exchange.attempts) == 1 and registered_grams(exchange) == 300
    assert len(repo.claims) == 1  # entries found claimed open no new claim


def test_credits_below_the_minimum_wait_for_more_and_are_not_skipped(account, repo, exchange, make_bridge):
    early = account.post(300)
    assert make_bridge(min_grams=1000).run() == {"registered": [], "failed": 0}
    assert exchange.attempts == [] and repo.claims == {}
    late = account.post(800)
    (batch_id,) = make_bridge(min_grams=1000).run()["registered"]
    assert repo.batches[batch_id]["entry_ids"] == sorted([early["entry_id"], late["entry_id"]])
    assert registered_grams(exchange) == 1100


def test_a_crash_between_claim_and_submission_is_finished_once_after_the_grace(
    account, repo, exchange, make_bridge, later
):
    entries = [account.post(g) for g in (100, 200)]
    make_bridge().claim_new()  # the process dies here: claimed, no batch
    # another run soon after: the claim may still be forming elsewhere, and its entries stay its own
    assert make_bridge().run() == {"registered": [], "failed": 0}
    assert exchange.attempts == [] and len(repo.claims) == 1
    later()
    (batch_id,) = make_bridge().run()["registered"]
    assert repo.batches[batch_id]["entry_ids"] == sorted(e["entry_id"] for e in entries)
    assert make_bridge().run()["registered"] == []
    assert exchange.attempts == [batch_id] and registered_grams(exchange) == 300


def test_a_batch_formed_but_not_submitted_is_submitted_by_the_next_run(account, repo, exchange, make_bridge):
    account.post(500)
    crashed = make_bridge()
    crashed.form(crashed.claim_new())  # dies before submitting
    (batch_id,) = make_bridge().run()["registered"]
    assert exchange.attempts == [batch_id] and registered_grams(exchange) == 500


def test_a_lost_exchange_answer_is_resubmitted_and_registered_once(
    account, repo, exchange, dispatch, make_bridge, monkeypatch
):
    account.post(500)
    with monkeypatch.context() as m:  # the exchange registered it; the answer was never stored
        m.setattr(repo, "record_submission", lambda *a: (_ for _ in ()).throw(AutoReconnect("lost")))
        with pytest.raises(AutoReconnect):
            make_bridge().run()
    assert dispatch.events == []
    (batch_id,) = make_bridge().run()["registered"]
    assert exchange.attempts == [batch_id, batch_id]  # the same batch, same id: idempotent
    assert registered_grams(exchange) == 500 and len(dispatch.events) == 1
    assert dispatch.events[0][1]["serial_start"] == exchange.registered[batch_id]["serial_start"]


def test_an_announcement_not_confirmed_is_repeated_under_the_same_event_id(
    account, repo, exchange, dispatch, make_bridge, monkeypatch
):
    account.post(500)
    with monkeypatch.context() as m:
        m.setattr(repo, "mark_published", lambda *a: (_ for _ in ()).throw(AutoReconnect("lost")))
        with pytest.raises(AutoReconnect):
            make_bridge().run()
    make_bridge().run()
    assert make_bridge().run()["registered"] == []
    (first, again) = dispatch.events
    assert first[2] == again[2] == first[1]["batch_id"] and first[1] == again[1]  # consumers dedupe on it
    assert len(exchange.registered) == 1


def test_a_refused_batch_stays_pending_unannounced_and_is_not_rebatched(account, repo, exchange, dispatch, make_bridge):
    """README: a batch the exchange refuses is retried every run (no rejection record yet)."""
    account.post(500)
    exchange.refusal = "exchange refused batch: 400 invalid_batch"
    assert make_bridge().run() == {"registered": [], "failed": 1}
    assert make_bridge().run() == {"registered": [], "failed": 1}
    assert repo.submissions == {} and dispatch.events == [] and exchange.registered == {}
    assert len(repo.batches) == 1 and len(set(exchange.attempts)) == 1  # the same batch each time
    exchange.refusal = ""
    (batch_id,) = make_bridge().run()["registered"]
    assert list(exchange.registered) == [batch_id] and registered_grams(exchange) == 500


def test_two_bridges_claiming_the_same_entries_submit_them_once(
    account, repo, exchange, make_bridge, monkeypatch, later
):
    entries = [account.post(g) for g in (100, 200, 300)]
    slow, fast = make_bridge(), make_bridge()
    open_claim = repo.open_claim

    def race(claim_id, claimed_at):  # `slow` read the entries as unclaimed; `fast` runs first
        monkeypatch.setattr(repo, "open_claim", open_claim)
        fast.run()
        open_claim(claim_id, claimed_at)

    monkeypatch.setattr(repo, "open_claim", race)
    assert slow.run()["registered"] == []  # its claim won no entry: no batch
    later()
    make_bridge().run()  # the empty claim is not "recovered" into anything
    assert len(repo.claims) == 2 and len(repo.batches) == 1
    assert submitted_entry_ids(repo) == sorted(e["entry_id"] for e in entries)
    assert len(exchange.attempts) == 1 and registered_grams(exchange) == 600


def test_a_claim_that_won_only_some_entries_batches_only_those(
    account, repo, exchange, make_bridge, monkeypatch, later
):
    """Another bridge claimed two of the three entries this one read, and died before forming."""
    entries = [account.post(g) for g in (100, 200, 300)]
    open_claim = repo.open_claim

    def race(claim_id, claimed_at):
        monkeypatch.setattr(repo, "open_claim", open_claim)
        open_claim("other-bridge", claimed_at)
        repo.claim_items([domain.item_from_entry(e, "other-bridge", claimed_at) for e in entries[:2]])
        open_claim(claim_id, claimed_at)

    monkeypatch.setattr(repo, "open_claim", race)
    (mine,) = make_bridge().run()["registered"]
    assert repo.batches[mine]["entry_ids"] == [entries[2]["entry_id"]]
    later()
    (recovered,) = make_bridge().run()["registered"]
    assert repo.batches[recovered]["entry_ids"] == sorted(e["entry_id"] for e in entries[:2])
    assert submitted_entry_ids(repo) == sorted(e["entry_id"] for e in entries)
    assert registered_grams(exchange) == 600


def test_no_pool_account_yet_means_nothing_to_do(repo, exchange, make_bridge):
    assert make_bridge().run() == {"registered": [], "failed": 0}
    assert repo.claims == {} and exchange.attempts == []


def test_the_fake_has_the_real_repositorys_signatures():
    import inspect

    for name, method in inspect.getmembers(FakeRepository, inspect.isfunction):
        if not name.startswith("_"):
            real = getattr(Repository, name)
            assert list(inspect.signature(method).parameters) == list(inspect.signature(real).parameters), name
