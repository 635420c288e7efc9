"""SM2 signatures: GM/T 0003.5 vector, interop with gmssl 3.2.2 both ways, strict parsing."""

import secrets

import pytest
from hypothesis import given, settings, strategies as st

from carbon_common import gm
from carbon_common.gm import _reference, backend
from carbon_common.gm.curve import GX, GY, N, point_bytes
from carbon_dev.gm_testing import backends, gmssl_reference, sm2_sign_with_k

BACKENDS = backends()

# GM/T 0003.5-2012 (GB/T 32918.5-2017) Annex A: recommended curve, default user id.
STD_PRIVATE = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
STD_PUBLIC = (
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
STD_K = "59276e27d506861a16680f3ad9c02dccef3cc1fa3cdbe4ce6d54b80deac1bc21"
STD_SIGNATURE = bytes.fromhex(
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
)


def gmssl_verifier(public_hex, private_hex=""):
    return gmssl_reference(private_hex, public_hex)


def test_standard_vector_signs_and_verifies(active):
    assert gm.public_key_of(STD_PRIVATE) == STD_PUBLIC
    assert sm2_sign_with_k(STD_PRIVATE, b"message digest", STD_K) == STD_SIGNATURE
    assert gm.sm2_verify(STD_PUBLIC, b"message digest", STD_SIGNATURE)
    assert not gm.sm2_verify(STD_PUBLIC, b"message digesT", STD_SIGNATURE)


def test_generated_keys_are_well_formed(active):
    private_hex, public_hex = gm.generate_sm2_keypair()
    assert len(private_hex) == 64 and len(public_hex) == 128
    assert gm.public_key_of(private_hex) == public_hex


def test_our_signatures_verify_under_gmssl_and_its_under_ours(active, keypair):
    private_hex, public_hex = keypair
    message = b'POST\n/v1/records\n1732500000\nnonce-1\n{"trip": 1}'
    ours = gm.sm2_sign(private_hex, message)
    assert len(ours) == 64
    assert gmssl_verifier(public_hex).verify_with_sm3(ours.hex(), message)
    theirs = gmssl_verifier(public_hex, private_hex).sign_with_sm3(message, secrets.token_hex(32))
    assert gm.sm2_verify(public_hex, message, bytes.fromhex(theirs))
    assert not gm.sm2_verify(public_hex, message + b" ", bytes.fromhex(theirs))


@settings(max_examples=8, deadline=None)
@given(message=st.binary(max_size=200), user_id=st.binary(min_size=1, max_size=40))
def test_backends_agree_for_any_message_and_user_id(keypair, message, user_id):
    private_hex, public_hex = keypair
    fast, ref = BACKENDS
    for signer, verifier in ((fast, ref), (ref, fast)):
        backend.active = signer
        try:
            signature = gm.sm2_sign(private_hex, message, user_id)
            backend.active = verifier
            assert gm.sm2_verify(public_hex, message, signature, user_id)
            assert not gm.sm2_verify(public_hex, message, signature, user_id + b"x")
        finally:
            backend.active = fast


def test_nonce_never_repeats(active, keypair):
    private_hex, public_hex = keypair
    signatures = {gm.sm2_sign(private_hex, b"same message") for _ in range(5)}
    assert len(signatures) == 5
    assert len({sig[:32] for sig in signatures}) == 5  # r = e + x(kG): a repeat means a repeated k


def test_public_key_whose_x_starts_with_04_is_not_mangled(active):
    # gmssl's lstrip("04") truncates such keys; find one among small private keys.
    for d in range(1, 5000):
        public_hex = point_bytes(*_reference._mul(d, point_bytes(GX, GY).hex())).hex()
        if public_hex.startswith("04"):
            break
    private_hex = "%064x" % d
    assert gm.public_key_of(private_hex) == public_hex
    assert gm.sm2_verify(public_hex, b"m", gm.sm2_sign(private_hex, b"m"))
    with pytest.raises(ValueError):  # the 04-prefixed form is refused, not guessed at
        gm.sm2_verify("04" + public_hex, b"m", gm.sm2_sign(private_hex, b"m"))


def _rs(r, s):
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_out_of_range_and_malformed_signatures_are_rejected_without_raising(active, keypair):
    private_hex, public_hex = keypair
    good = gm.sm2_sign(private_hex, b"m")
    r, s = int.from_bytes(good[:32], "big"), int.from_bytes(good[32:], "big")
    bad = [
        _rs(0, s),
        _rs(r, 0),
        _rs(N, s),
        _rs(r, N),
        _rs(2**256 - 1, s),
        _rs(N - r, N - s),
        good[:63],
        good + b"\0",
        b"",
        "not bytes",
        None,
        12345,
        bytes.fromhex(good.hex())[::-1],
    ]
    for signature in bad:
        assert gm.sm2_verify(public_hex, b"m", signature) is False, signature
    assert gm.sm2_verify(public_hex, b"m", bytearray(good)) is True


@pytest.mark.parametrize(
    "public_hex",
    [
        "",
        "zz" * 64,
        "00" * 64,
        STD_PUBLIC[:-2] + "00",
        STD_PUBLIC[:-1],
        42,
    ],
)
def test_malformed_public_key_raises_value_error(active, public_hex):
    with pytest.raises(ValueError):
        gm.sm2_verify(public_hex, b"m", STD_SIGNATURE)


@pytest.mark.parametrize("private_hex", ["", "00" * 32, "%064x" % (N - 1), "g" * 64, "ab"])
def test_invalid_private_key_raises_value_error(active, private_hex):
    with pytest.raises(ValueError):
        gm.sm2_sign(private_hex, b"m")


def test_sign_with_k_rejects_out_of_range_k():
    with pytest.raises(ValueError):
        sm2_sign_with_k(STD_PRIVATE, b"m", "%064x" % N)
