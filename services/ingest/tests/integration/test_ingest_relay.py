"""The relay publishes receipts whose publish failed, once, without waiting for a replay."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from ingest_testkit import FailingBus, Platform, metro

CUSTOMER = "6222000011112222"
GRACE = timedelta(seconds=90)


@pytest.fixture
def stuck(make_app, platform_amqp):
    """A platform whose broker refuses confirms, and one record answered 503 (left pending)."""
    from ingest.bus import Bus

    bus = FailingBus(Bus(platform_amqp["AMQP_URI"]))
    app = make_app(BUS=bus)
    platform = Platform(app, app.test_client())
    partner, bank = platform.register("metro-sz"), platform.register("bank-app", kind="bank_app")
    platform.consent(bank, CUSTOMER, "metro-sz")
    record = metro("trip-stuck", CUSTOMER)
    refused = partner.post_records([record])
    assert refused.status_code == 503
    key = refused.get_json()["results"][0]["record_key"]
    assert platform.repo.receipt_state(key) == "pending"
    return platform, partner, record, key, bus


def make_relay(platform, amqp_uri, bus=None):
    from ingest.bus import Bus
    from ingest.relay import Relay

    return Relay(platform.repo, bus or Bus(amqp_uri), GRACE)


def test_one_pass_publishes_a_stuck_receipt_exactly_once(stuck, platform_amqp, event_listener):
    from ingest.relay import REPUBLISHED

    platform, partner, record, key, _ = stuck
    listener = event_listener("ingest", "behaviour_received")
    relay = make_relay(platform, platform_amqp["AMQP_URI"])
    before = REPUBLISHED._value.get()

    within_grace = relay.run_once()
    assert within_grace.republished == [] and listener.drain() == []  # its request may still be publishing

    later = datetime.now(timezone.utc) + GRACE + timedelta(seconds=1)
    first = relay.run_once(later)

    assert first.republished == [key]
    [event] = listener.wait(1)
    assert event["event_id"] == key and event["data"]["partner_record_id"] == "trip-stuck"
    assert platform.repo.receipt_state(key) == "published"
    assert platform.repo.count_unpublished() == 0 and platform.repo.published.count_documents({}) == 0
    assert relay.run_once(later).republished == []
    assert len(listener.drain()) == 1  # a confirmed publish is queued before it returns
    assert REPUBLISHED._value.get() - before == 1
    replay = partner.post_records([record])
    assert replay.status_code == 200 and replay.get_json()["results"][0]["outcome"] == "duplicate"
    assert len(listener.drain()) == 1


def test_a_refusing_broker_leaves_the_receipt_pending_for_the_next_pass(stuck, platform_amqp, event_listener):
    from ingest.relay import PENDING

    platform, _, _, key, bus = stuck
    listener = event_listener("ingest", "behaviour_received")
    later = datetime.now(timezone.utc) + GRACE + timedelta(seconds=1)

    refused = make_relay(platform, platform_amqp["AMQP_URI"], bus=bus).run_once(later)

    assert refused.failed and refused.republished == []
    assert platform.repo.receipt_state(key) == "pending" and PENDING._value.get() == 1
    bus.failing = False
    assert make_relay(platform, platform_amqp["AMQP_URI"], bus=bus).run_once(later).republished == [key]
    assert [e["event_id"] for e in listener.wait(1)] == [key]
    assert PENDING._value.get() == 0


def test_hints_without_a_pending_receipt_are_dropped_without_publishing(platform, platform_amqp, event_listener):
    listener = event_listener("ingest", "behaviour_received")
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    platform.repo.note_unpublished(["no-such-receipt"], long_ago)  # its request died before the receipt

    result = make_relay(platform, platform_amqp["AMQP_URI"]).run_once()

    assert (result.republished, result.dropped) == ([], 1)
    assert platform.repo.count_unpublished() == 0 and listener.drain() == []


def test_hints_are_grouped_by_batch_and_per_record_hints_of_earlier_versions_are_read(
    stuck, platform_amqp, event_listener
):
    from ingest.relay import Relay

    platform, partner, _, first_key, bus = stuck
    platform.consent(platform.register("bank-2", kind="bank_app"), "6222000099990000", "metro-sz")
    refused = [
        partner.post_records([metro(f"trip-{n}-a", CUSTOMER), metro(f"trip-{n}-b", "6222000099990000")])
        for n in range(3)
    ]
    assert {r.status_code for r in refused} == {503}
    keys = [r["record_key"] for response in refused for r in response.get_json()["results"]]
    legacy = keys.pop()  # rewrite its request's hint and receipts as an earlier version stored them
    hint = platform.repo.unpublished.find_one({"keys": legacy})
    platform.repo.unpublished.delete_one({"_id": hint["_id"]})
    platform.repo.unpublished.insert_many(
        [{"_id": key, "created_at": hint["created_at"], "traceparent": ""} for key in hint["keys"]]
    )
    platform.repo.receipts.update_many({"_id": {"$in": hint["keys"]}}, {"$unset": {"hint": ""}})
    listener = event_listener("ingest", "behaviour_received")
    bus.failing = False
    later = datetime.now(timezone.utc) + GRACE + timedelta(seconds=1)

    result = Relay(platform.repo, bus, GRACE, batch=2).run_once(later)

    assert sorted(result.republished) == sorted(keys + [legacy, first_key]) and result.dropped == 0
    assert sorted(e["event_id"] for e in listener.wait(7)) == sorted(keys + [legacy, first_key])
    assert platform.repo.count_unpublished() == 0
    # receipts of earlier versions still get their marker; the others need none
    assert {d["_id"] for d in platform.repo.published.find()} == set(hint["keys"])
    assert {platform.repo.receipt_state(k) for k in keys + [legacy, first_key]} == {"published"}


def test_each_receipt_is_republished_under_the_hint_it_was_stored_with(stuck, platform_amqp, event_listener):
    """A replay that fails again lists the first request's record in its own hint too: the
    relay publishes that record for the hint it was stored under, not once per hint."""
    from ingest.relay import Relay

    platform, partner, record, first_key, bus = stuck
    again = partner.post_records([record, metro("trip-new", CUSTOMER)])
    assert again.status_code == 503
    new_key = again.get_json()["results"][1]["record_key"]
    assert platform.repo.count_unpublished() == 3
    assert {platform.repo.receipt_state(k) for k in (first_key, new_key)} == {"pending"}
    listener = event_listener("ingest", "behaviour_received")
    bus.failing = False
    later = datetime.now(timezone.utc) + GRACE + timedelta(seconds=1)

    result = Relay(platform.repo, bus, GRACE, batch=1).run_once(later)  # one hint per group

    assert sorted(result.republished) == sorted([first_key, new_key]) and result.dropped == 1
    assert sorted(e["event_id"] for e in listener.wait(2)) == sorted([first_key, new_key])
    assert {platform.repo.receipt_state(k) for k in (first_key, new_key)} == {"published"}
    assert platform.repo.count_unpublished() == 0 and platform.repo.published.count_documents({}) == 0


def test_receipts_stored_before_hints_are_read_from_their_legacy_markers(stuck, platform_amqp, event_listener):
    """Receipts of earlier versions have no `hint`: a `published` marker says they are published."""
    from ingest.relay import Relay

    platform, partner, _, pending_key, bus = stuck
    bus.failing = False
    trip = metro("trip-done", CUSTOMER)  # the same record later replayed (occurred_at is "now - 30 min")
    done = partner.post_records([trip])
    done_key = done.get_json()["results"][0]["record_key"]
    # as an earlier version left them: neither has a hint, only the published one a marker, and
    # the pending one's request left a hint
    repo = platform.repo
    repo.receipts.update_many({"_id": {"$in": [pending_key, done_key]}}, {"$unset": {"hint": ""}})
    repo.published.insert_one({"_id": done_key, "at": datetime.now(timezone.utc)})
    repo.unpublished.delete_many({})
    repo.note_unpublished([pending_key, done_key], datetime.now(timezone.utc) - timedelta(hours=1))
    assert (repo.receipt_state(done_key), repo.receipt_state(pending_key)) == ("published", "pending")
    listener = event_listener("ingest", "behaviour_received")

    result = Relay(repo, bus, GRACE).run_once()

    assert (result.republished, result.dropped) == ([pending_key], 1)
    assert [e["event_id"] for e in listener.wait(1)] == [pending_key]
    assert repo.receipt_state(pending_key) == "published" and repo.count_unpublished() == 0
    replay = partner.post_records([trip])
    assert replay.get_json()["results"][0]["outcome"] == "duplicate" and len(listener.drain()) == 1


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_health_reports_mongo_and_amqp_liveness_reports_a_stuck_loop_and_metrics_are_exposed(platform, platform_amqp):
    from carbon_common.ops_http import serve_ops
    from ingest.bus import Bus

    def serve(relay):
        return serve_ops("127.0.0.1:0", relay.checks(), relay.liveness(stuck_after=120))

    servers = [
        serve(make_relay(platform, None, bus=bus))
        for bus in (Bus(platform_amqp["AMQP_URI"]), Bus("amqp://guest:guest@127.0.0.1:1//"))
    ]
    try:
        base_ok, base_broken = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
        status, body = _get(base_ok + "/health")
        assert status == 200 and json.loads(body)["checks"] == {"mongo": "ok", "amqp": "ok"}
        status, body = _get(base_broken + "/health")
        assert status == 503 and json.loads(body)["checks"]["amqp"].startswith("unavailable")
        status, body = _get(base_broken + "/healthz")
        assert status == 200  # a broker outage is not a reason to restart the relay
        stuck = make_relay(platform, platform_amqp["AMQP_URI"])
        stuck.last_pass_end -= 3600
        server = serve(stuck)
        servers.append(server)
        assert _get(f"http://127.0.0.1:{server.server_address[1]}/healthz")[0] == 503
        status, body = _get(base_ok + "/metrics")
        assert status == 200 and b"ingest_relay_republished_total" in body and b"ingest_relay_pending" in body
    finally:
        for server in servers:
            server.shutdown()


def test_the_relay_process_publishes_and_stops_on_sigterm(stuck, platform_amqp, event_listener, wait_until):
    platform, _, _, key, _ = stuck
    listener = event_listener("ingest", "behaviour_received")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "AMQP_URI": platform_amqp["AMQP_URI"],
        "MONGO_URI": "mongodb://127.0.0.1:27017/",
        "MONGO_DATABASE": platform.repo.db.name,
        "RELAY_GRACE_SECONDS": "0",
        "RELAY_INTERVAL_SECONDS": "1",
        "METRICS_ADDRESS": f"127.0.0.1:{port}",
        "OTEL_SDK_DISABLED": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest.relay"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        [event] = listener.wait(1, timeout=20)
        assert event["event_id"] == key
        wait_until(lambda: platform.repo.receipt_state(key) == "published", 10)
        wait_until(lambda: _probe(f"http://127.0.0.1:{port}/health") == 200, 10)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr[-2000:]
    logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert any(line["msg"] == "receipt republished" and line["record_key"] == key for line in logs)


def _probe(url):
    try:
        return _get(url)[0]
    except OSError:
        return None


def test_a_missing_setting_stops_the_relay_naming_it():
    env = {k: v for k, v in os.environ.items() if k not in ("AMQP_URI", "MONGO_URI")}
    done = subprocess.run(
        [sys.executable, "-m", "ingest.relay", "--once"],
        env={**env, "OTEL_SDK_DISABLED": "true"},
        capture_output=True,
        timeout=30,
    )
    assert done.returncode != 0 and b"AMQP_URI" in done.stderr
