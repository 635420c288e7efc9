"""The account nameko service on the real broker and FerretDB: events in, outbox events out
(validated against the contract), redelivery of the whole stream, RPC, the example consumer."""

import importlib.util
import pathlib

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from carbon_common.events import EventPublisher
from carbon_common.schemas import validate_envelope
from carbon_dev.testing import TEST_MONGO_URI, free_port, wait_until

from account import ledger
from account.service import AccountService

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "bank_event_consumer.py"
DAILY_1 = {"period": "day", "max_grams": 0, "max_count": 1, "scope": "user_scenario"}


@pytest.fixture
def example_consumer(platform_amqp):
    spec = importlib.util.spec_from_file_location("bank_event_consumer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    received = []
    consumer = module.Consumer(platform_amqp["AMQP_URI"], "test.bank-crm", received.append)
    yield consumer, received
    consumer.close()


@pytest.fixture
def service(container_factory, platform_amqp, repo):
    config = dict(
        platform_amqp,
        MONGO_URI=TEST_MONGO_URI,
        MONGO_DATABASE=repo.db.name,
        WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
        TIER_THRESHOLDS="seedling:0,sprout:1000",
        max_workers=1,
    )  # one at a time, in order: see the replay
    container = container_factory(AccountService, config)
    container.start()
    return container


@pytest.fixture
def calc(platform_amqp):
    publisher = EventPublisher(platform_amqp["AMQP_URI"], "calc")
    yield publisher
    publisher.close()


def stream(make_reduction):
    return [
        make_reduction(grams=100, caps=[DAILY_1], n=1),
        make_reduction(grams=100, caps=[DAILY_1], n=2),  # capped
        make_reduction(grams=40, n=3, dedup_key="trip-9", partner_id="metro"),
        make_reduction(grams=40, n=4, dedup_key="trip-9", partner_id="unionpay"),  # same trip
        make_reduction(grams=1200, n=5, scenario="bus_ride"),
    ]  # crosses "sprout"


@pytest.fixture
def listeners(event_listener):
    """Bound before the service starts: it announces the bank pool's opening at once."""
    return {
        t: event_listener("account", t)
        for t in ("account_opened", "account_credited", "reduction_capped", "reduction_declined", "tier_changed")
    }


def test_events_in_ledger_and_contract_events_out_once(
    listeners, service, calc, repo, example_consumer, make_reduction
):
    consumer, received = example_consumer
    reductions = stream(make_reduction)
    for red in reductions:
        calc.publish("reduction_calculated", red, event_id=red["reduction_id"])
    credited = listeners["account_credited"].wait(3, timeout=30)
    capped = listeners["reduction_capped"].wait(1)
    declined = listeners["reduction_declined"].wait(1)
    tier = listeners["tier_changed"].wait(1)
    opened = listeners["account_opened"].wait(2)  # alice and the bank pool
    for envelope in credited + capped + declined + tier + opened:
        validate_envelope(envelope)
        assert envelope["producer"] == "account"
    assert sorted(e["data"]["grams"] for e in credited) == [40, 100, 1200]
    assert all(e["event_id"] == e["data"]["entry"]["entry_id"] for e in credited)
    assert repo.get_entry(credited[0]["event_id"]) is not None  # no event without its entry
    assert capped[0]["data"]["requested_grams"] == 100 and capped[0]["data"]["cap_max_count"] == 1
    assert declined[0]["data"]["code"] == "duplicate_behaviour"
    assert (tier[0]["data"]["previous_tier"], tier[0]["data"]["tier"]) == ("seedling", "sprout")
    assert "user_pid" not in str(credited) and "customer" not in str(credited)
    wait_until(
        lambda: consumer.drain() or len({e["event_type"] for e in received}) >= 5,
        timeout=20,
        message="example consumer received the account events",
    )
    assert {e["event_id"] for e in credited} <= {e["event_id"] for e in received}

    # replay the whole stream: the ledger does not change, no new entry, no new event id
    account_id = ledger.account_id_for("pid-alice")
    before = repo.account_entries(account_id)
    for red in reductions:
        calc.publish("reduction_calculated", red, event_id=red["reduction_id"])
    sentinel = make_reduction(user_pid="pid-sentinel", grams=1)
    calc.publish("reduction_calculated", sentinel, event_id=sentinel["reduction_id"])

    def credited_ids():
        return [r["body"]["data"].get("reduction_id") for r in listeners["account_credited"].drain()]

    wait_until(
        lambda: sentinel["reduction_id"] in credited_ids(),
        timeout=30,
        message="the sentinel, published after the replay, was credited",
    )
    assert repo.account_entries(account_id) == before
    # A replayed reduction may announce its entry again (the batch cannot tell a replay from a
    # redelivery after a crash before the confirm), but only under the original event_id.
    events = listeners["account_credited"].drain()
    assert {r["body"]["event_id"] for r in events} == {e["event_id"] for e in credited} | {
        next(r["body"]["event_id"] for r in events if r["body"]["data"].get("reduction_id") == sentinel["reduction_id"])
    }


def test_rpc_reads_redeem_and_personal_data_deletion(
    service, platform_amqp, calc, repo, make_reduction, event_listener
):
    debited = event_listener("account", "account_debited")
    pool_credit = event_listener("account", "account_credited")
    red = make_reduction(grams=500, n=7)
    calc.publish("reduction_calculated", red, event_id=red["reduction_id"])
    with ServiceRpcProxy("account", platform_amqp) as account:

        def balance():
            try:
                return account.get_balance(owner_pid="pid-alice")["balance_grams"]
            except RemoteError:  # the account opens with its first credit, asynchronously
                return None

        wait_until(lambda: balance() == 500, timeout=20)
        result = account.redeem(200, "rpc-req-1", "movie", owner_pid="pid-alice")
        assert result["entry"]["balance_after"] == 300 and not result["replayed"]
        assert account.redeem(200, "rpc-req-1", "movie", owner_pid="pid-alice")["replayed"]
        with pytest.raises(RemoteError) as refused:
            account.redeem(301, "rpc-req-2", owner_pid="pid-alice")
        assert refused.value.exc_type == "InsufficientBalance"
        page = account.list_entries(owner_pid="pid-alice", types=["redemption"])
        assert [e["request_key"] for e in page["entries"]] == ["rpc-req-1"]
        statement = account.get_statement(ledger.utc_now_iso()[:7], owner_pid="pid-alice")
        assert (statement["redeemed_grams"], statement["closing_balance"]) == (200, 300)
        [debit] = debited.wait(1)
        assert debit["data"]["reason"] == "redemption" and debit["data"]["grams"] == 200
        wait_until(
            lambda: any(r["body"]["data"]["reason"] == "redemption_transfer" for r in pool_credit.drain()),
            timeout=20,
            message="the pool's account_credited",
        )
        assert account.get_totals()["pool_grams"] == 200

        account.open_account("pid-carol", "individual", "Carol C.")
        ingest = EventPublisher(platform_amqp["AMQP_URI"], "ingest")
        ingest.publish("personal_data_deleted", {"user_pid": "pid-carol", "requested_at": "2026-11-25T00:00:00Z"})
        ingest.close()
        wait_until(lambda: "alias" not in repo.get_account(ledger.account_id_for("pid-carol")), timeout=20)
        assert account.get_account(owner_pid="pid-carol")["status"] == "open"


def test_a_consent_revoked_in_ingest_declines_its_records_not_yet_credited(
    service, calc, repo, make_reduction, event_listener
):
    declined = event_listener("account", "reduction_declined")
    credited = event_listener("account", "account_credited")
    before = make_reduction(user_pid="pid-dora", grams=300, consent_id="cns-dora")
    calc.publish("reduction_calculated", before, event_id=before["reduction_id"])
    credited.wait(1, timeout=20)

    ingest = EventPublisher(service.config["AMQP_URI"], "ingest")
    revocation = {
        "consent_id": "cns-dora",
        "user_pid": "pid-dora",
        "partner_id": "metro-sz",
        "scenarios": ["metro_ride"],
        "revoked_at": "2026-11-25T08:00:00Z",
    }
    ingest.publish("consent_revoked", revocation, event_id="consent_revoked:cns-dora")
    ingest.close()
    wait_until(lambda: repo.revoked_consents_among(["cns-dora"]), timeout=20, message="the revocation recorded")

    in_flight = make_reduction(user_pid="pid-dora", grams=200, consent_id="cns-dora")
    calc.publish("reduction_calculated", in_flight, event_id=in_flight["reduction_id"])
    [event] = declined.wait(1, timeout=20)
    validate_envelope(event)
    assert (event["data"]["reduction_id"], event["data"]["code"]) == (in_flight["reduction_id"], "consent_revoked")
    entries = repo.account_entries(ledger.account_id_for("pid-dora"))
    assert [(e["type"], e["grams"]) for e in entries[1:]] == [("credit", 300), ("declined", 0)]
    assert entries[-1]["balance_after"] == 300  # credited before the revocation: it stays
