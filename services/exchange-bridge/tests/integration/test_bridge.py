"""The bridge as a real nameko service, beside the real account service, RabbitMQ, FerretDB and
the sandbox process: redeemed grams in the bank pool become one signed, registered batch."""

from datetime import timedelta

import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from account.repository import Repository as AccountRepository
from account.service import AccountService
from carbon_common import gm
from carbon_common.accounts import POOL_OWNER
from carbon_common.canonical import canonical_bytes
from carbon_common.clock import iso_z, utc_now
from carbon_common.events import EventPublisher
from carbon_dev import payloads
from carbon_common.mongo import client
from carbon_common.schemas import validate_envelope
from carbon_dev.testing import TEST_MONGO_URI, free_port

from exchange_bridge import domain
from exchange_bridge.bridge import Bridge
from exchange_bridge.exchange import Signer
from exchange_bridge.repository import Repository
from exchange_bridge.service import ExchangeBridgeService


@pytest.fixture
def account_config(container_factory, platform_amqp, mongo_database):
    db = mongo_database("account")
    AccountRepository(db).ensure_indexes()
    config = dict(
        platform_amqp, MONGO_URI=TEST_MONGO_URI, MONGO_DATABASE=db.name, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"
    )
    container_factory(AccountService, config).start()
    return config


def reduction(user_pid: str, n: int, grams: int) -> dict:
    return payloads.reduction(user_pid, n, grams, factors={}, inputs={}, baseline_g="0", project_g="0")


@pytest.fixture
def redeemed(account_config, wait_until):
    """Two customers credited through calc events, then each redeems part of it: {owner: grams}."""
    publisher = EventPublisher(account_config["AMQP_URI"], "calc")
    for red in (reduction("pid-alice", 1, 1200), reduction("pid-bob", 1, 800)):
        publisher.publish("reduction_calculated", red, event_id=red["reduction_id"])
    publisher.close()
    redemptions = {"pid-alice": 700, "pid-bob": 450}
    with ServiceRpcProxy("account", account_config) as account:
        wait_until(lambda: all(_balance(account, pid) > 0 for pid in redemptions), 30, message="credits posted")
        for pid, grams in redemptions.items():
            account.redeem(grams=grams, request_key=f"reward-{pid}", reward_id="metro-coupon", owner_pid=pid)
    return redemptions


def _balance(account, pid):
    try:
        return account.get_balance(owner_pid=pid)["balance_grams"]
    except RemoteError:  # the account opens with its first credit, asynchronously
        return 0


def pool_entries(account_config) -> list[dict]:
    with ServiceRpcProxy("account", account_config) as account:
        return account.list_entries(owner_pid=POOL_OWNER, types=["redemption_transfer"], page_size=500)["entries"]


def test_redeemed_grams_become_one_signed_registered_batch(
    redeemed, account_config, bridge_config, keys, sandbox_factory, container_factory, event_listener
):
    exchange = sandbox_factory()
    config = bridge_config(exchange)
    container_factory(ExchangeBridgeService, config).start()
    events = event_listener("exchange_bridge", "exchange_batch_registered")

    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        first = bridge.run_batch()
        second = bridge.run_batch()

    assert len(first["registered"]) == 1 and second == {"registered": [], "failed": 0}
    [event] = events.wait(1)
    validate_envelope(event)
    data = event["data"]
    entries = pool_entries(account_config)
    assert data["grams"] == sum(redeemed.values()) and data["record_count"] == len(redeemed)
    assert data["entry_ids"] == sorted(e["entry_id"] for e in entries)
    assert data["batch_id"] == first["registered"][0] == domain.batch_id(data["entry_ids"])
    by_id = {e["entry_id"]: e for e in entries}
    assert data["merkle_root"] == domain.merkle_root([by_id[i]["hash"] for i in data["entry_ids"]])

    stored = client(TEST_MONGO_URI)[config["MONGO_DATABASE"]]["batches"].find_one({"_id": data["batch_id"]})
    assert gm.sm2_verify(keys[1], canonical_bytes(stored["batch"]), bytes.fromhex(stored["signature"]))
    registry = requests.get(f"{exchange}/v1/batches", timeout=5).json()
    assert [(b["batch_id"], b["quantity"], b["serial_start"]) for b in registry["batches"]] == [
        (data["batch_id"], sum(redeemed.values()), data["serial_start"])
    ]
    assert len(events.drain()) == 1  # the second run announced nothing


