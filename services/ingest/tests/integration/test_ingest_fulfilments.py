"""POST /v1/fulfilments/{id}/confirm | /fail: a fulfilling partner's signed report of a catalogue
fulfilment becomes one `fulfilment_reported` event on the real broker, naming the partner whose
signature was verified; a refused report publishes nothing and leaves its nonce unused
(docs/partner-api.md §5b). What the account does with the event:
services/account/tests/integration/test_catalogue_grpc.py."""

import pytest

from carbon_common import gm
from carbon_common.schemas import validate_envelope

FULFILMENT = "ab" * 32


@pytest.fixture
def reports(event_listener):
    return event_listener("ingest", "fulfilment_reported")


def test_a_partner_confirms_and_fails_fulfilments(platform, metro_partner, reports):
    confirmed = metro_partner.send("POST", f"/v1/fulfilments/{FULFILMENT}/confirm", {"reference": "card-7781"})
    assert confirmed.status_code == 202, confirmed.get_json()
    body = confirmed.get_json()
    assert (body["fulfilment_id"], body["outcome"], body["status"]) == (FULFILMENT, "confirmed", "accepted")
    other = "cd" * 32
    failed = metro_partner.send("POST", f"/v1/fulfilments/{other}/fail", {"code": "card_not_issued"})
    assert failed.status_code == 202 and failed.get_json()["outcome"] == "failed"
    # a repeated report is the same event (the account keeps the first decision anyway)
    assert metro_partner.send("POST", f"/v1/fulfilments/{FULFILMENT}/confirm", {}).status_code == 202

    envelopes = reports.wait(3)
    for envelope in envelopes:
        validate_envelope(envelope)
    first, second, again = envelopes
    assert first["data"] == {
        "fulfilment_id": FULFILMENT,
        "partner_id": "metro-sz",
        "outcome": "confirmed",
        "code": "",
        "reference": "card-7781",
        "reported_at": body["reported_at"],
    }
    assert first["event_id"] == gm.sm3_hex(f"metro-sz:{FULFILMENT}:confirmed".encode()) == again["event_id"]
    assert (second["data"]["outcome"], second["data"]["code"]) == ("failed", "card_not_issued")


def test_an_encrypted_report_is_accepted(platform, metro_partner, reports):
    response = metro_partner.send("POST", f"/v1/fulfilments/{FULFILMENT}/fail", {"code": "sold_out"}, encrypt=True)
    assert response.status_code == 202, response.get_json()
    assert reports.wait(1)[0]["data"]["code"] == "sold_out"


@pytest.mark.parametrize(
    "path, body, status, code",
    [
        ("/v1/fulfilments/not-an-id/confirm", {}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT.upper()}/confirm", {}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}0/confirm", {}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/confirm", {"code": "x"}, 400, "invalid_request"),  # confirm has no code
        (f"/v1/fulfilments/{FULFILMENT}/confirm", {"note": "left at the door"}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/confirm", [], 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/confirm", {"reference": "a b"}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/confirm", {"reference": "r" * 65}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/fail", {}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/fail", {"code": "Sold Out"}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/fail", {"code": 7}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/fail", {"code": "c" * 65}, 400, "invalid_request"),
        (f"/v1/fulfilments/{FULFILMENT}/deliver", {}, 404, "not_found"),
    ],
)
def test_bad_reports_are_refused_and_leave_nothing(platform, metro_partner, reports, path, body, status, code):
    before = platform.counts()
    response = metro_partner.send("POST", path, body)
    assert (response.status_code, response.get_json()["code"]) == (status, code)
    assert platform.counts() == before  # no nonce consumed
    assert reports.drain() == []


def test_only_data_partners_report_and_only_signed(platform, bank, metro_partner, reports):
    response = bank.send("POST", f"/v1/fulfilments/{FULFILMENT}/confirm", {})
    assert (response.status_code, response.get_json()["code"]) == (403, "forbidden_for_partner_kind")
    unsigned = platform.http.post(f"/v1/fulfilments/{FULFILMENT}/confirm", json={})
    assert (unsigned.status_code, unsigned.get_json()["code"]) == (401, "missing_auth_header")
    # the signature covers the path: a report signed for one fulfilment cannot be sent for another
    headers, raw = metro_partner.headers("POST", f"/v1/fulfilments/{FULFILMENT}/confirm", b"{}")
    moved = platform.http.open(f"/v1/fulfilments/{'ef' * 32}/confirm", method="POST", data=raw, headers=headers)
    assert (moved.status_code, moved.get_json()["code"]) == (401, "signature_invalid")
    headers, raw = metro_partner.headers("POST", f"/v1/fulfilments/{FULFILMENT}/confirm", b"{}", nonce="n" * 20)
    assert (
        platform.http.open(
            f"/v1/fulfilments/{FULFILMENT}/confirm", method="POST", data=raw, headers=headers
        ).status_code
        == 202
    )
    replay = platform.http.open(f"/v1/fulfilments/{FULFILMENT}/confirm", method="POST", data=raw, headers=headers)
    assert (replay.status_code, replay.get_json()["code"]) == (409, "nonce_reused")
    assert len(reports.wait(1)) == 1


def test_the_sdk_reports_fulfilments(platform, reports):
    from ingest.sdk.client import IngestClient

    partner = platform.register("metro-sz")

    class TestSession:  # the Flask test client behind the SDK's requests-like session
        def request(self, method, url, data=None, headers=None, timeout=None):
            return platform.http.open(url.removeprefix("http://ingest.test"), method=method, data=data, headers=headers)

    client = IngestClient("http://ingest.test", "metro-sz", partner.key_id, partner.private_key, session=TestSession())
    assert client.confirm_fulfilment(FULFILMENT, reference="d-1").status_code == 202
    assert client.fail_fulfilment("cd" * 32, "address_invalid").status_code == 202
    assert [e["data"]["outcome"] for e in reports.wait(2)] == ["confirmed", "failed"]
