"""TEST-ONLY helpers for the SM2/SM3/SM4 code of carbon_common.gm (dev package: in no image).

`sm2_sign_with_k` signs with a caller-chosen nonce k so that fixed, reproducible test
vectors can be published (docs/partner-api.md). Reusing a k across two messages reveals
the private key: only ever use it with throwaway test keys.
"""

from carbon_common.gm import _reference
from carbon_common.gm.curve import DEFAULT_USER_ID, N, encode_signature, parse_private_key
from carbon_common.gm.sm2 import _public_of, message_digest


def sm2_sign_with_k(private_hex: str, message: bytes, k_hex: str, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """Deterministic SM2 signature (raw r||s) with nonce k; ValueError if k is unusable."""
    d = parse_private_key(private_hex)
    k = int(k_hex, 16)
    if not 1 <= k < N:
        raise ValueError("k out of range [1, n-1]")
    e = message_digest(*_public_of(d), message, user_id)
    rs = _reference.sm2_sign_digest_with_k(d, e, k)
    if rs is None:
        raise ValueError("this k gives r = 0, r + k = n or s = 0; pick another")
    return encode_signature(*rs)


def gmssl_reference(private_hex: str, public_hex: str, mode: int = 1):
    """A gmssl 3.2.2 CryptSM2 for cross-checks, immune to its key-prefix bug: its constructor
    does `public_key.lstrip("04")` when the key starts with "04", which also strips a leading
    0 or 4 of X — a random key hits it 1 time in 256 and the cross-check fails spuriously."""
    from gmssl import sm2 as gmssl_sm2

    crypt = gmssl_sm2.CryptSM2(private_key=private_hex, public_key="", mode=mode)
    crypt.public_key = public_hex
    return crypt


def backends() -> list:
    """[fast backend, gmssl reference]: every operation is tested under both."""
    from carbon_common.gm import backend

    return [backend.load("fast"), _reference]
