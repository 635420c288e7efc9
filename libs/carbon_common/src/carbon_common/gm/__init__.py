"""carbon_common.gm — the one module for the Chinese national algorithms.

Pure functions, bytes in/out (hex or base64 where named):

SM3 / keyed pseudonyms
  sm3_digest(data) -> bytes ; sm3_hex(data) -> str ; hmac_sm3_hex(key, data) -> str
  pseudonymize(key, customer_number) -> str      # HMAC-SM3, the user_pid
SM2 (GM/T 0003; public keys 128 hex X||Y WITHOUT 04; default user id 1234567812345678)
  generate_sm2_keypair() -> (private_hex, public_hex)
  sm2_sign(private_hex, message, user_id=...) -> 64-byte r||s (Z value; CSPRNG nonce)
  sm2_verify(public_hex, message, signature, user_id=...) -> bool
      False for any bad signature (wrong length, r/s outside [1, n-1], garbage);
      ValueError only for a malformed public key.
  sm2_encrypt(public_hex, plaintext 1..255 bytes) -> 04||X||Y || C3 || C2 (C1C3C2)
  sm2_decrypt(private_hex, ciphertext) -> bytes, DecryptionError unless C3 verifies
SM4 (authenticated: SM4-CBC then HMAC-SM3 over aad, iv, ct)
  sm4_cbc_hmac_encrypt(key16, plaintext, aad=b"") -> iv || ct || tag
  sm4_cbc_hmac_decrypt(key16, blob, aad=b"") -> bytes, DecryptionError on tampering
  sm4_field_encrypt(key16, text) -> base64 ; sm4_field_decrypt(key16, b64) -> text
Envelope (partners' optional body encryption)
  envelope_encrypt(platform_public_hex, plaintext, aad=b"") -> {"wrapped_key", "ciphertext"}
  envelope_decrypt(platform_private_hex, envelope, aad=b"") -> bytes

BACKEND names the implementation in use (env CARBON_GM_BACKEND=fast|reference; the
reference is gmssl 3.2.2). Test vectors with a fixed nonce: carbon_dev.gm_testing.
SM2 is CPU work (~1-3 ms per op fast, ~10-20 ms reference): in eventlet processes run
bulk signing through eventlet.tpool. Decision record: docs/adr/0003-crypto-backend.md.
"""

from . import backend as _backend
from .curve import DEFAULT_USER_ID
from .envelope import envelope_decrypt, envelope_encrypt
from .errors import DecryptionError
from .hashing import hmac_sm3, hmac_sm3_hex, pseudonymize, sm3_digest, sm3_hex
from .sm2 import (
    generate_sm2_keypair,
    public_key_of,
    sm2_decrypt,
    sm2_encrypt,
    sm2_sign,
    sm2_verify,
)
from .sm4 import (
    sm4_cbc_hmac_decrypt,
    sm4_cbc_hmac_encrypt,
    sm4_field_decrypt,
    sm4_field_encrypt,
)

BACKEND: str = _backend.active.name

__all__ = [
    "BACKEND",
    "DEFAULT_USER_ID",
    "DecryptionError",
    "envelope_decrypt",
    "envelope_encrypt",
    "generate_sm2_keypair",
    "hmac_sm3",
    "hmac_sm3_hex",
    "pseudonymize",
    "public_key_of",
    "sm2_decrypt",
    "sm2_encrypt",
    "sm2_sign",
    "sm2_verify",
    "sm3_digest",
    "sm3_hex",
    "sm4_cbc_hmac_decrypt",
    "sm4_cbc_hmac_encrypt",
    "sm4_field_decrypt",
    "sm4_field_encrypt",
]
