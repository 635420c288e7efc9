"""SM4-CBC + HMAC-SM3 and field encryption: gmssl-identical SM4, tampering rejected."""

import base64
import secrets

import pytest
from gmssl import sm4 as gmssl_sm4
from hypothesis import given, settings, strategies as st

from carbon_common import gm
from carbon_common.gm import backend
from carbon_dev.gm_testing import backends

BACKENDS = backends()
KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_block_matches_gb_t_32907_vector(active):
    # GB/T 32907-2016 Appendix A.1: one block, key = plaintext = 0123...3210.
    expected = "681edf34d206965e86b3e94f536e4246"
    assert active.sm4_cbc_encrypt(KEY, bytes(16), KEY)[:16].hex() == expected


@settings(max_examples=25, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16), iv=st.binary(min_size=16, max_size=16), plaintext=st.binary(max_size=100)
)
def test_sm4_cbc_is_byte_identical_to_gmssl(key, iv, plaintext):
    reference = gmssl_sm4.CryptSM4()
    reference.set_key(key, gmssl_sm4.SM4_ENCRYPT)
    expected = reference.crypt_cbc(iv, plaintext)
    for impl in BACKENDS:
        assert impl.sm4_cbc_encrypt(key, iv, plaintext) == expected
        assert impl.sm4_cbc_decrypt(key, iv, expected) == plaintext


@settings(max_examples=25, deadline=None)
@given(plaintext=st.binary(max_size=200), aad=st.binary(max_size=40))
def test_authenticated_round_trip_across_backends(plaintext, aad):
    fast, ref = BACKENDS
    try:
        for encrypter, decrypter in ((fast, ref), (ref, fast)):
            backend.active = encrypter
            blob = gm.sm4_cbc_hmac_encrypt(KEY, plaintext, aad)
            assert len(blob) == 16 + (len(plaintext) // 16 + 1) * 16 + 32
            backend.active = decrypter
            assert gm.sm4_cbc_hmac_decrypt(KEY, blob, aad) == plaintext
    finally:
        backend.active = fast


def test_ciphertext_hides_plaintext_and_uses_fresh_iv(active):
    blobs = {gm.sm4_cbc_hmac_encrypt(KEY, b"13800138000") for _ in range(3)}
    assert len(blobs) == 3
    assert all(b"13800138000" not in blob for blob in blobs)


def test_every_kind_of_tampering_is_rejected(active):
    blob = gm.sm4_cbc_hmac_encrypt(KEY, b"contact: 13800138000", b"account-1")
    tampered = []
    for position in (0, 15, 16, len(blob) - 33, len(blob) - 1):  # iv, ct, tag
        flipped = bytearray(blob)
        flipped[position] ^= 0x80
        tampered.append((KEY, bytes(flipped), b"account-1"))
    tampered += [
        (secrets.token_bytes(16), blob, b"account-1"),  # wrong key
        (KEY, blob, b"account-2"),  # aad of another record
        (KEY, blob, b""),
        (KEY, blob[:-1], b"account-1"),
        (KEY, blob[:16] + blob[32:], b"account-1"),  # a block removed
        (KEY, b"", b"account-1"),
    ]
    for key, candidate, aad in tampered:
        with pytest.raises(gm.DecryptionError):
            gm.sm4_cbc_hmac_decrypt(key, candidate, aad)
    assert gm.sm4_cbc_hmac_decrypt(KEY, blob, b"account-1") == b"contact: 13800138000"


@pytest.mark.parametrize("key", [b"short", b"x" * 32, 16, "0123456789abcdef"])
def test_key_must_be_16_bytes(key):
    with pytest.raises(ValueError):
        gm.sm4_cbc_hmac_encrypt(key, b"data")


def test_field_round_trip_is_base64_text(active):
    token = gm.sm4_field_encrypt(KEY, "张三 13800138000")
    assert isinstance(token, str) and "13800138000" not in token
    base64.b64decode(token, validate=True)
    assert gm.sm4_field_decrypt(KEY, token) == "张三 13800138000"


@pytest.mark.parametrize("token", ["not base64!", "", base64.b64encode(b"x" * 80).decode()])
def test_field_garbage_and_wrong_key_raise_decryption_error(active, token):
    with pytest.raises(gm.DecryptionError):
        gm.sm4_field_decrypt(KEY, token)
    with pytest.raises(gm.DecryptionError):
        gm.sm4_field_decrypt(secrets.token_bytes(16), gm.sm4_field_encrypt(KEY, "x"))


def test_field_ciphertext_is_not_interchangeable_with_raw_blobs():
    blob = gm.sm4_cbc_hmac_encrypt(KEY, b"x")  # same key, no field label
    with pytest.raises(gm.DecryptionError):
        gm.sm4_field_decrypt(KEY, base64.b64encode(blob).decode())
