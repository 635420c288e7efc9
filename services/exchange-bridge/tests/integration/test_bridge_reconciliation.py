"""Reconciliation through the real pieces: the account service and the bridge service (nameko,
RabbitMQ, FerretDB) and the registry process. After a run with registry faults, the bridge's
RPC `reconcile`, its /metrics and `python -m exchange_bridge.cli.reconcile` agree that the
registry, the bridge and the ledger match; a record changed at the registry afterwards is
reported (exit 1, the gauge of its check) and left as it is."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from account.repository import Repository as AccountRepository
from account.service import AccountService
from carbon_common.events import EventPublisher
from carbon_dev import payloads
from carbon_dev.testing import TEST_MONGO_URI, free_port
from exchange_bridge.service import ExchangeBridgeService

from registry_support import ADMIN_TOKEN, onboard_over_http

pytestmark = pytest.mark.integration
FAULTS = "latency=0.1,error5xx=0.15,timeout_after_commit=0.1,duplicate=0.15,reject=0.1"


def metric(url: str, name: str, **labels) -> float | None:
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def earn_and_redeem(config, wait_until, earned: dict[str, list[tuple]], redeem: dict[str, int]) -> None:
    """Credit each customer's reductions through calc's event, then redeem (plain Redeem settles at once)."""
    publisher = EventPublisher(config["AMQP_URI"], "calc")
    for pid, items in earned.items():
        for n, grams, methodology, occurred_at in items:
            red = payloads.reduction(
                pid,
                n,
                grams,
                scenario=methodology,
                methodology_id=methodology,
                methodology_version="1",
                occurred_at=occurred_at,
            )
            publisher.publish("reduction_calculated", red, event_id=red["reduction_id"])
    publisher.close()
    totals = {pid: sum(g for _, g, _, _ in items) for pid, items in earned.items()}

    def credited(account, pid):
        try:
            return account.get_totals(owner_pid=pid)["credited_grams"] >= totals[pid]
        except Exception:  # the account opens with its first credit
            return False

    with ServiceRpcProxy("account", config) as account:
        wait_until(lambda: all(credited(account, p) for p in totals), 30, message="credits posted")
        for pid, grams in redeem.items():
            account.redeem(grams=grams, request_key=f"reward-{pid}-{grams}", reward_id="coupon", owner_pid=pid)


def test_a_faulty_run_reconciles_clean_and_a_changed_registry_record_is_reported(
    container_factory, platform_amqp, mongo_database, registry_process, bridge_config, wait_until
):
    db = mongo_database("account")
    AccountRepository(db).ensure_indexes()
    account_config = dict(
        platform_amqp, MONGO_URI=TEST_MONGO_URI, MONGO_DATABASE=db.name, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}"
    )
    container_factory(AccountService, account_config).start()
    url, registry_db = registry_process(FAULTS, seed=7)
    bank = onboard_over_http(url)
    config = bridge_config(url, bank, BRIDGE_MIN_GRAMS="500000")
    container_factory(ExchangeBridgeService, config).start()
    y2026, y2025 = "2026-11-25T02:00:00Z", "2025-08-01T09:00:00+08:00"
    earn_and_redeem(
        account_config,
        wait_until,
        {
            "pid-ann": [(1, 800_000, "metro_ride", y2026), (2, 700_000, "bus_ride", y2025)],
            "pid-ben": [(1, 1_300_000, "metro_ride", y2026), (2, 200_000, "walking", y2026)],
            "pid-cat": [(1, 650_000, "metro_ride", y2026), (2, 900_000, "bus_ride", y2025)],
        },
        # ann keeps 100 g credited (registered <= redeemed <= credited, not all equal); ben keeps his walk
        {"pid-ann": 1_499_900, "pid-ben": 1_300_000, "pid-cat": 1_550_000},
    )

    with ServiceRpcProxy("exchange_bridge", config) as bridge:

        def settled():
            bridge.run_batch()
            groups = bridge.overview()["groups"]
            return groups and all(g["head_state"] in ("issued", "written_off") for g in groups)

        wait_until(settled, 120, interval=0.2, message="every group's head batch settled through the faults")
        issued = sorted(link["batch_id"] for link in registry_db.issuances.find({}) if link["units"] >= 1)
        retired = bridge.retire_units(issued[0], 1, "pid-ann", "offset", "retire-ann-1")
        requests.put(
            f"{url}/v1/admin/faults", json={"rates": ""}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ).raise_for_status()
        result = bridge.reconcile()
    assert result["ok"], json.dumps(result["differences"], indent=1)
    figures = result["figures"]
    assert figures["registry_units"] == figures["bridge_units"] >= 1 and figures["operations_checked"] == 1
    assert figures["units_by_status"]["retired"] == retired["units"] == 1
    assert figures["registered_grams"] <= figures["redeemed_to_pool_grams"] == 4_349_900
    assert figures["credited_grams"] == 4_550_000 and figures["accounts"] == 3
    metrics_url = f"http://{config['WEB_SERVER_ADDRESS']}/metrics"
    assert metric(metrics_url, "carbon_exchange_reconciliation_differences", check="invariant") == 0
    assert metric(metrics_url, "carbon_exchange_reconciliation_last_run_timestamp_seconds") > 0

    env = {
        **os.environ,
        "AMQP_URI": config["AMQP_URI"],
        "MONGO_URI": TEST_MONGO_URI,
        "MONGO_DATABASE": config["MONGO_DATABASE"],
        "REGISTRY_URL": url,
        "BRIDGE_PARTICIPANT": bank.participant,
        "BRIDGE_KEY_ID": bank.key_id,
        "BRIDGE_SM2_PRIVATE_KEY": bank.private,
        "BRIDGE_SM2_PUBLIC_KEY": bank.public,
    }
    command = [sys.executable, "-m", "exchange_bridge.cli.reconcile"]
    clean = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["counts"] == result["counts"] and "agree" in clean.stderr

    # the registry's record of an issue says one unit more: reported, by the CLI and the service
    record = registry_db.records.find_one({"_id": "issue:" + issued[0]})
    registry_db.records.update_one({"_id": record["_id"]}, {"$set": {"units": record["units"] + 1}})
    differ = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert differ.returncode == 1, differ.stderr
    report = json.loads(differ.stdout)
    assert report["counts"]["registry_batches"] == 1 and "DIFFER" in differ.stderr
    [found] = [d for d in report["differences"] if d["check"] == "registry_batches"]
    assert found["subject"] == issued[0] and found["registry"]["units"] == found["bridge"]["units"] + 1
    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        assert not bridge.reconcile()["ok"]
    assert metric(metrics_url, "carbon_exchange_reconciliation_differences", check="registry_batches") == 1
    assert registry_db.records.find_one({"_id": record["_id"]})["units"] == record["units"] + 1  # not fixed

    missing = subprocess.run(
        command,
        timeout=120,
        env={**env, "REGISTRY_URL": "http://127.0.0.1:9", "BRIDGE_SUBMIT_ATTEMPTS": "1"},
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "could not complete" in missing.stderr
