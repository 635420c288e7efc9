"""Every kind of bad input gets its specific 4xx code and leaves nothing behind.

"Nothing behind" is checked three ways per case: no receipt, no nonce stored, and no event —
a valid marker request sent afterwards *with the same nonce* must be accepted, and must be
the only event on the bus (one publisher, one queue: an earlier event would arrive first).
"""

import base64
import json

import secrets
import time

import pytest

from carbon_common import gm

from carbon_dev.testing import EventListener

from ingest import signing
from ingest_testkit import PLATFORM_PUBLIC, metro

CUSTOMER = "6222000011112222"
NONCE = "fixed-nonce-0123456789"


@pytest.fixture(scope="module")
def shared_scene(module_platform, module_amqp):
    platform = module_platform
    bank = platform.register("bank-app", kind="bank_app")
    partner = platform.register("metro-sz", scenarios=["metro_ride", "walking"])
    other = platform.register("bike-co", scenarios=["bike_ride"])
    platform.consent(bank, CUSTOMER, "metro-sz", scenarios=["metro_ride", "walking"])
    listener = EventListener(module_amqp, "ingest", "behaviour_received")
    yield {"platform": platform, "partner": partner, "other": other, "bank": bank, "listener": listener}
    listener.close()


@pytest.fixture
def fresh_scene(platform, bank, event_listener):
    """A scene of its own, for tests that change partner, key or consent state."""
    global NONCE
    NONCE = "nonce-" + secrets.token_hex(10)
    partner = platform.register("metro-sz", scenarios=["metro_ride", "walking"])
    other = platform.register("bike-co", scenarios=["bike_ride"])
    marker = platform.register("marker-co", scenarios=["metro_ride"])
    platform.consent(bank, CUSTOMER, "metro-sz", scenarios=["metro_ride", "walking"])
    platform.consent(bank, CUSTOMER, "marker-co")
    listener = event_listener("ingest", "behaviour_received")
    return {
        "platform": platform,
        "partner": partner,
        "other": other,
        "bank": bank,
        "marker": marker,
        "listener": listener,
        "baseline": platform.counts(),
    }


def assert_nothing_published(scene):
    """A marker record from an unaffected partner must be the first event on the bus."""
    assert scene["marker"].post_records([metro("marker", CUSTOMER)]).status_code == 200
    assert [e["data"]["partner_record_id"] for e in scene["listener"].wait(1)] == ["marker"]


@pytest.fixture
def scene(shared_scene):
    """The shared scene with this test's own nonce and a fresh baseline of what is stored."""
    global NONCE
    NONCE = "nonce-" + secrets.token_hex(10)
    shared_scene["listener"].drain()
    shared_scene["listener"].received.clear()
    return {**shared_scene, "baseline": shared_scene["platform"].counts()}


def nothing_left(scene) -> bool:
    return scene["platform"].counts() == scene["baseline"]


def body_of(records):
    return json.dumps({"records": records}).encode()


def signed(scene, raw: bytes, partner=None, **kw):
    partner = partner or scene["partner"]
    kw.setdefault("nonce", NONCE)
    return partner.send("POST", "/v1/records", raw=raw, **kw)


def tamper(headers=None, body=None):
    def mutate(h, b):
        return (headers(h) if headers else h), (body(b) if body else b)

    return mutate


def set_header(name, value):
    return tamper(
        headers=lambda h: {**h, name: value} if value is not None else {k: v for k, v in h.items() if k != name}
    )


def flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def sig_with(r: int, s: int):
    return set_header(signing.H_SIGNATURE, r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex())


def good():
    return body_of([metro("trip-1", CUSTOMER)])


