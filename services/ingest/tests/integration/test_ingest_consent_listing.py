"""GET /v1/consents over HTTP: a bank app lists one customer's consents (signed, query string
included), sees only what it recorded for that customer, and the store is read by `_id` only
(but for the short partner list)."""

from ingest_testkit import Platform, settings_for

ALICE, BOB = "6222000011112222", "6222000033334444"


def record(platform, bank, customer, partner_id, ref):
    response = bank.send(
        "POST",
        "/v1/consents",
        {
            "consent_ref": ref,
            "customer_number": customer,
            "partner_id": partner_id,
            "scenarios": ["metro_ride"],
            "purpose": "green travel rewards",
            "expires_at": "2030-01-01T00:00:00Z",
        },
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_bank_app_lists_a_customer_s_consents_active_and_revoked(platform, bank):
    platform.register("metro-sz")
    platform.register("bus-sz")
    other_bank = platform.register("other-bank", kind="bank_app")
    first = record(platform, bank, ALICE, "metro-sz", "a-metro")
    second = record(platform, bank, ALICE, "bus-sz", "a-bus")
    record(platform, bank, BOB, "metro-sz", "b-metro")
    record(platform, other_bank, ALICE, "metro-sz", "a-metro-elsewhere")
    assert bank.send("POST", f"/v1/consents/{first['consent_id']}/revoke", {}).status_code == 200

    response = bank.send("GET", f"/v1/consents?user_pid={first['user_pid']}")
    assert response.status_code == 200, response.get_json()
    listed = response.get_json()["consents"]
    assert [(c["consent_id"], c["partner_id"], c["status"]) for c in listed] == [
        (second["consent_id"], "bus-sz", "active"),  # newest grant first
        (first["consent_id"], "metro-sz", "revoked"),
    ]
    assert listed[0]["revoked_at"] is None and listed[1]["revoked_at"] is not None
    assert response.get_json()["next_page_token"] is None

    page = bank.send("GET", f"/v1/consents?user_pid={first['user_pid']}&page_size=1").get_json()
    rest = bank.send(
        "GET", f"/v1/consents?user_pid={first['user_pid']}&page_size=1&page_token={page['next_page_token']}"
    ).get_json()
    assert [c["consent_id"] for c in page["consents"] + rest["consents"]] == [c["consent_id"] for c in listed]
    assert rest["next_page_token"] is None


def test_the_query_string_is_signed(platform, bank):
    platform.register("metro-sz")
    alice = record(platform, bank, ALICE, "metro-sz", "a")
    bob = record(platform, bank, BOB, "metro-sz", "b")

    signed_for_alice = f"/v1/consents?user_pid={alice['user_pid']}"
    headers, _ = bank.headers("GET", signed_for_alice, b"")
    headers.pop("Content-Type")
    response = platform.http.open(f"/v1/consents?user_pid={bob['user_pid']}", method="GET", headers=headers)
    assert (response.status_code, response.get_json()["code"]) == (401, "signature_invalid")
    # signed with its query, the same request passes
    response = platform.http.open(signed_for_alice, method="GET", headers=headers)
    assert response.status_code == 200 and response.get_json()["consents"][0]["consent_id"] == alice["consent_id"]


def test_refusals(platform, bank):
    partner = platform.register("metro-sz")
    pid = record(platform, bank, ALICE, "metro-sz", "a")["user_pid"]
    for path, code in (
        ("/v1/consents", "invalid_request"),
        (f"/v1/consents?user_pid={pid}&page_size=101", "invalid_request"),
        (f"/v1/consents?customer_number={ALICE}", "invalid_request"),
    ):
        response = bank.send("GET", path)
        assert (response.status_code, response.get_json()["code"]) == (400, code), path
    response = partner.send("GET", f"/v1/consents?user_pid={pid}")
    assert (response.status_code, response.get_json()["code"]) == (403, "forbidden_for_partner_kind")
    assert platform.http.delete("/v1/consents").status_code == 405


def test_listing_reads_by_id_only_but_the_partner_list(recorded_database, platform_amqp, monkeypatch):
    from ingest import app as app_module

    make_db, recorder = recorded_database
    db = make_db("ingest")
    monkeypatch.setattr(app_module, "connect_database", lambda *args, **kwargs: db)
    app = app_module.create_app(settings_for(db, platform_amqp["AMQP_URI"]))
    platform = Platform(app, app.test_client())
    bank = platform.register("bank-app", kind="bank_app")
    for partner_id in ("metro-sz", "bus-sz", "bike-sz"):
        platform.register(partner_id)
    pid = None
    for n in range(5):  # a chain longer than one read with one partner
        pid = record(platform, bank, ALICE, "metro-sz", f"m{n}")["user_pid"]
    record(platform, bank, ALICE, "bus-sz", "b")

    recorder.clear()
    response = bank.send("GET", f"/v1/consents?user_pid={pid}")
    assert response.status_code == 200 and len(response.get_json()["consents"]) == 6
    offending = recorder.not_by_id()
    assert [(command, collection) for command, collection, _ in offending] == [("find", "partners")]
