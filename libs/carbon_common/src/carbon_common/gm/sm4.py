"""SM4-CBC authenticated with HMAC-SM3 (encrypt-then-MAC), and field encryption.

Blob = iv(16) || SM4-CBC-PKCS7 ciphertext || tag(32). The SM4 and MAC keys are derived
from the caller's 16-byte key with HMAC-SM3 under distinct labels, so the one key never
serves two algorithms. tag = HMAC-SM3(mac_key, len(aad) as 8 bytes || aad || iv || ct):
the length prefix keeps aad and ciphertext from sliding into each other.
"""

import base64
import binascii
import hmac
import secrets
from functools import lru_cache

from . import backend
from .errors import DecryptionError
from .hashing import as_bytes, hmac_sm3

_ENC_LABEL = b"carbon-gm/sm4-cbc-hmac-sm3/v1/enc"
_MAC_LABEL = b"carbon-gm/sm4-cbc-hmac-sm3/v1/mac"
_FIELD_AAD = b"carbon-gm/field/v1"
IV_LEN, TAG_LEN = 16, 32


def _subkeys(key16: bytes) -> tuple[bytes, bytes]:
    if not isinstance(key16, (bytes, bytearray)) or len(key16) != 16:
        raise ValueError("SM4 key must be exactly 16 bytes")
    return _derive(bytes(key16))


@lru_cache(maxsize=256)
def _derive(key16: bytes) -> tuple[bytes, bytes]:
    return hmac_sm3(key16, _ENC_LABEL)[:16], hmac_sm3(key16, _MAC_LABEL)


def _tag(mac_key: bytes, aad: bytes, iv: bytes, ct: bytes) -> bytes:
    return hmac_sm3(mac_key, len(aad).to_bytes(8, "big") + aad + iv + ct)


def sm4_cbc_hmac_encrypt(key16: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    enc_key, mac_key = _subkeys(key16)
    plaintext, aad = as_bytes(plaintext, "plaintext"), as_bytes(aad, "aad")
    iv = secrets.token_bytes(IV_LEN)
    ct = backend.active.sm4_cbc_encrypt(enc_key, iv, plaintext)
    return iv + ct + _tag(mac_key, aad, iv, ct)


def sm4_cbc_hmac_decrypt(key16: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    enc_key, mac_key = _subkeys(key16)
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < IV_LEN + 16 + TAG_LEN:
        raise DecryptionError("ciphertext too short")
    blob = bytes(blob)
    iv, ct, tag = blob[:IV_LEN], blob[IV_LEN:-TAG_LEN], blob[-TAG_LEN:]
    if not hmac.compare_digest(_tag(mac_key, as_bytes(aad, "aad"), iv, ct), tag):
        raise DecryptionError("authentication failed")
    return backend.active.sm4_cbc_decrypt(enc_key, iv, ct)


def sm4_field_encrypt(key16: bytes, value: str) -> str:
    """Contact data at rest: UTF-8 text -> base64 text (random IV: not searchable)."""
    if not isinstance(value, str):
        raise TypeError("value must be str")
    blob = sm4_cbc_hmac_encrypt(key16, value.encode("utf-8"), _FIELD_AAD)
    return base64.b64encode(blob).decode("ascii")


def sm4_field_decrypt(key16: bytes, token: str) -> str:
    try:
        blob = base64.b64decode(token, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise DecryptionError("field is not valid base64") from None
    plaintext = sm4_cbc_hmac_decrypt(key16, blob, _FIELD_AAD)
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:  # unreachable unless the key encrypted non-text
        raise DecryptionError("field is not UTF-8") from None