def encrypted_tampered(scene, mangle_envelope, public=PLATFORM_PUBLIC):
    partner = scene["partner"]
    ts = str(int(__import__("time").time()))
    aad = signing.envelope_aad(partner.partner_id, partner.key_id, ts, NONCE)
    envelope = mangle_envelope(gm.envelope_encrypt(public, good(), aad))
    raw = json.dumps(envelope).encode()
    return signed(
        scene, raw, timestamp=ts, mutate=tamper(headers=lambda h: {**h, signing.H_ENCRYPTION: signing.ENCRYPTION})
    )


def flip_ciphertext(envelope):
    blob = bytearray(base64.b64decode(envelope["ciphertext"]))
    blob[20] ^= 1
    return {**envelope, "ciphertext": base64.b64encode(bytes(blob)).decode()}


def record_with(**changes):
    def make():
        record = metro("trip-1", CUSTOMER)
        for key, value in changes.items():
            if key == "activity":
                record["activity"].update(value)
            else:
                record[key] = value
        return body_of([record])

    return make


CASES = {
    # signature headers
    "missing signature": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_SIGNATURE, None)),
        401,
        "missing_auth_header",
    ),
    "missing key id": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_KEY_ID, None)),
        401,
        "missing_auth_header",
    ),
    "garbled partner header": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_PARTNER, "Metro SZ!")),
        401,
        "malformed_auth_header",
    ),
    "garbled nonce": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_NONCE, "short")),
        401,
        "malformed_auth_header",
    ),
    "signature not hex": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_SIGNATURE, "zz" * 64)),
        401,
        "signature_malformed",
    ),
    "signature as base64": (
        lambda s: signed(
            s,
            good(),
            mutate=tamper(
                headers=lambda h: {
                    **h,
                    signing.H_SIGNATURE: base64.b64encode(bytes.fromhex(h[signing.H_SIGNATURE])).decode(),
                }
            ),
        ),
        401,
        "signature_malformed",
    ),
    "signature too short": (
        lambda s: signed(
            s, good(), mutate=tamper(headers=lambda h: {**h, signing.H_SIGNATURE: h[signing.H_SIGNATURE][:-2]})
        ),
        401,
        "signature_malformed",
    ),
    "r is zero": (lambda s: signed(s, good(), mutate=sig_with(0, 5)), 401, "signature_out_of_range"),
    "s is n": (lambda s: signed(s, good(), mutate=sig_with(5, signing.SM2_N)), 401, "signature_out_of_range"),
    "flipped bit in body": (
        lambda s: signed(s, good(), mutate=tamper(body=lambda b: b.replace(b'"12.4"', b'"13.4"'))),
        401,
        "signature_invalid",
    ),
    "flipped bit in signature": (
        lambda s: signed(
            s,
            good(),
            mutate=tamper(
                headers=lambda h: {**h, signing.H_SIGNATURE: flip_bit(bytes.fromhex(h[signing.H_SIGNATURE]), 40).hex()}
            ),
        ),
        401,
        "signature_invalid",
    ),
    "re-serialised JSON": (
        lambda s: signed(s, good(), mutate=tamper(body=lambda b: json.dumps(json.loads(b), indent=1).encode())),
        401,
        "signature_invalid",
    ),
    "timestamp too old": (
        lambda s: signed(s, good(), timestamp=str(int(__import__("time").time()) - 301)),
        401,
        "timestamp_out_of_window",
    ),
    "timestamp in the future": (
        lambda s: signed(s, good(), timestamp=str(int(__import__("time").time()) + 400)),
        401,
        "timestamp_out_of_window",
    ),
    "timestamp in milliseconds": (
        lambda s: signed(s, good(), timestamp=str(int(__import__("time").time() * 1000))),
        401,
        "invalid_timestamp",
    ),
    "timestamp not a number": (lambda s: signed(s, good(), timestamp="2026-11-25T10:00:00Z"), 401, "invalid_timestamp"),
    # keys
    "unknown key": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_KEY_ID, "no-such-key")),
        401,
        "unknown_key",
    ),
    "other partner's key": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_KEY_ID, s["other"].key_id)),
        401,
        "key_partner_mismatch",
    ),
    "unknown partner": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_PARTNER, "nobody")),
        401,
        "unknown_partner",
    ),
    "signed by another partner's private key": (
        lambda s: signed(
            s,
            good(),
            partner=type(s["partner"])(
                s["partner"].http, "metro-sz", s["partner"].key_id, s["other"].private_key, None
            ),
        ),
        401,
        "signature_invalid",
    ),
    # envelope encryption
    "tampered SM4 ciphertext": (lambda s: encrypted_tampered(s, flip_ciphertext), 400, "decryption_failed"),
    "envelope for the wrong platform key": (
        lambda s: encrypted_tampered(s, lambda e: e, public=gm.generate_sm2_keypair()[1]),
        400,
        "decryption_failed",
    ),
    "unknown encryption scheme": (
        lambda s: signed(s, good(), mutate=set_header(signing.H_ENCRYPTION, "aes-gcm")),
        400,
        "unsupported_encryption",
    ),
    # envelope of the body
    "wrong content type": (
        lambda s: signed(s, good(), mutate=set_header("Content-Type", "text/plain")),
        415,
        "unsupported_media_type",
    ),
    "malformed JSON": (lambda s: signed(s, b'{"records": [}'), 400, "malformed_json"),
    "deep nesting": (lambda s: signed(s, b'{"records": [' + b"[" * 50 + b"]" * 50 + b"]}"), 400, "too_deep"),
    "NUL byte escaped": (lambda s: signed(s, good().replace(b"shenzhen", b"shen\\u0000zhen")), 400, "nul_byte"),
    "NUL byte raw": (lambda s: signed(s, good().replace(b"shenzhen", b"shen\x00zhen")), 400, "nul_byte"),
    "invalid UTF-8": (lambda s: signed(s, good().replace(b"shenzhen", b"shen\xff\xfezhen")), 400, "invalid_utf8"),
    "lone surrogate": (lambda s: signed(s, good().replace(b"shenzhen", b"shen\\ud800zhen")), 400, "invalid_utf8"),
    "$-key": (lambda s: signed(s, good().replace(b'"city"', b'"$where"')), 400, "forbidden_key"),
    "duplicate key": (
        lambda s: signed(s, good().replace(b'"city": "shenzhen"', b'"city": "shenzhen", "city": "x"')),
        400,
        "duplicate_key",
    ),
    "NaN literal": (lambda s: signed(s, good().replace(b'"12.4"', b"NaN")), 400, "malformed_json"),
    "Infinity literal": (lambda s: signed(s, good().replace(b'"12.4"', b"Infinity")), 400, "malformed_json"),
    "not a batch": (lambda s: signed(s, b'[{"record_id": "x"}]'), 400, "invalid_request"),
    # records
    "NaN string": (lambda s: signed(s, record_with(activity={"distance_km": "NaN"})()), 422, "invalid_value"),
    "infinite number": (lambda s: signed(s, good().replace(b'"12.4"', b"1e999")), 422, "out_of_range"),
    "negative distance": (lambda s: signed(s, record_with(activity={"distance_km": -3})()), 422, "out_of_range"),
    "500 km metro ride": (lambda s: signed(s, record_with(activity={"distance_km": "500"})()), 422, "out_of_range"),
    "boolean distance": (lambda s: signed(s, record_with(activity={"distance_km": True})()), 422, "invalid_value"),
    "future occurred_at": (
        lambda s: signed(s, record_with(occurred_at="2999-01-01T00:00:00Z")()),
        422,
        "future_occurred_at",
    ),
    "occurred_at without zone": (
        lambda s: signed(s, record_with(occurred_at="2026-11-25T08:00:00")()),
        422,
        "invalid_value",
    ),
    "unknown scenario": (lambda s: signed(s, record_with(scenario="teleport")()), 422, "unknown_scenario"),
    "unknown activity field": (lambda s: signed(s, record_with(activity={"speed": 3})()), 422, "unknown_field"),
    "client-supplied reduction": (
        lambda s: signed(s, record_with(reduction_g=580)()),
        422,
        "computed_field_not_allowed",
    ),
    "client-supplied factor": (
        lambda s: signed(s, record_with(activity={"factor": "46.7"})()),
        422,
        "computed_field_not_allowed",
    ),
    "client-supplied balance": (lambda s: signed(s, record_with(balance=10)()), 422, "computed_field_not_allowed"),
    "too many steps": (
        lambda s: signed(
            s,
            body_of(
                [
                    {
                        "record_id": "w1",
                        "customer_ref": CUSTOMER,
                        "scenario": "walking",
                        "occurred_at": metro("x")["occurred_at"],
                        "activity": {"steps": 100001},
                    }
                ]
            ),
        ),
        422,
        "out_of_range",
    ),
    "scenario the partner may not send": (
        lambda s: signed(
            s,
            record_with(scenario="bike_ride", activity={})().replace(
                b', "entry_station": "S01", "exit_station": "S17"', b""
            ),
        ),
        403,
        "scenario_not_allowed",
    ),
    "no consent": (lambda s: signed(s, record_with(customer_ref="6222999999999999")()), 403, "consent_required"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_leaves_nothing_behind(scene, case):
    send, status, code = CASES[case]

    response = send(scene)

    body = response.get_json()
    assert (response.status_code, body["code"]) == (status, code), body
    assert body["trace_id"] and response.headers["X-Trace-Id"] == body["trace_id"]
    assert body["message"]
    assert nothing_left(scene)
    marker_id = "marker-" + NONCE
    marker = signed(scene, body_of([metro(marker_id, CUSTOMER)]))  # same nonce: must still be unused
    assert marker.status_code == 200, marker.get_json()
    events = scene["listener"].wait(1)
    assert [e["data"]["partner_record_id"] for e in events] == [marker_id]


def verify_count(platform) -> float:
    registry = platform.app.extensions["ingest"].metrics.registry
    return registry.get_sample_value("ingest_sm2_verify_seconds_count") or 0


@pytest.mark.parametrize(
    "case,status,code",
    [("body", 413, "body_too_large"), ("batch", 413, "batch_too_large"), ("json", 400, "malformed_json")],
)
def test_limits_are_checked_before_any_signature_math(scene, case, status, code):
    platform = scene["platform"]
    limits = platform.app.extensions["ingest"].settings
    raw = {
        "body": b'{"records": ["' + b"x" * limits.max_body_bytes + b'"]}',
        "batch": body_of([metro(f"t{i}", CUSTOMER) for i in range(limits.max_batch + 1)]),
        "json": b"{" * 3,
    }[case]

    verified_before = verify_count(platform)

    response = signed(scene, raw)

    assert (response.status_code, response.get_json()["code"]) == (status, code)
    assert verify_count(platform) == verified_before
    assert nothing_left(scene)


def test_reused_nonce_is_refused(scene):
    first = signed(scene, good())
    assert first.status_code == 200
    again = signed(scene, body_of([metro("trip-2", CUSTOMER)]))
    assert (again.status_code, again.get_json()["code"]) == (409, "nonce_reused")
    assert scene["platform"].repo.get_receipt(gm.sm3_hex(b"metro-sz:trip-2")) is None


def test_revoked_key_and_suspended_partner_are_refused(fresh_scene):
    scene = fresh_scene
    platform, partner = scene["platform"], scene["partner"]
    assert platform.admin("POST", f"/admin/v1/partners/metro-sz/keys/{partner.key_id}/revoke").status_code == 200
    response = signed(scene, good())
    assert (response.status_code, response.get_json()["code"]) == (401, "key_revoked")
    other = scene["other"]
    assert platform.admin("POST", "/admin/v1/partners/bike-co/suspend").status_code == 200
    response = other.post_records([metro("b1", CUSTOMER)])
    assert (response.status_code, response.get_json()["code"]) == (403, "partner_suspended")
    assert nothing_left(scene)
    assert_nothing_published(scene)


def test_revoked_consent_stops_forwarding(fresh_scene):
    scene = fresh_scene
    platform, bank = scene["platform"], scene["bank"]
    consent_id = platform.repo.consents.find_one({})["_id"]
    assert bank.send("POST", f"/v1/consents/{consent_id}/revoke", {}).status_code == 200
    response = signed(scene, good())
    assert (response.status_code, response.get_json()["code"]) == (403, "consent_required")
    assert platform.counts()["receipts"] == 0
    assert platform.repo.nonces.count_documents({"_id": {"$regex": "^metro-sz:"}}) == 0
    assert_nothing_published(scene)


def test_over_the_rate_limit_gets_429(fresh_scene):
    platform, bank = fresh_scene["platform"], fresh_scene["bank"]
    partner = platform.register("busy-bus", scenarios=["metro_ride"], rate=1)
    platform.consent(bank, CUSTOMER, "busy-bus")
    # Both requests in one rate window (a minute), whatever second the test starts at: the
    # server's clock is held at the middle of this minute (well inside the signing window).
    middle_of_minute = time.time() // 60 * 60 + 30
    platform.app.extensions["ingest"].clock = lambda: middle_of_minute
    assert partner.post_records([metro("r1", CUSTOMER)]).status_code == 200
    assert [e["data"]["partner_record_id"] for e in fresh_scene["listener"].wait(1)] == ["r1"]
    fresh_scene["listener"].received.clear()
    response = partner.post_records([metro("r2", CUSTOMER)])
    assert (response.status_code, response.get_json()["code"]) == (429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1
    assert platform.repo.get_receipt(gm.sm3_hex(b"busy-bus:r2")) is None
    assert platform.repo.nonces.count_documents({"_id": {"$regex": "^busy-bus:"}}) == 1
    assert_nothing_published(fresh_scene)


def test_admin_api_needs_the_admin_token(platform, metro_partner):
    response = platform.http.get("/admin/v1/partners", headers={"Authorization": "Bearer wrong"})
    assert (response.status_code, response.get_json()["code"]) == (401, "admin_unauthorized")
    signed_by_partner = metro_partner.send("GET", "/admin/v1/partners")
    assert signed_by_partner.status_code == 401


def test_records_are_refused_while_the_pipeline_is_far_behind(fresh_scene, platform_amqp):
    from kombu import Connection

    from carbon_dev.testing import wait_until
    from ingest.backpressure import Backlog, pipeline_queues

    platform = fresh_scene["platform"]
    uri = platform_amqp["AMQP_URI"]
    backlog = platform.app.extensions["ingest"].backlog = Backlog(uri, limit=5, interval=0.1)
    calc_queue = pipeline_queues()[0]  # nothing consumes it in this test: a backlog stands still
    with Connection(uri) as conn:
        producer = conn.Producer()
        for n in range(6):
            producer.publish({"n": n}, exchange="", routing_key=calc_queue, serializer="json")
        wait_until(backlog.overloaded, timeout=10, message="6 waiting messages read as overload")

        response = fresh_scene["partner"].post_records([metro("r-late", CUSTOMER)])
        assert (response.status_code, response.get_json()["code"]) == (503, "overloaded")
        assert 1 <= int(response.headers["Retry-After"]) <= 30
        assert platform.counts() == fresh_scene["baseline"]  # no receipt, no nonce, no hint

        conn.default_channel.queue_purge(calc_queue)  # the pipeline caught up
        wait_until(lambda: not backlog.overloaded(), timeout=10, message="the backlog read as drained")
    assert_nothing_published(fresh_scene)  # the refused record was never forwarded
    assert fresh_scene["partner"].post_records([metro("r-late", CUSTOMER)]).status_code == 200
