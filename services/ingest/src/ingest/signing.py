"""The request-signing scheme shared by the server (verify) and the partner SDK (sign).

string_to_sign = "CARBON-SM2-SM3\n" METHOD "\n" PATH[?QUERY] "\n" TIMESTAMP "\n" NONCE "\n" hex(SM3(raw body))
signature      = SM2 (GM/T 0003, default user id 1234567812345678) over string_to_sign,
                 sent as 128 hex characters r||s (each 32 bytes, big-endian).
Optional body encryption: the body sent (and signed) is the JSON envelope
{"wrapped_key", "ciphertext"} of carbon_common.gm.envelope_encrypt, its AAD binding it to
this partner, key id, timestamp and nonce. docs/partner-api.md has test vectors.
"""

import json
import re
import secrets
import time
from dataclasses import dataclass

from carbon_common import gm
from carbon_common.gm.curve import N

from ingest.errors import ApiError

SCHEME = "CARBON-SM2-SM3"
WINDOW_SECONDS = 300
ENCRYPTION = "sm2-sm4-cbc-hmac-sm3"
SM2_N = N  # the curve order, for the r/s range check

H_PARTNER = "X-Carbon-Partner"
H_KEY_ID = "X-Carbon-Key-Id"
H_TIMESTAMP = "X-Carbon-Timestamp"
H_NONCE = "X-Carbon-Nonce"
H_SIGNATURE = "X-Carbon-Signature"
H_ENCRYPTION = "X-Carbon-Encryption"

PARTNER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,47}$")
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
HEX128 = re.compile(r"^[0-9a-fA-F]{128}$")


@dataclass(frozen=True)
class AuthHeaders:
    partner_id: str
    key_id: str
    timestamp: str
    nonce: str
    signature: bytes
    encryption: str | None


def request_target(path: str, query: str = "") -> str:
    """The URL as signed: the path, then `?` and the raw query string when there is one
    (e.g. GET /v1/consents?user_pid=…&page_size=20). A request without a query signs its path
    alone, as before queries were signed."""
    return f"{path}?{query}" if query else path


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join([SCHEME, method.upper(), path, timestamp, nonce, gm.sm3_hex(body)]).encode()


def envelope_aad(partner_id: str, key_id: str, timestamp: str, nonce: str) -> bytes:
    return "\n".join([ENCRYPTION, partner_id, key_id, timestamp, nonce]).encode()


def parse_signature(text: str) -> bytes:
    if not HEX128.fullmatch(text):
        raise ApiError("signature_malformed", "X-Carbon-Signature must be 128 hex characters (r||s)")
    raw = bytes.fromhex(text)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if not (0 < r < SM2_N and 0 < s < SM2_N):
        raise ApiError("signature_out_of_range", "r and s must lie in [1, n-1]")
    return raw


def parse_headers(headers) -> AuthHeaders:
    values = {}
    for name in (H_PARTNER, H_KEY_ID, H_TIMESTAMP, H_NONCE, H_SIGNATURE):
        value = headers.get(name)
        if value is None or value == "":
            raise ApiError("missing_auth_header", f"{name} is required", header=name)
        values[name] = value
    for name, pattern in ((H_PARTNER, PARTNER_ID), (H_KEY_ID, KEY_ID), (H_NONCE, NONCE)):
        if not pattern.fullmatch(values[name]):
            raise ApiError("malformed_auth_header", f"{name} must match {pattern.pattern}", header=name)
    encryption = headers.get(H_ENCRYPTION) or None
    if encryption is not None and encryption != ENCRYPTION:
        raise ApiError("unsupported_encryption", f"{H_ENCRYPTION} must be {ENCRYPTION}")
    return AuthHeaders(
        values[H_PARTNER],
        values[H_KEY_ID],
        values[H_TIMESTAMP],
        values[H_NONCE],
        parse_signature(values[H_SIGNATURE]),
        encryption,
    )


def check_timestamp(timestamp: str, now: float) -> None:
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise ApiError("invalid_timestamp", "X-Carbon-Timestamp must be whole seconds since the Unix epoch")
    if len(timestamp) >= 12 or int(timestamp) > 10 * int(now):
        raise ApiError("invalid_timestamp", "X-Carbon-Timestamp looks like milliseconds: send seconds")
    if abs(int(timestamp) - now) > WINDOW_SECONDS:
        raise ApiError(
            "timestamp_out_of_window",
            f"X-Carbon-Timestamp is more than {WINDOW_SECONDS} s from server time",
            server_time=int(now),
        )


def verify(public_hex: str, message: bytes, signature: bytes) -> bool:
    return gm.sm2_verify(public_hex, message, signature)


def decrypt_body(private_hex: str, body: bytes, auth: AuthHeaders) -> bytes:
    try:
        envelope = json.loads(body)
        if not isinstance(envelope, dict) or set(envelope) != {"wrapped_key", "ciphertext"}:
            raise ValueError("envelope must hold exactly wrapped_key and ciphertext")
        aad = envelope_aad(auth.partner_id, auth.key_id, auth.timestamp, auth.nonce)
        return gm.envelope_decrypt(private_hex, envelope, aad)
    except (ValueError, TypeError, gm.DecryptionError):
        raise ApiError("decryption_failed", "the body envelope could not be decrypted and authenticated")


# ---- client side (partner SDK, tests, benchmark) -------------------------------------------


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def sign_request(
    private_hex: str,
    partner_id: str,
    key_id: str,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
    platform_public_hex: str | None = None,
) -> tuple[dict, bytes]:
    """Headers and the body to send; encrypts the body first when platform_public_hex is given."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or new_nonce()
    headers = {
        H_PARTNER: partner_id,
        H_KEY_ID: key_id,
        H_TIMESTAMP: timestamp,
        H_NONCE: nonce,
        "Content-Type": "application/json",
    }
    if platform_public_hex:
        aad = envelope_aad(partner_id, key_id, timestamp, nonce)
        envelope = gm.envelope_encrypt(platform_public_hex, body, aad)
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers[H_ENCRYPTION] = ENCRYPTION
    signature = gm.sm2_sign(private_hex, string_to_sign(method, path, timestamp, nonce, body))
    headers[H_SIGNATURE] = signature.hex() if isinstance(signature, bytes) else signature
    return headers, body
