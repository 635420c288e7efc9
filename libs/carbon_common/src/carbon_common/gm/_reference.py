"""Reference backend: gmssl 3.2.2 (pure Python, slow, the project's required package).

Wraps gmssl's primitives so its pitfalls cannot leak (docs/adr/0003-crypto-backend.md): nonces
come from `secrets` (gmssl's encrypt draws k from `random`), C3 is checked on decrypt,
keys are handed over as validated 128-hex X||Y (no lstrip("04")), and the GM/T order
C1C3C2 is built here rather than through gmssl's `mode` flag (which defaults to C1C2C3).
"""

import hmac
import secrets

from gmssl import sm2 as _gm_sm2
from gmssl import sm3 as _gm_sm3
from gmssl import sm4 as _gm_sm4

from .curve import GX, GY, N, point_bytes
from .errors import DecryptionError

name = "reference(gmssl-3.2.2)"
_G_HEX = point_bytes(GX, GY).hex()
_HMAC_BLOCK = 64


def sm3(data: bytes) -> bytes:
    return bytes.fromhex(_gm_sm3.sm3_hash(list(data)))


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    if len(key) > _HMAC_BLOCK:
        key = sm3(key)
    key = key.ljust(_HMAC_BLOCK, b"\0")
    inner = sm3(bytes(b ^ 0x36 for b in key) + data)
    return sm3(bytes(b ^ 0x5C for b in key) + inner)


def _sm4(key: bytes, mode: int):
    cipher = _gm_sm4.CryptSM4()
    cipher.set_key(key, mode)
    return cipher


def sm4_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding."""
    return _sm4(key, _gm_sm4.SM4_ENCRYPT).crypt_cbc(iv, plaintext)


def sm4_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptionError("bad ciphertext length")
    # gmssl's crypt_cbc strips padding without checking it: decrypt raw ECB blocks
    # and chain them ourselves so the padding can be verified.
    raw = _sm4(key, _gm_sm4.SM4_DECRYPT)
    raw.padding_mode = None
    blocks = raw.crypt_ecb(ciphertext)
    chain = iv + ciphertext[:-16]
    out = bytes(a ^ b for a, b in zip(blocks, chain))
    pad = out[-1]
    if not 1 <= pad <= 16 or out[-pad:] != bytes([pad]) * pad:
        raise DecryptionError("bad padding")
    return out[:-pad]


def _mul(k: int, point_hex: str) -> tuple[int, int]:
    out = _gm_sm2.CryptSM2(private_key="", public_key="")._kg(k, point_hex)
    return int(out[:64], 16), int(out[64:], 16)


def _scalar() -> int:
    return secrets.randbelow(N - 1) + 1


def sm2_generate() -> tuple[int, int, int]:
    d = secrets.randbelow(N - 2) + 1
    return (d, *_mul(d, _G_HEX))


def sm2_sign_digest_with_k(d: int, e: bytes, k: int) -> tuple[int, int] | None:
    """One signing attempt with a caller-chosen k; None if k is unusable (retry)."""
    signer = _gm_sm2.CryptSM2(private_key="%064x" % d, public_key=_G_HEX)
    out = signer.sign(e, "%064x" % k)
    return None if out is None else (int(out[:64], 16), int(out[64:], 16))


def sm2_sign_digest(d: int, e: bytes) -> tuple[int, int]:
    while True:
        rs = sm2_sign_digest_with_k(d, e, _scalar())
        if rs is not None:
            return rs


def sm2_verify_digest(x: int, y: int, e: bytes, r: int, s: int) -> bool:
    verifier = _gm_sm2.CryptSM2(private_key="", public_key="")
    verifier.public_key = point_bytes(x, y).hex()  # bypass lstrip("04") in __init__
    return bool(verifier.verify("%064x%064x" % (r, s), e))


def _kdf(shared: bytes, length: int) -> bytes:
    return bytes.fromhex(_gm_sm3.sm3_kdf(shared.hex().encode(), length))


def sm2_encrypt(x: int, y: int, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
    """Returns (C1 as 64-byte X||Y, C3, C2)."""
    pub_hex = point_bytes(x, y).hex()
    while True:
        k = _scalar()
        shared = point_bytes(*_mul(k, pub_hex))
        t = _kdf(shared, len(plaintext))
        if any(t):
            break
    c1 = point_bytes(*_mul(k, _G_HEX))
    c2 = bytes(a ^ b for a, b in zip(plaintext, t))
    c3 = sm3(shared[:32] + plaintext + shared[32:])
    return c1, c3, c2


def sm2_decrypt(d: int, c1: bytes, c3: bytes, c2: bytes) -> bytes:
    shared = point_bytes(*_mul(d, c1.hex()))
    t = _kdf(shared, len(c2))
    if not any(t):
        raise DecryptionError("SM2 decryption failed")
    plaintext = bytes(a ^ b for a, b in zip(c2, t))
    if not hmac.compare_digest(sm3(shared[:32] + plaintext + shared[32:]), c3):
        raise DecryptionError("SM2 decryption failed")
    return plaintext
