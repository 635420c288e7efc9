"""SM2/SM4 envelope for partners' optional encryption of request bodies.

A fresh random SM4 key encrypts the body (SM4-CBC + HMAC-SM3, see sm4.py); that key is
SM2-encrypted to the platform's public key. The partner binds context (e.g. method,
path, key id) through `aad`; the platform must pass the same aad to decrypt.
"""

import base64
import binascii
import secrets

from .errors import DecryptionError
from .sm2 import sm2_decrypt, sm2_encrypt
from .sm4 import sm4_cbc_hmac_decrypt, sm4_cbc_hmac_encrypt


def envelope_encrypt(platform_public_hex: str, plaintext: bytes, aad: bytes = b"") -> dict:
    """{"wrapped_key": hex of SM2 C1C3C2 of the SM4 key, "ciphertext": base64 of iv||ct||tag}"""
    content_key = secrets.token_bytes(16)
    return {
        "wrapped_key": sm2_encrypt(platform_public_hex, content_key).hex(),
        "ciphertext": base64.b64encode(sm4_cbc_hmac_encrypt(content_key, plaintext, aad)).decode(),
    }


def envelope_decrypt(platform_private_hex: str, envelope: dict, aad: bytes = b"") -> bytes:
    """Plaintext, or DecryptionError for any malformed, tampered or misaddressed envelope."""
    try:
        wrapped = bytes.fromhex(envelope["wrapped_key"])
        blob = base64.b64decode(envelope["ciphertext"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise DecryptionError("malformed envelope") from None
    content_key = sm2_decrypt(platform_private_hex, wrapped)
    if len(content_key) != 16:
        raise DecryptionError("malformed envelope")
    return sm4_cbc_hmac_decrypt(content_key, blob, aad)