def test_a_503_then_success_registers_exactly_once(
    redeemed, bridge_config, sandbox_factory, container_factory, event_listener
):
    exchange = sandbox_factory(fail_first=1)
    config = bridge_config(exchange)
    container_factory(ExchangeBridgeService, config).start()
    events = event_listener("exchange_bridge", "exchange_batch_registered")

    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        result = bridge.run_batch()

    assert len(result["registered"]) == 1 and result["failed"] == 0
    registry = requests.get(f"{exchange}/v1/batches", timeout=5).json()
    assert registry["attempts"] == 2 and len(registry["batches"]) == 1
    assert [e["data"]["grams"] for e in events.wait(1)] == [sum(redeemed.values())]


def test_nothing_to_batch_sends_nothing(account_config, bridge_config, sandbox_factory, container_factory):
    exchange = sandbox_factory()
    config = bridge_config(exchange)
    container_factory(ExchangeBridgeService, config).start()
    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        assert bridge.run_batch() == {"registered": [], "failed": 0}
        assert bridge.ping() == {"service": "exchange_bridge", "status": "ok"}
    assert requests.get(f"{exchange}/v1/batches", timeout=5).json()["attempts"] == 0


def test_a_claim_abandoned_longer_than_the_grace_gets_its_batch_formed(
    redeemed, account_config, bridge_config, keys, sandbox_factory, container_factory, event_listener
):
    config = bridge_config(sandbox_factory())
    db = client(TEST_MONGO_URI)[config["MONGO_DATABASE"]]
    repo = Repository(db)
    repo.ensure_indexes()
    # A bridge claims the pool's credits and dies before forming their batch.
    with ServiceRpcProxy("account", account_config) as account:
        dying = Bridge(account, repo, Signer(*keys), exchange=None, dispatch=None, claim_grace_seconds=300)
        claim_id = dying.claim_new()
        dying.recover_claims()  # a claim younger than the grace may still be forming: left alone
    assert claim_id and db.batches.count_documents({}) == 0
    entry_ids = sorted(item["entry_id"] for item in repo.items_of_claim(claim_id))
    assert entry_ids == sorted(e["entry_id"] for e in pool_entries(account_config))
    db.claims.update_one({"_id": claim_id}, {"$set": {"claimed_at": iso_z(utc_now() - timedelta(seconds=301))}})

    container_factory(ExchangeBridgeService, config).start()  # grace 300 s (the default)
    events = event_listener("exchange_bridge", "exchange_batch_registered")
    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        result = bridge.run_batch()

    assert result == {"registered": [domain.batch_id(entry_ids)], "failed": 0}
    stored = db.batches.find_one({"_id": result["registered"][0]})
    assert stored["claim_id"] == claim_id and stored["entry_ids"] == entry_ids
    [event] = events.wait(1)
    assert event["data"]["entry_ids"] == entry_ids and event["data"]["grams"] == sum(redeemed.values())
    assert repo.claims_without_batch(iso_z(utc_now())) == []


@pytest.mark.parametrize("missing", ["BRIDGE_SM2_PRIVATE_KEY", "BRIDGE_SM2_PUBLIC_KEY"])
def test_bridge_refuses_to_start_without_its_signing_keys(missing, bridge_config, container_factory):
    config = bridge_config("https://exchange.example.cn")
    del config[missing]
    with pytest.raises(SystemExit, match=missing):
        container_factory(ExchangeBridgeService, config).start()
