"""Intake against real RabbitMQ and FerretDB: accepted records are stored and published."""
from carbon_common import gm

from ingest_testkit import PSEUDONYM_KEY, metro

CUSTOMER = "6222000011112222"


def test_accepted_record_is_stored_and_published(platform, metro_partner, bank, event_listener):
    listener = event_listener("ingest", "behaviour_received")
    consent_id = platform.consent(bank, CUSTOMER, "metro-sz")

    response = metro_partner.post_records([metro("trip-1", CUSTOMER, distance=12.4)])

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["results"][0]["outcome"] == "accepted"
    assert response.headers["X-Trace-Id"] and body["trace_id"] == response.headers["X-Trace-Id"]
    expected_key = gm.sm3_hex(b"metro-sz:trip-1")
    assert body["results"][0]["record_key"] == expected_key
    [event] = listener.wait(1)
    assert event["event_type"] == "behaviour_received" and event["event_id"] == expected_key
    data = event["data"]
    assert data["user_pid"] == gm.pseudonymize(bytes.fromhex(PSEUDONYM_KEY), CUSTOMER)
    assert CUSTOMER not in str(event)
    assert data["consent_id"] == consent_id
    assert data["activity"] == {"distance_km": "12.4", "city": "shenzhen", "entry_station": "S01", "exit_station": "S17"}
    receipt = platform.repo.get_receipt(expected_key)
    assert receipt["state"] == "published" and receipt["consent_id"] == consent_id
