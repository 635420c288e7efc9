"""Pure intake rules: consent choice, key validity, a batch's code, event payload."""

import json
from datetime import datetime, timedelta, timezone

from ingest import domain
from ingest.domain import Outcome

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def consent(cid, scenarios, granted_days_ago=10, expires_in_days=30, revoked=False):
    return {
        "_id": cid,
        "scenarios": scenarios,
        "granted_at": NOW - timedelta(days=granted_days_ago),
        "expires_at": NOW + timedelta(days=expires_in_days),
        "revoked_at": NOW if revoked else None,
    }


def test_the_latest_live_consent_covering_the_scenario_authorizes():
    consents = [
        consent("old", ["metro_ride"], 20),
        consent("new", ["metro_ride", "bus_ride"], 5),
        consent("revoked", ["metro_ride"], 1, revoked=True),
        consent("expired", ["metro_ride"], 1, -1),
    ]
    assert domain.active_consent(consents, "metro_ride", NOW)["_id"] == "new"
    assert domain.active_consent(consents, "walking", NOW) is None
    assert domain.active_consent([consent("x", ["metro_ride"], expires_in_days=-1)], "metro_ride", NOW) is None


def test_a_record_counts_only_inside_its_consent_s_validity():
    granted = NOW.replace(microsecond=700_000)  # stored to the microsecond; records are whole seconds
    terms = {"_id": "c", "scenarios": ["metro_ride"], "granted_at": granted, "expires_at": NOW + timedelta(days=1)}
    assert domain.within_consent(terms, NOW)  # the second of the grant counts
    assert not domain.within_consent(terms, NOW - timedelta(seconds=1))
    assert domain.within_consent(terms, NOW + timedelta(days=1) - timedelta(seconds=1))
    assert not domain.within_consent(terms, NOW + timedelta(days=1))  # expiry is exclusive


def test_the_latest_consent_whose_validity_holds_the_behaviour_authorizes_it():
    consents = [consent("old", ["metro_ride"], 20), consent("new", ["metro_ride"], 5)]
    pick = domain.consent_for_record
    assert pick(consents, "metro_ride", NOW - timedelta(days=1), NOW)[0]["_id"] == "new"
    assert pick(consents, "metro_ride", NOW - timedelta(days=10), NOW)[0]["_id"] == "old"
    assert pick(consents, "metro_ride", NOW - timedelta(days=30), NOW) == (None, "outside_consent")
    assert pick(consents, "walking", NOW - timedelta(days=1), NOW) == (None, "consent_required")
    revoked = [consent("r", ["metro_ride"], 20, revoked=True)]  # stops every record, whenever it happened
    assert pick(revoked, "metro_ride", NOW - timedelta(days=1), NOW) == (None, "consent_required")
    expired = [consent("e", ["metro_ride"], 20, expires_in_days=-1)]
    assert pick(expired, "metro_ride", NOW - timedelta(days=3), NOW) == (None, "consent_required")
    short = [consent("s", ["metro_ride"], 1, expires_in_days=0)]  # expires now: a record 5 min ahead
    assert pick(short, "metro_ride", NOW + timedelta(minutes=5), NOW - timedelta(minutes=1)) == (
        None,
        "outside_consent",
    )


def test_key_state():
    assert domain.key_state({"revoked_at": None, "not_after": None}, NOW) is None
    assert domain.key_state({"revoked_at": NOW, "not_after": None}, NOW) == "key_revoked"
    assert domain.key_state({"revoked_at": None, "not_after": NOW}, NOW) == "key_expired"
    assert domain.key_state({"revoked_at": None, "not_after": NOW + timedelta(seconds=1)}, NOW) is None


def outcomes(*pairs):
    return [Outcome(i, f"r{i}", kind, code) for i, (kind, code) in enumerate(pairs)]


def test_batch_code():
    assert domain.batch_code(outcomes(("accepted", None), ("rejected", "out_of_range"))) is None
    assert domain.batch_code(outcomes(("duplicate", None))) is None
    assert domain.batch_code(outcomes(("accepted", None), ("unavailable", "unavailable"))) == "unavailable"
    assert domain.batch_code(outcomes(("rejected", "consent_required"))) == "consent_required"
    assert domain.batch_code(outcomes(("rejected", "consent_required"), ("rejected", "out_of_range"))) == (
        "records_rejected"
    )


def test_event_payload_carries_no_customer_number_and_pins_the_consent():
    from carbon_common import gm

    from ingest.validation import validate_record

    customer, key = "6222000011112222", bytes(range(32))
    record = validate_record(
        {
            "record_id": "r",
            "customer_ref": customer,
            "scenario": "utility_bill_payment",
            "occurred_at": "2026-11-25T08:30:00Z",
            "activity": {"bill_account": "EL6222000011112222", "amount_fen": 100},
        },
        NOW,
    )
    assert record.customer_ref == customer  # the fixture does carry the customer number
    receipt = domain.receipt("p", record, gm.pseudonymize(key, customer), "c", NOW, key)
    payload = domain.behaviour_received({**receipt, "customer_ref": customer})  # even a stray copy stays out
    assert payload["consent_id"] == "c" and payload["record_key"] == domain.record_key("p", "r")
    assert payload["user_pid"] == gm.pseudonymize(key, customer)
    assert customer not in json.dumps(payload) and customer not in json.dumps(receipt, default=str)
    assert set(payload) == {
        "record_key",
        "partner_id",
        "partner_record_id",
        "user_pid",
        "consent_id",
        "scenario",
        "occurred_at",
        "received_at",
        "activity",
    }


def test_personal_activity_fields_get_a_stable_domain_separated_pseudonym():
    from carbon_common import gm

    key = bytes(range(32))
    bill = domain.pseudonymize_activity(key, {"bill_account": "EL-0042", "amount_fen": "12345"})
    statement = domain.pseudonymize_activity(key, {"statement_id": "EL-0042"})

    assert bill["amount_fen"] == "12345"
    assert "EL-0042" not in str(bill) + str(statement)
    assert bill == domain.pseudonymize_activity(key, {"bill_account": "EL-0042", "amount_fen": "12345"})
    assert bill["bill_account"] != domain.pseudonymize_activity(key, {"bill_account": "EL-0043"})["bill_account"]
    # never equal to a customer's user_pid, nor to another field's pseudonym of the same text
    assert bill["bill_account"] not in (gm.pseudonymize(key, "EL-0042"), statement["statement_id"])
    assert bill["bill_account"] != domain.pseudonymize_activity(bytes(32), {"bill_account": "EL-0042"})["bill_account"]


def test_public_places_stay_in_clear():
    activity = {"kwh": "20", "region": "guangdong", "station_id": "SZ-CHG-001"}
    assert domain.pseudonymize_activity(bytes(range(32)), activity) == activity


def test_content_hash_is_the_sm3_of_the_canonical_text_stored_receipts_were_hashed_with():
    """Receipts stored earlier carry hashes of json.dumps(..., default=str): a replay must keep
    matching them whether the content is JSON-native or not."""
    from decimal import Decimal

    from carbon_common import gm

    def reference(content):
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return gm.sm3_hex(text.encode("utf-8"))

    native = {
        "record_id": "trip-1",
        "user_pid": "ab" * 32,
        "scenario": "metro_ride",
        "occurred_at": "2026-11-30T01:00:00Z",
        "activity": {"distance_km": "12.4", "city": "深圳", "entry_station": "S01"},
    }
    assert domain.content_hash(native) == reference(native)
    with_decimal = {**native, "activity": {"distance_km": Decimal("12.40")}}
    assert domain.content_hash(with_decimal) == reference(with_decimal)
