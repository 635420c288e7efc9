"""The bridge as a real nameko service, beside the real account service, the real registry
process, RabbitMQ and FerretDB: customers' redeemed reductions become batches per methodology
and vintage, issued as whole tonnes, the remainder carried to the group's next batch."""

import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from account.repository import Repository as AccountRepository
from account.service import AccountService
from carbon_common.accounts import POOL_OWNERS
from carbon_common.events import EventPublisher
from carbon_common.schemas import validate_envelope
from carbon_dev import payloads
from carbon_dev.testing import TEST_MONGO_URI, free_port
from exchange_bridge.registry_client import RegistryClient
from exchange_bridge.service import ExchangeBridgeService

from registry_support import ADMIN_TOKEN, onboard_over_http

pytestmark = pytest.mark.integration
TONNE = 1_000_000


@pytest.fixture
def account_config(container_factory, platform_amqp, mongo_database):
    db = mongo_database("account")
    AccountRepository(db).ensure_indexes()
    config = dict(
        platform_amqp, MONGO_URI=TEST_MONGO_URI, MONGO_DATABASE=db.name, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"
    )
    container_factory(AccountService, config).start()
    return config


def reduction(user_pid: str, n: int, grams: int, methodology: str, occurred_at: str) -> dict:
    return payloads.reduction(
        user_pid,
        n,
        grams,
        scenario=methodology,
        methodology_id=methodology,
        methodology_version="1",
        occurred_at=occurred_at,
        factors={},
        inputs={},
        baseline_g="0",
        project_g="0",
    )


def _balance(account, pid):
    try:
        return account.get_balance(owner_pid=pid)["balance_grams"]
    except RemoteError:  # the account opens with its first credit, asynchronously
        return 0


def earn_and_redeem(config, wait_until, earned: dict[str, list[tuple]], redeem: dict[str, int]) -> dict[str, dict]:
    """Credit each customer's reductions through calc's event, then redeem -> {reduction id: reduction}."""
    publisher = EventPublisher(config["AMQP_URI"], "calc")
    made = {}
    for pid, items in earned.items():
        for n, grams, methodology, occurred_at in items:
            red = reduction(pid, n, grams, methodology, occurred_at)
            made[red["reduction_id"]] = red
            publisher.publish("reduction_calculated", red, event_id=red["reduction_id"])
    publisher.close()
    totals = {pid: sum(g for _, g, _, _ in items) for pid, items in earned.items()}
    with ServiceRpcProxy("account", config) as account:
        wait_until(lambda: all(_balance(account, p) >= totals[p] for p in totals), 30, message="credits posted")
        for pid, grams in redeem.items():
            account.redeem(grams=grams, request_key=f"reward-{pid}-{grams}", reward_id="metro-coupon", owner_pid=pid)
    return made


@pytest.fixture
def registry(registry_process):
    url, _ = registry_process()
    return url, onboard_over_http(url)


