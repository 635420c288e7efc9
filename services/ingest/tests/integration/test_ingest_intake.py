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
    assert data["activity"] == {
        "distance_km": "12.4",
        "city": "shenzhen",
        "entry_station": "S01",
        "exit_station": "S17",
    }
    receipt = platform.repo.get_receipt(expected_key)
    assert platform.repo.receipt_state(expected_key) == "published" and receipt["consent_id"] == consent_id
    assert platform.repo.count_unpublished() == 0  # the relay's hint is gone once published
    assert platform.repo.published.count_documents({}) == 0  # no marker per record


def test_a_record_from_before_the_consent_is_refused_with_its_reason(platform, metro_partner, bank):
    platform.consent(bank, CUSTOMER, "metro-sz")
    before = metro_partner.post_records([metro("before-consent", CUSTOMER, minutes_ago=60)])
    assert (before.status_code, before.get_json()["code"]) == (403, "outside_consent")
    result = before.get_json()["results"][0]
    assert (result["outcome"], result["code"], result["field"]) == ("rejected", "outside_consent", "occurred_at")
    assert platform.counts()["receipts"] == 0
    assert metro_partner.post_records([metro("after-consent", CUSTOMER)]).status_code == 200


def test_replay_with_same_content_returns_original_and_different_content_conflicts(
    platform, metro_partner, bank, event_listener
):
    listener = event_listener("ingest", "behaviour_received")
    platform.consent(bank, CUSTOMER, "metro-sz")
    record = metro("trip-1", CUSTOMER)
    first = metro_partner.post_records([record]).get_json()["results"][0]

    again = metro_partner.post_records([record])
    changed = metro_partner.post_records([{**record, "activity": {**record["activity"], "distance_km": "40"}}])

    assert again.status_code == 200
    replay = again.get_json()["results"][0]
    assert replay["outcome"] == "duplicate"
    assert (replay["record_key"], replay["received_at"]) == (first["record_key"], first["received_at"])
    assert (changed.status_code, changed.get_json()["code"]) == (409, "record_conflict")
    assert platform.repo.get_receipt(first["record_key"])["activity"]["distance_km"] == "12.4"
    assert len(listener.wait(1)) == 1
    assert platform.repo.receipts.count_documents({}) == 1


def test_mixed_batch_reports_each_record(platform, metro_partner, bank):
    platform.consent(bank, CUSTOMER, "metro-sz")
    records = [
        metro("ok-1", CUSTOMER),
        metro("bad-1", CUSTOMER, distance="-1"),
        metro("nocon-1", "6222000099990000"),
        metro("ok-1", CUSTOMER),
    ]

    response = metro_partner.post_records(records)

    assert response.status_code == 200
    outcomes = [(r["record_id"], r["outcome"], r.get("code")) for r in response.get_json()["results"]]
    assert outcomes == [
        ("ok-1", "accepted", None),
        ("bad-1", "rejected", "out_of_range"),
        ("nocon-1", "rejected", "consent_required"),
        ("ok-1", "rejected", "duplicate_in_batch"),
    ]
    assert response.get_json()["summary"] == {"accepted": 1, "duplicate": 0, "rejected": 3, "unavailable": 0}


def test_unconfirmed_publish_answers_503_and_a_replay_republishes(make_app, platform_amqp, event_listener):
    from datetime import datetime, timedelta, timezone

    from ingest.bus import Bus
    from ingest.relay import Relay
    from ingest_testkit import FailingBus, Platform

    bus = FailingBus(Bus(platform_amqp["AMQP_URI"]))
    app = make_app(BUS=bus)
    platform = Platform(app, app.test_client())
    partner, bank = platform.register("metro-sz"), platform.register("bank-app", kind="bank_app")
    platform.consent(bank, CUSTOMER, "metro-sz")
    listener = event_listener("ingest", "behaviour_received")
    records = [metro("trip-9", CUSTOMER), metro("trip-10", CUSTOMER)]

    refused = partner.post_records(records)

    assert refused.status_code == 503
    assert [r["outcome"] for r in refused.get_json()["results"]] == ["unavailable"] * 2
    keys = [r["record_key"] for r in refused.get_json()["results"]]
    assert [platform.repo.receipt_state(key) for key in keys] == ["pending"] * 2
    bus.failing = False
    partial = partner.post_records(records[:1])  # the other receipt still needs the first hint
    assert partial.status_code == 200 and partial.get_json()["results"][0]["outcome"] == "duplicate"
    assert [platform.repo.receipt_state(key) for key in keys] == ["pending"] * 2
    replay = partner.post_records(records)
    assert replay.status_code == 200 and [r["outcome"] for r in replay.get_json()["results"]] == ["duplicate"] * 2
    assert sorted(e["event_id"] for e in listener.wait(3)) == sorted([keys[0], *keys])
    # The replay of the whole batch also deleted the failed request's hint: both are published
    # at once, and the relay has nothing to publish again.
    assert [platform.repo.receipt_state(key) for key in keys] == ["published"] * 2
    assert platform.repo.count_unpublished() == 0 and platform.repo.published.count_documents({}) == 0
    later = datetime.now(timezone.utc) + timedelta(seconds=91)
    result = Relay(platform.repo, bus, timedelta(seconds=90)).run_once(later)
    assert (result.republished, result.dropped) == ([], 0) and len(listener.drain()) == 3  # no new event


