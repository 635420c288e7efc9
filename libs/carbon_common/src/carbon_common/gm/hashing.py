"""SM3 (GM/T 0004), HMAC-SM3 and keyed pseudonyms."""

from . import backend


def as_bytes(value, what: str) -> bytes:
    """bytes/bytearray only: bytes(16) would silently mean sixteen zero bytes."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


def sm3_digest(data: bytes) -> bytes:
    return backend.active.sm3(as_bytes(data, "data"))


def sm3_hex(data: bytes) -> str:
    return sm3_digest(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    return backend.active.hmac_sm3(as_bytes(key, "key"), as_bytes(data, "data"))


def hmac_sm3_hex(key: bytes, data: bytes) -> str:
    return hmac_sm3(key, data).hex()


def pseudonymize(key: bytes, customer_number: str) -> str:
    """user_pid = HMAC-SM3(key, UTF-8 customer number), 64 hex chars.

    Keyed (not a bare SM3) so nobody without the key can confirm a guessed customer
    number; stable for one key, so the same customer always maps to the same pid.
    """
    if not isinstance(customer_number, str) or not customer_number:
        raise ValueError("customer_number must be a non-empty string")
    if len(as_bytes(key, "key")) < 16:
        raise ValueError("pseudonym key must be at least 16 bytes")
    return hmac_sm3_hex(key, customer_number.encode("utf-8"))
