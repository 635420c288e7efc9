"""SM2 curve parameters (GM/T 0003.5) and strict parsing of keys and signatures.

Every public entry point parses its inputs here first, so both backends only ever see
validated integers: points on the curve, scalars in range.
"""

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

DEFAULT_USER_ID = b"1234567812345678"
_HEX = frozenset("0123456789abcdefABCDEF")


def is_on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def _strict_hex(value, length: int, what: str) -> int:
    if not isinstance(value, str) or len(value) != length or not set(value) <= _HEX:
        raise ValueError(f"{what} must be {length} hex characters")
    return int(value, 16)


def parse_public_key(public_hex: str) -> tuple[int, int]:
    """128 hex chars X||Y, *without* the 04 prefix (gmssl's lstrip("04") would corrupt
    keys whose X starts with 0 or 4, so we refuse the prefixed form outright)."""
    if isinstance(public_hex, str) and len(public_hex) == 130 and public_hex[:2] == "04":
        raise ValueError("public key must be 128 hex characters X||Y without the 04 prefix")
    value = _strict_hex(public_hex, 128, "public key")
    x, y = value >> 256, value & ((1 << 256) - 1)
    if not is_on_curve(x, y):
        raise ValueError("public key is not a point on the SM2 curve")
    return x, y


def parse_private_key(private_hex: str) -> int:
    d = _strict_hex(private_hex, 64, "private key")
    if not 1 <= d <= N - 2:  # 1 + d must be invertible mod n
        raise ValueError("private key out of range [1, n-2]")
    return d


def parse_signature(signature) -> tuple[int, int] | None:
    """Raw 64-byte r||s with r, s in [1, n-1]; None for anything else (never raises)."""
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 64:
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (1 <= r < N and 1 <= s < N):
        return None
    return r, s


def encode_signature(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def point_bytes(x: int, y: int) -> bytes:
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def z_value_input(user_id: bytes, x: int, y: int) -> bytes:
    """ENTL || ID || a || b || xG || yG || xA || yA (GM/T 0003.2 §5.5); hash it for Z."""
    if not isinstance(user_id, (bytes, bytearray)):
        raise TypeError("user_id must be bytes")
    bits = len(user_id) * 8
    if bits > 0xFFFF:
        raise ValueError("user_id longer than 8191 bytes")
    return (
        bits.to_bytes(2, "big")
        + bytes(user_id)
        + A.to_bytes(32, "big")
        + B.to_bytes(32, "big")
        + point_bytes(GX, GY)
        + point_bytes(x, y)
    )