def test_redeemed_reductions_become_whole_tonnes_per_methodology_and_vintage(
    account_config, registry, bridge_config, container_factory, event_listener, wait_until
):
    url, bank = registry
    config = bridge_config(url, bank, BRIDGE_MIN_GRAMS=str(TONNE))
    container_factory(ExchangeBridgeService, config).start()
    events = event_listener("exchange_bridge", "exchange_batch_registered")
    y2026, y2025 = "2026-11-25T02:00:00Z", "2025-08-01T09:00:00+08:00"
    made = earn_and_redeem(
        account_config,
        wait_until,
        {
            "pid-alice": [
                (1, 700_000, "metro_ride", y2026),
                (2, 400_000, "metro_ride", y2026),
                (3, 600_000, "bus_ride", y2025),
            ],
            "pid-bob": [(1, 500_000, "metro_ride", y2026), (2, 500_000, "bus_ride", y2025)],
            # carol redeems her metro ride only: her walk stays in her account, never batched
            "pid-carol": [(1, 300_000, "metro_ride", y2026), (2, 200_000, "walking", y2026)],
        },
        {"pid-alice": 1_700_000, "pid-bob": 1_000_000, "pid-carol": 300_000},
    )

    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        first = bridge.run_batch()
        assert bridge.run_batch()["registered"] == [] and first["failed"] == 0
        overview = bridge.overview()

    client = RegistryClient(url, bank.participant, bank.key_id, bank.private)
    issued = {s["batch"]["methodology_id"]: s for s in (client.status(b) for b in first["registered"])}
    assert set(issued) == {"metro_ride", "bus_ride"}
    metro, bus = issued["metro_ride"], issued["bus_ride"]
    # 0.7 + 0.4 + 0.5 + 0.3 = 1.9 t: 1 unit, 900 kg carried; 0.6 + 0.5 = 1.1 t: 1 unit, 100 kg carried
    assert (metro["batch"]["vintage"], metro["units"], metro["carried_out_grams"]) == (2026, 1, 900_000)
    assert (bus["batch"]["vintage"], bus["units"], bus["carried_out_grams"]) == (2025, 1, 100_000)
    received = {e["data"]["batch_id"]: e for e in events.wait(2)}
    for envelope in received.values():
        validate_envelope(envelope)
    metro_event = received[metro["batch_id"]]["data"]
    assert sorted(metro_event["reduction_ids"]) == sorted(
        r for r, red in made.items() if red["methodology_id"] == "metro_ride"
    )
    assert metro_event["units"] == 1 and metro_event["carried_out_grams"] == 900_000
    assert metro_event["serial_block"] == "CN-PCA-METRO-RIDE-V1-2026-000000001-000000001"
    groups = {g["group"]: g for g in overview["groups"]}
    assert set(groups) == {"metro_ride:1:2026", "bus_ride:1:2025"}  # carol's walk never reached the pool's batches

    # a later redemption: dan's 150 kg + the 900 kg carried make the group's next tonne
    earn_and_redeem(account_config, wait_until, {"pid-dan": [(1, 150_000, "metro_ride", y2026)]}, {"pid-dan": 150_000})
    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        [second] = bridge.run_batch()["registered"]
        retired = bridge.retire_units(second, 1, "pid-dan", "personal offset", "retire-dan-1")
    follow = client.status(second)
    assert (follow["batch"]["carried_from"], follow["batch"]["carried_in_grams"]) == (metro["batch_id"], 900_000)
    assert (follow["units"], follow["carried_out_grams"], follow["serial_start"]) == (1, 50_000, 2)
    assert retired["state"] == "retired" and retired["start"] == 2
    assert client.status(second)["status"] == "retired"