def test_encrypted_body_is_accepted(platform, metro_partner, bank, event_listener):
    listener = event_listener("ingest", "behaviour_received")
    platform.consent(bank, CUSTOMER, "metro-sz")

    response = metro_partner.post_records([metro("enc-1", CUSTOMER)], encrypt=True)

    assert response.status_code == 200, response.get_json()
    assert listener.wait(1)[0]["data"]["partner_record_id"] == "enc-1"


def test_rotated_key_overlaps_then_expires(platform, metro_partner, bank):
    from carbon_common import gm

    from ingest_testkit import Signer

    platform.consent(bank, CUSTOMER, "metro-sz")
    private, public = gm.generate_sm2_keypair()
    rotated = platform.admin(
        "POST",
        "/admin/v1/partners/metro-sz/keys",
        {"key_id": "metro-sz-k2", "public_key": public, "replaces": metro_partner.key_id, "overlap_seconds": 3600},
    )
    assert rotated.status_code == 201
    new = Signer(platform.http, "metro-sz", "metro-sz-k2", private, public)
    assert metro_partner.post_records([metro("old-key", CUSTOMER)]).status_code == 200
    assert new.post_records([metro("new-key", CUSTOMER)]).status_code == 200

    platform.app.extensions["ingest"].clock = lambda: __import__("time").time() + 3601
    late_old = metro_partner.post_records(
        [metro("old-late", CUSTOMER)], timestamp=str(int(__import__("time").time()) + 3601)
    )
    late_new = new.post_records([metro("new-late", CUSTOMER)], timestamp=str(int(__import__("time").time()) + 3601))
    assert (late_old.status_code, late_old.get_json()["code"]) == (401, "key_expired")
    assert late_new.status_code == 200


def test_deletion_request_erases_personal_data_and_is_announced(platform, metro_partner, bank, event_listener):
    from ingest_testkit import PSEUDONYM_KEY

    deleted = event_listener("ingest", "personal_data_deleted")
    revoked = event_listener("ingest", "consent_revoked")
    consent_id = platform.consent(bank, CUSTOMER, "metro-sz")
    stored = platform.repo.get_consent(consent_id)
    assert CUSTOMER not in str(stored) and stored["customer_number_enc"]

    response = bank.send("POST", "/v1/deletion-requests", {"customer_number": CUSTOMER})

    assert response.status_code == 202
    pid = gm.pseudonymize(bytes.fromhex(PSEUDONYM_KEY), CUSTOMER)
    assert deleted.wait(1)[0]["data"]["user_pid"] == pid
    assert revoked.wait(1)[0]["data"]["consent_id"] == consent_id
    after = platform.repo.get_consent(consent_id)
    assert after["customer_number_enc"] is None and after["revoked_at"] is not None
    refused = metro_partner.post_records([metro("after-delete", CUSTOMER)])
    assert (refused.status_code, refused.get_json()["code"]) == (403, "consent_required")


def test_consent_is_idempotent_per_reference(platform, metro_partner, bank):
    first = platform.consent(bank, CUSTOMER, "metro-sz", ref="ref-1")
    body = {
        "consent_ref": "ref-1",
        "customer_number": CUSTOMER,
        "partner_id": "metro-sz",
        "scenarios": ["metro_ride"],
        "purpose": "a different purpose",
        "expires_at": platform.repo.get_consent(first)["expires_at"].isoformat(),
    }
    conflicting = bank.send("POST", "/v1/consents", body)
    assert (conflicting.status_code, conflicting.get_json()["code"]) == (409, "consent_conflict")
    same = bank.send("POST", "/v1/consents", {**body, "purpose": "green travel rewards"})
    assert same.status_code == 200 and same.get_json()["consent_id"] == first
    fetched = bank.send("GET", f"/v1/consents/{first}")
    assert fetched.status_code == 200 and fetched.get_json()["consent_id"] == first
    by_partner = metro_partner.send("GET", f"/v1/consents/{first}")
    assert (by_partner.status_code, by_partner.get_json()["code"]) == (403, "forbidden_for_partner_kind")


def test_bill_account_and_statement_id_leave_only_as_pseudonyms(platform, bank, event_listener):
    listener = event_listener("ingest", "behaviour_received")
    partner = platform.register("power-bj", scenarios=["utility_bill_payment", "e_statement"])
    platform.consent(bank, CUSTOMER, "power-bj", scenarios=["utility_bill_payment", "e_statement"])
    occurred = metro("x", CUSTOMER)["occurred_at"]
    records = [
        {
            "record_id": "bill-1",
            "customer_ref": CUSTOMER,
            "scenario": "utility_bill_payment",
            "occurred_at": occurred,
            "activity": {"bill_account": "EL9987001", "amount_fen": 12050},
        },
        {
            "record_id": "stmt-1",
            "customer_ref": CUSTOMER,
            "scenario": "e_statement",
            "occurred_at": occurred,
            "activity": {"statement_id": "ST998700111"},
        },
    ]

    response = partner.post_records(records)

    assert response.status_code == 200, response.get_json()
    key = bytes.fromhex(PSEUDONYM_KEY)
    events = {e["data"]["partner_record_id"]: e for e in listener.wait(2)}
    assert events["bill-1"]["data"]["activity"] == {
        "bill_account": gm.pseudonymize(key, "bill_account:EL9987001"),
        "amount_fen": "12050",
    }
    assert events["stmt-1"]["data"]["activity"] == {"statement_id": gm.pseudonymize(key, "statement_id:ST998700111")}
    stored = str(list(platform.repo.receipts.find()))
    for clear in ("EL9987001", "ST998700111", CUSTOMER):
        assert clear not in str(events) and clear not in stored
    assert partner.post_records(records).get_json()["summary"]["duplicate"] == 2  # replays still match
