"""The bank-request signing scheme: the exact string signed, and verification."""

from carbon_common import gm
from exchange_bridge.registry import signing


def test_string_to_sign_is_six_lines():
    body = b'{"a":1}'
    text = signing.string_to_sign("post", "/v1/transactions?after=5", "1795595400", "n-0001-abcdefghijkl", body)
    assert (
        text
        == (
            "CARBON-REGISTRY-SM2-SM3\nPOST\n/v1/transactions?after=5\n1795595400\nn-0001-abcdefghijkl\n"
            + gm.sm3_hex(body)
        ).encode()
    )
    assert signing.string_to_sign("GET", "/v1/batches/x", "1", "n" * 16, b"").endswith(gm.sm3_hex(b"").encode())


def test_headers_sign_and_verify():
    private, public = gm.generate_sm2_keypair()
    headers = signing.sign_headers("bank-a", "k1", private, "POST", "/v1/batches", b"{}", timestamp=100, nonce="n" * 20)
    assert headers[signing.H_TIMESTAMP] == "100" and headers[signing.H_NONCE] == "n" * 20
    message = signing.string_to_sign("POST", "/v1/batches", "100", "n" * 20, b"{}")
    assert signing.verify(public, message, headers[signing.H_SIGNATURE])
    assert not signing.verify(public, message.replace(b"POST", b"GET"), headers[signing.H_SIGNATURE])
    assert not signing.verify(public, message, "zz")
    for name, pattern in signing.PATTERNS.items():
        assert pattern.fullmatch(headers[name]), name
    fresh = signing.sign_headers("bank-a", "k1", private, "GET", "/v1/batches/x")
    assert signing.NONCE.fullmatch(fresh[signing.H_NONCE])
