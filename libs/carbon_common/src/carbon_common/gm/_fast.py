"""Fast backend: `cryptography` (pyca, OpenSSL) for SM4 and `gmssl-pyx` (binding of the
GmSSL C library) for SM3/HMAC-SM3 and SM2. Choice and measurements: docs/adr/0003.

Only validated inputs arrive here (see curve.py); this module only translates formats.
"""

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
import gmssl_pyx
from Cryptodome.Util.asn1 import DerInteger, DerOctetString, DerSequence

from .curve import point_bytes
from .errors import DecryptionError

name = f"fast(cryptography+gmssl-pyx-{gmssl_pyx.version})"


def sm3(data: bytes) -> bytes:
    # GmSSL's one call: ~2 µs, against ~9 µs for a `cryptography` Hash object (entry ids,
    # partition keys and chain hashes take several per record)
    return gmssl_pyx.sm3_hash(data)


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    return gmssl_pyx.sm3_hmac(key, data)  # ~5 µs against ~10 µs


def sm4_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 padding."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def sm4_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptionError("bad ciphertext length")
    decryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptionError("bad padding") from None


def sm2_generate() -> tuple[int, int, int]:
    public, private = gmssl_pyx.sm2_key_generate()  # GmSSL draws from the OS CSPRNG
    return (int.from_bytes(private, "big"), int.from_bytes(public[:32], "big"), int.from_bytes(public[32:], "big"))


def sm2_sign_digest(d: int, e: bytes) -> tuple[int, int]:
    # GmSSL's k comes from its rand_bytes (OS CSPRNG), never from Python's `random`.
    return decode_dss_signature(gmssl_pyx.sm2_sign_sm3_digest(d.to_bytes(32, "big"), e))


def sm2_verify_digest(x: int, y: int, e: bytes, r: int, s: int) -> bool:
    try:
        return bool(gmssl_pyx.sm2_verify_sm3_digest(point_bytes(x, y), e, encode_dss_signature(r, s)))
    except gmssl_pyx.GmsslInnerError:
        return False


def sm2_encrypt(x: int, y: int, plaintext: bytes) -> tuple[bytes, bytes, bytes]:
    """Returns (C1 as 64-byte X||Y, C3, C2); GmSSL emits DER, we unpack it."""
    seq = DerSequence().decode(gmssl_pyx.sm2_encrypt(point_bytes(x, y), plaintext), strict=True)
    c3 = DerOctetString().decode(seq[2], strict=True).payload
    c2 = DerOctetString().decode(seq[3], strict=True).payload
    return point_bytes(seq[0], seq[1]), c3, c2


def sm2_decrypt(d: int, c1: bytes, c3: bytes, c2: bytes) -> bytes:
    der = DerSequence(
        [
            DerInteger(int.from_bytes(c1[:32], "big")),
            DerInteger(int.from_bytes(c1[32:], "big")),
            DerOctetString(c3),
            DerOctetString(c2),
        ]
    ).encode()
    try:  # GmSSL checks C3 itself; any failure is one opaque error to callers
        return gmssl_pyx.sm2_decrypt(d.to_bytes(32, "big"), der)
    except gmssl_pyx.GmsslInnerError:
        raise DecryptionError("SM2 decryption failed") from None
