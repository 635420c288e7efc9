"""Partner body envelope: SM2-wrapped SM4 key, authenticated body, context-bound."""

import base64

import pytest

from carbon_common import gm
from carbon_dev.gm_testing import gmssl_reference

BODY = b'{"records": [{"customer": "6222020200112233", "km": 12}]}'
AAD = b"POST /v1/records key=partner-a:2"


def test_round_trip_and_shape(active, keypair):
    private_hex, public_hex = keypair
    envelope = gm.envelope_encrypt(public_hex, BODY, AAD)
    assert set(envelope) == {"wrapped_key", "ciphertext"}
    assert b"6222020200112233" not in base64.b64decode(envelope["ciphertext"])
    assert gm.envelope_decrypt(private_hex, envelope, AAD) == BODY


def test_partner_using_plain_gmssl_can_wrap_the_key(keypair):
    # What a partner with only gmssl 3.2.2 does: SM2 C1C3C2 of a 16-byte key (no 04).
    private_hex, public_hex = keypair
    content_key = bytes(range(16))
    wrapped = gmssl_reference("", public_hex).encrypt(content_key)
    envelope = {
        "wrapped_key": wrapped.hex(),
        "ciphertext": base64.b64encode(gm.sm4_cbc_hmac_encrypt(content_key, BODY, AAD)).decode(),
    }
    assert gm.envelope_decrypt(private_hex, envelope, AAD) == BODY


def _with(envelope, **changes):
    return {**envelope, **changes}


def test_tampered_misaddressed_or_malformed_envelopes_are_rejected(active, keypair):
    private_hex, public_hex = keypair
    envelope = gm.envelope_encrypt(public_hex, BODY, AAD)
    blob = bytearray(base64.b64decode(envelope["ciphertext"]))
    blob[20] ^= 1
    other_private, other_public = gm.generate_sm2_keypair()
    wrong_wrapped = gm.sm2_encrypt(public_hex, b"k" * 15).hex()
    cases = [
        (private_hex, _with(envelope, ciphertext=base64.b64encode(bytes(blob)).decode()), AAD),
        (private_hex, _with(envelope, wrapped_key=envelope["wrapped_key"][:-2] + "00"), AAD),
        (private_hex, envelope, b"POST /v1/consents key=partner-a:2"),
        (other_private, envelope, AAD),
        (private_hex, gm.envelope_encrypt(other_public, BODY, AAD), AAD),
        (private_hex, _with(envelope, wrapped_key=wrong_wrapped), AAD),
        (private_hex, {"ciphertext": envelope["ciphertext"]}, AAD),
        (private_hex, _with(envelope, wrapped_key="zz"), AAD),
        (private_hex, _with(envelope, ciphertext="***"), AAD),
        (private_hex, _with(envelope, wrapped_key=None), AAD),
    ]
    for key, candidate, aad in cases:
        with pytest.raises(gm.DecryptionError):
            gm.envelope_decrypt(key, candidate, aad)
