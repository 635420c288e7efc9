"""The signing scheme and the published test vectors (docs/partner-api.md)."""

import re
from pathlib import Path

import pytest
from gmssl import sm2 as gmssl_sm2

from carbon_common import gm
from carbon_dev.gm_testing import sm2_sign_with_k

from ingest import domain, signing
from ingest.errors import ApiError

DOC = (Path(__file__).resolve().parents[4] / "docs" / "partner-api.md").read_text()


def vector(item: str) -> str:
    row = next(line for line in DOC.splitlines() if line.startswith(f"| {item} |"))
    return re.findall(r"`([^`]*)`", row)


def test_published_vectors_are_reproduced_and_verify_with_gmssl():
    [private], [public] = vector("private key"), vector("public key")
    [timestamp, nonce], [body], [k] = (
        vector("timestamp, nonce"),
        vector("body (one line, no newline at the end)"),
        vector("k"),
    )
    [signature], [body_hash] = vector("signature r‖s"), vector("SM3(body)")

    message = signing.string_to_sign("POST", "/v1/records", timestamp, nonce, body.encode())

    assert gm.public_key_of(private) == public
    assert gm.sm3_hex(body.encode()) == body_hash
    assert sm2_sign_with_k(private, message, k).hex() == signature
    assert signing.verify(public, message, bytes.fromhex(signature))
    assert gmssl_sm2.CryptSM2(private_key=private, public_key=public).verify_with_sm3(signature, message)
    [record_key] = vector("record key of record `sz-20261125-000001` of partner `metro-sz`")[-1:]
    assert domain.record_key("metro-sz", "sz-20261125-000001") == record_key


def test_sdk_signature_verifies_and_any_change_breaks_it():
    private, public = gm.generate_sm2_keypair()
    headers, body = signing.sign_request(private, "metro-sz", "k1", "POST", "/v1/records", b'{"records":[]}')
    auth = signing.parse_headers(headers)
    message = signing.string_to_sign("POST", "/v1/records", auth.timestamp, auth.nonce, body)
    assert signing.verify(public, message, auth.signature)
    for changed in (message.replace(b"POST", b"PUT"), message.replace(b"/v1/records", b"/v1/record"), message + b"x"):
        assert not signing.verify(public, changed, auth.signature)


@pytest.mark.parametrize(
    "timestamp,code",
    [
        ("1795595400123", "invalid_timestamp"),
        ("17955954.5", "invalid_timestamp"),
        ("-1", "invalid_timestamp"),
        ("1795595099", "timestamp_out_of_window"),
        ("1795595701", "timestamp_out_of_window"),
    ],
)
def test_timestamps_outside_the_window_or_not_seconds_are_refused(timestamp, code):
    with pytest.raises(ApiError) as err:
        signing.check_timestamp(timestamp, now=1795595400.0)
    assert err.value.code == code


def test_timestamps_inside_the_window_pass():
    for timestamp in ("1795595100", "1795595400", "1795595700"):
        signing.check_timestamp(timestamp, now=1795595400.0)


def test_envelope_round_trip_is_bound_to_the_request():
    private, public = gm.generate_sm2_keypair()
    headers, body = signing.sign_request(
        gm.generate_sm2_keypair()[0],
        "metro-sz",
        "k1",
        "POST",
        "/v1/records",
        b'{"records":[1]}',
        platform_public_hex=public,
    )
    auth = signing.parse_headers(headers)
    assert signing.decrypt_body(private, body, auth) == b'{"records":[1]}'
    other_nonce = signing.AuthHeaders(
        auth.partner_id, auth.key_id, auth.timestamp, "another-nonce-123456", auth.signature, auth.encryption
    )
    with pytest.raises(ApiError) as err:
        signing.decrypt_body(private, body, other_nonce)
    assert err.value.code == "decryption_failed"
