"""SM2 (GM/T 0003): key pairs, signatures with the Z value, public-key encryption.

Keys are hex: private 64 chars, public 128 chars X||Y *without* the 04 prefix.
Signatures are raw 64-byte r||s. Ciphertexts are C1C3C2 (GM/T order) with C1 encoded as
an uncompressed point 04||X||Y; decryption also accepts gmssl's 04-less C1.
"""

from functools import lru_cache

from . import backend
from .curve import (
    DEFAULT_USER_ID,
    GX,
    GY,
    encode_signature,
    is_on_curve,
    parse_private_key,
    parse_public_key,
    parse_signature,
    point_bytes,
    z_value_input,
)
from .errors import DecryptionError
from .hashing import sm3_digest

MAX_PLAINTEXT = 255  # SM2 encryption wraps keys; bulk data goes through the envelope


def generate_sm2_keypair() -> tuple[str, str]:
    """(private_hex 64 chars, public_hex 128 chars, no 04 prefix)."""
    d, x, y = backend.active.sm2_generate()
    return "%064x" % d, point_bytes(x, y).hex()


@lru_cache(maxsize=64)
def _public_of(d: int) -> tuple[int, int]:
    # d*G in pure Python costs a few ms; a process signs with very few keys, so cache.
    from . import _reference

    return _reference._mul(d, point_bytes(GX, GY).hex())


def public_key_of(private_hex: str) -> str:
    return point_bytes(*_public_of(parse_private_key(private_hex))).hex()


def message_digest(x: int, y: int, message: bytes, user_id: bytes) -> bytes:
    """e = SM3(Z || M), Z = SM3(ENTL || ID || a || b || G || P)."""
    if not isinstance(message, (bytes, bytearray)):
        raise TypeError("message must be bytes")
    return sm3_digest(sm3_digest(z_value_input(user_id, x, y)) + bytes(message))


def sm2_sign(private_hex: str, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    d = parse_private_key(private_hex)
    e = message_digest(*_public_of(d), message, user_id)
    return encode_signature(*backend.active.sm2_sign_digest(d, e))


def sm2_verify(public_hex: str, message: bytes, signature: bytes, user_id: bytes = DEFAULT_USER_ID) -> bool:
    """False for any wrong, malformed or non-canonical signature (never raises for it);
    ValueError only for a malformed public key (a configuration error, not input)."""
    x, y = parse_public_key(public_hex)
    rs = parse_signature(signature)
    if rs is None:
        return False
    return backend.active.sm2_verify_digest(x, y, message_digest(x, y, message, user_id), *rs)


def sm2_encrypt(public_hex: str, plaintext: bytes) -> bytes:
    x, y = parse_public_key(public_hex)
    if not isinstance(plaintext, (bytes, bytearray)) or not 1 <= len(plaintext) <= MAX_PLAINTEXT:
        raise ValueError(f"SM2 plaintext must be 1..{MAX_PLAINTEXT} bytes")
    c1, c3, c2 = backend.active.sm2_encrypt(x, y, bytes(plaintext))
    return b"\x04" + c1 + c3 + c2


def _split_ciphertext(blob: bytes) -> tuple[bytes, bytes, bytes]:
    for start in (1, 0) if blob[:1] == b"\x04" else (0,):
        c1 = blob[start : start + 64]
        rest = blob[start + 64 :]
        if len(rest) >= 33 and is_on_curve(int.from_bytes(c1[:32], "big"), int.from_bytes(c1[32:], "big")):
            return c1, rest[:32], rest[32:]
    raise DecryptionError("SM2 decryption failed")


def sm2_decrypt(private_hex: str, ciphertext: bytes) -> bytes:
    """Plaintext, or DecryptionError if C1 is off-curve or C3 does not match."""
    d = parse_private_key(private_hex)
    if not isinstance(ciphertext, (bytes, bytearray)):
        raise DecryptionError("SM2 decryption failed")
    c1, c3, c2 = _split_ciphertext(bytes(ciphertext))
    if len(c2) > MAX_PLAINTEXT:
        raise DecryptionError("SM2 decryption failed")
    return backend.active.sm2_decrypt(d, c1, c3, c2)
