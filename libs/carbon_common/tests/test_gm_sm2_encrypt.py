"""SM2 encryption: C1C3C2 interop with gmssl 3.2.2, C3 verified, tampering rejected."""

import pytest
from hypothesis import given, settings, strategies as st

from carbon_common import gm
from carbon_common.gm import backend
from carbon_dev.gm_testing import backends, gmssl_reference
from carbon_common.gm.curve import N

BACKENDS = backends()


def gmssl_c1c3c2(keypair):
    private_hex, public_hex = keypair
    return gmssl_reference(private_hex, public_hex)


def test_round_trip_and_layout(active, keypair):
    private_hex, public_hex = keypair
    ciphertext = gm.sm2_encrypt(public_hex, b"sixteen byte key")
    assert ciphertext[0] == 4 and len(ciphertext) == 1 + 64 + 32 + 16
    assert ciphertext[97:] != b"sixteen byte key"
    assert gm.sm2_decrypt(private_hex, ciphertext) == b"sixteen byte key"
    assert gm.sm2_encrypt(public_hex, b"sixteen byte key") != ciphertext  # fresh k


def test_interoperates_with_gmssl_both_ways(active, keypair):
    private_hex, _ = keypair
    theirs = gmssl_c1c3c2(keypair).encrypt(b"from gmssl")  # gmssl omits the 04 of C1
    assert gm.sm2_decrypt(private_hex, theirs) == b"from gmssl"
    ours = gm.sm2_encrypt(keypair[1], b"from us")
    assert gmssl_c1c3c2(keypair).decrypt(ours[1:]) == b"from us"


@settings(max_examples=10, deadline=None)
@given(plaintext=st.binary(min_size=1, max_size=255))
def test_each_backend_decrypts_the_others_ciphertext(keypair, plaintext):
    private_hex, public_hex = keypair
    fast, ref = BACKENDS
    try:
        for encrypter, decrypter in ((fast, ref), (ref, fast)):
            backend.active = encrypter
            ciphertext = gm.sm2_encrypt(public_hex, plaintext)
            backend.active = decrypter
            assert gm.sm2_decrypt(private_hex, ciphertext) == plaintext
    finally:
        backend.active = fast


@pytest.mark.parametrize("position", [1, 40, 65, 80, 97, -1])  # C1.x, C1.y, C3, C3, C2, C2
def test_any_flipped_bit_is_rejected(active, keypair, position):
    private_hex, public_hex = keypair
    ciphertext = bytearray(gm.sm2_encrypt(public_hex, b"sixteen byte key"))
    ciphertext[position] ^= 0x01
    with pytest.raises(gm.DecryptionError):
        gm.sm2_decrypt(private_hex, bytes(ciphertext))


def test_gmssl_decrypt_does_not_check_c3_but_ours_does(keypair):
    private_hex, public_hex = keypair
    ciphertext = bytearray(gm.sm2_encrypt(public_hex, b"sixteen byte key"))
    ciphertext[-1] ^= 0x01
    assert gmssl_c1c3c2(keypair).decrypt(bytes(ciphertext[1:]))[-1:] != b"y"  # silently wrong
    with pytest.raises(gm.DecryptionError):
        gm.sm2_decrypt(private_hex, bytes(ciphertext))


def test_wrong_key_truncation_and_garbage_are_rejected(active, keypair):
    private_hex, public_hex = keypair
    ciphertext = gm.sm2_encrypt(public_hex, b"sixteen byte key")
    other_private, _ = gm.generate_sm2_keypair()
    for blob, key in [
        (ciphertext, other_private),
        (ciphertext[:97], private_hex),
        (ciphertext[:50], private_hex),
        (b"", private_hex),
        (b"\x04" + b"\x00" * 120, private_hex),
        ("text", private_hex),
    ]:
        with pytest.raises(gm.DecryptionError):
            gm.sm2_decrypt(key, blob)


@pytest.mark.parametrize("plaintext", [b"", b"x" * 256, "text"])
def test_plaintext_outside_1_to_255_bytes_is_refused(keypair, plaintext):
    with pytest.raises(ValueError):
        gm.sm2_encrypt(keypair[1], plaintext)


def test_decrypt_with_malformed_private_key_raises_value_error(keypair):
    ciphertext = gm.sm2_encrypt(keypair[1], b"k")
    with pytest.raises(ValueError):
        gm.sm2_decrypt("%064x" % N, ciphertext)