def test_a_correction_after_intake_reaches_the_registry_at_the_corrected_grams(
    account_config, registry, bridge_config, container_factory, wait_until
):
    """ADR 0005 §2 in the common order: the bridge has queued a redeemed reduction when calc's
    correction lowers it. The batch formed later carries the corrected grams, the pool chain that
    received the transfer writes the difference off once, and reconciliation agrees. A correction
    that reaches the ledger only after the batch was formed is listed as overstated at the exchange."""
    url, bank = registry
    config = bridge_config(url, bank, BRIDGE_MIN_GRAMS=str(TONNE))
    container_factory(ExchangeBridgeService, config).start()
    day = "2026-11-25T02:00:00Z"
    made = earn_and_redeem(
        account_config, wait_until, {"pid-erin": [(1, 700_000, "metro_ride", day)]}, {"pid-erin": 700_000}
    )
    (rid,) = made
    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        queued = bridge.run_batch()
    assert queued["intake"]["reductions"] == 1 and queued["registered"] == []  # 700 kg: below a tonne

    # calc's correction of the redeemed reduction: 520 kg under the corrected factors
    publisher = EventPublisher(account_config["AMQP_URI"], "calc")
    correction = {"reduction_id": rid, "record_key": made[rid]["record_key"], "user_pid": "pid-erin"}
    correction.update(
        scenario="metro_ride", reason="factor_corrected", corrected_by_version="2", corrected_grams=520_000
    )
    publisher.publish("reduction_reversed", correction, event_id="reversal-" + rid)
    publisher.close()
    with ServiceRpcProxy("account", account_config) as account:

        def refused():
            page = account.list_entries(owner_pid="pid-erin", types=["reversal"])
            return [e for e in page["entries"] if e.get("code") == "locked_redeemed"]

        (refusal,) = wait_until(refused, 30, message="the correction recorded")
        assert (refusal["grams"], refusal["corrected_grams"]) == (0, 520_000)  # erin keeps her reward
        finn = earn_and_redeem(
            account_config, wait_until, {"pid-finn": [(1, 600_000, "metro_ride", day)]}, {"pid-finn": 600_000}
        )
        with ServiceRpcProxy("exchange_bridge", config) as bridge:
            (batch_id,) = bridge.run_batch()["registered"]
            report = bridge.reconcile()
        offs = [e for pool in POOL_OWNERS for e in _entries_of(account, pool) if e["type"] == "correction_write_off"]

        # finn's reduction corrected too late (before calc heard of the issuance): the batch holds 600 kg
        (late,) = finn
        publisher = EventPublisher(account_config["AMQP_URI"], "calc")
        publisher.publish(
            "reduction_reversed",
            dict(
                correction,
                reduction_id=late,
                record_key=finn[late]["record_key"],
                user_pid="pid-finn",
                corrected_grams=450_000,
            ),
            event_id="reversal-" + late,
        )
        publisher.close()
        wait_until(
            lambda: [
                e
                for e in account.list_entries(owner_pid="pid-finn", types=["reversal"])["entries"]
                if e.get("code") == "locked_redeemed"
            ],
            30,
            message="the late correction recorded",
        )
        with ServiceRpcProxy("exchange_bridge", config) as bridge:
            later = bridge.reconcile()
    status = RegistryClient(url, bank.participant, bank.key_id, bank.private).status(batch_id)
    # 520 + 600 kg: one tonne, 120 kg carried — the 180 kg the correction took never reach the registry
    assert (status["batch"]["quantity_grams"], status["units"], status["carried_out_grams"]) == (1_120_000, 1, 120_000)
    assert [(e["reduction_id"], e["grams"], e["corrected_grams"]) for e in offs] == [(rid, -180_000, 520_000)]
    assert report["ok"], report["differences"]
    assert report["figures"]["correction_written_off_grams"] == 180_000
    assert report["overstated"] == [] and later["ok"], later["differences"]
    assert later["overstated"] == [
        {"reduction_id": late, "batch_id": batch_id, "batched": 600_000, "corrected": 450_000, "over": 150_000}
    ]


def _entries_of(account, pool: str) -> list[dict]:
    try:
        return account.list_entries_after(owner_pid=pool, after_seq=0, limit=1000)["entries"]
    except RemoteError:  # a pool chain opens with its first transfer
        return []


def test_nothing_to_batch_sends_nothing(account_config, registry, bridge_config, container_factory):
    url, bank = registry
    config = bridge_config(url, bank)
    container_factory(ExchangeBridgeService, config).start()
    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        result = bridge.run_batch()
        assert result["registered"] == [] and result["failed"] == 0 and result["intake"]["reductions"] == 0
        assert bridge.ping() == {"service": "exchange_bridge", "status": "ok"}
    faults = requests.get(f"{url}/v1/admin/faults", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert faults.json()["requests"] == 0  # the registry heard nothing from the bank


@pytest.mark.parametrize("missing", ["BRIDGE_SM2_PRIVATE_KEY", "BRIDGE_SM2_PUBLIC_KEY", "BRIDGE_PARTICIPANT"])
def test_bridge_refuses_to_start_without_its_identity(missing, bridge_config, container_factory):
    from registry_support import Bank

    config = bridge_config("https://registry.example.cn", Bank("bank-a", "k1", "00" * 32, "00" * 64))
    del config[missing]
    with pytest.raises(SystemExit, match=missing):
        container_factory(ExchangeBridgeService, config).start()
