"""The bank-request signing scheme, shared by the registry (verify) and registry_client (sign).

string_to_sign = "CARBON-REGISTRY-SM2-SM3" \\n METHOD \\n TARGET \\n TIMESTAMP \\n NONCE \\n hex(SM3(body))
  TARGET = the path, plus "?" and the raw query string when there is one (e.g. /v1/transactions?after=5)
  body   = the raw body bytes exactly as sent (no body: SM3 of b"")
signature = SM2 (GM/T 0003, default user id 1234567812345678) over string_to_sign, sent as
            128 hex characters r||s in X-Registry-Signature.
The same scheme as the partner API (docs/partner-api.md §2), under its own label so a
signature made for one API can never be replayed on the other.
"""

import re
import secrets
import time

from carbon_common import gm

SCHEME = "CARBON-REGISTRY-SM2-SM3"
WINDOW_SECONDS = 300

H_PARTICIPANT = "X-Registry-Participant"
H_KEY_ID = "X-Registry-Key-Id"
H_TIMESTAMP = "X-Registry-Timestamp"
H_NONCE = "X-Registry-Nonce"
H_SIGNATURE = "X-Registry-Signature"
HEADERS = (H_PARTICIPANT, H_KEY_ID, H_TIMESTAMP, H_NONCE, H_SIGNATURE)

PARTICIPANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,47}$")
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
HEX128 = re.compile(r"^[0-9a-fA-F]{128}$")
PATTERNS = {
    H_PARTICIPANT: PARTICIPANT_ID,
    H_KEY_ID: KEY_ID,
    H_TIMESTAMP: TIMESTAMP,
    H_NONCE: NONCE,
    H_SIGNATURE: HEX128,
}


def string_to_sign(method: str, target: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return "\n".join([SCHEME, method.upper(), target, timestamp, nonce, gm.sm3_hex(body)]).encode("utf-8")


def sign_headers(
    participant: str,
    key_id: str,
    private_hex: str,
    method: str,
    target: str,
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict:
    """The five X-Registry-* headers of one request (fresh nonce and timestamp by default)."""
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(24)
    message = string_to_sign(method, target, timestamp_text, nonce, body)
    return {
        H_PARTICIPANT: participant,
        H_KEY_ID: key_id,
        H_TIMESTAMP: timestamp_text,
        H_NONCE: nonce,
        H_SIGNATURE: gm.sm2_sign(private_hex, message).hex(),
    }


def verify(public_hex: str, message: bytes, signature_hex: str) -> bool:
    try:
        return gm.sm2_verify(public_hex, message, bytes.fromhex(signature_hex))
    except ValueError:
        return False
