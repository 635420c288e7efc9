"""100 concurrent identical requests against a real gunicorn (4 processes x 4 threads) on
FerretDB: exactly one receipt, exactly one 'accepted', and one nonce consumed once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import eventlet
import pytest
import requests

from carbon_common import gm
from carbon_dev.testing import free_port, wait_until

from ingest_testkit import Platform, metro, settings_for

CUSTOMER = "6222000011112222"
CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


@pytest.fixture
def server(make_app, platform_amqp, mongo_database):
    app = make_app()  # creates indexes and gives us direct access to the same database
    platform = Platform(app, app.test_client())
    settings = settings_for(app.extensions["ingest"].repo.db, platform_amqp["AMQP_URI"])
    port = free_port()
    env = {
        **os.environ,
        **{k: str(v) for k, v in settings.items() if k != "TELEMETRY"},
        "INGEST_BIND": f"127.0.0.1:{port}",
        "INGEST_WORKERS": "4",
        "INGEST_THREADS": "4",
        "OTEL_SDK_DISABLED": "true",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(CONFIG), "ingest.app:create_app()"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def ready():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        try:
            return requests.get(base + "/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, timeout=30, message="gunicorn ready")
    yield base, platform
    proc.terminate()
    proc.wait(timeout=20)


def fire(requests_to_send):
    pool = eventlet.GreenPool(100)
    return list(
        pool.imap(lambda args: requests.post(*args[:1], data=args[1], headers=args[2], timeout=60), requests_to_send)
    )


def test_100_concurrent_identical_requests_yield_one_receipt(server, event_listener):
    base, platform = server
    partner, bank = platform.register("metro-sz"), platform.register("bank-app", kind="bank_app")
    platform.consent(bank, CUSTOMER, "metro-sz")
    listener = event_listener("ingest", "behaviour_received")
    body = json.dumps({"records": [metro("trip-1", CUSTOMER)]}).encode()
    signed = [partner.headers("POST", "/v1/records", body) for _ in range(100)]  # a retrying client: new nonces

    responses = fire([(base + "/v1/records", sent_body, headers) for headers, sent_body in signed])

    assert [r.status_code for r in responses] == [200] * 100, [r.json() for r in responses if r.status_code != 200][:2]
    outcomes = sorted(r.json()["results"][0]["outcome"] for r in responses)
    assert outcomes == ["accepted"] + ["duplicate"] * 99
    key = gm.sm3_hex(b"metro-sz:trip-1")
    assert platform.repo.receipts.count_documents({}) == 1
    assert platform.repo.receipt_state(key) == "published"
    events = listener.wait(1)
    assert {e["event_id"] for e in events} == {key}  # a racing replay may republish; consumers dedupe on it


def test_100_concurrent_copies_of_one_signed_request_use_the_nonce_once(server):
    base, platform = server
    partner, bank = platform.register("metro-sz"), platform.register("bank-app", kind="bank_app")
    platform.consent(bank, CUSTOMER, "metro-sz")
    headers, body = partner.headers(
        "POST", "/v1/records", json.dumps({"records": [metro("trip-2", CUSTOMER)]}).encode()
    )

    responses = fire([(base + "/v1/records", body, headers)] * 100)

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 99
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"nonce_reused"}
    assert platform.repo.receipts.count_documents({}) == 1
    metrics = requests.get(base + "/metrics", timeout=5).text
    assert 'ingest_records_total{code="",outcome="accepted"} 1.0' in metrics
