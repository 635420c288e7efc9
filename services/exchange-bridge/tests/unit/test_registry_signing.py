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


# docs/registry-api.md §2 "Test vector" (the partner API's published test key and k: test only)
VECTOR_PRIVATE = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
VECTOR_PUBLIC = (
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
VECTOR_BODY = (
    b'{"batch_id":"a80a6dcbbf4f4ae1a67a8d3c3bbe72d876f900268859d0ff37c880d9f98b7d8e",'
    b'"to_holder":"bank-b","transfer_id":"t-0001","units":1}'
)
VECTOR_K = "59276e27d506861a16680f3ad9c02dccef3cc1fa3cdbe4ce6d54b80deac1bc21"
VECTOR_SIGNATURE = (
    "7e9f3fa90bc18829b373562559ad594caebfcc8c9316adf0188f5814ed913b26"
    "0c23152eb57ffa0c6c2c8d5884cd804570c35e824f243647305d3bc27c203435"
)


def test_the_published_vector_reproduces_and_verifies_with_gmssl():
    from carbon_dev.gm_testing import sm2_sign_with_k
    from gmssl import sm2 as gmssl_sm2

    assert gm.public_key_of(VECTOR_PRIVATE) == VECTOR_PUBLIC
    assert gm.sm3_hex(VECTOR_BODY) == "13ee55b948bd3867f13ed6ff6ec31a773910630a59fd00a9799d1e1f439a2842"
    message = signing.string_to_sign("POST", "/v1/transfers", "1795595400", "n-0001-abcdefghijkl", VECTOR_BODY)
    assert sm2_sign_with_k(VECTOR_PRIVATE, message, VECTOR_K).hex() == VECTOR_SIGNATURE
    assert signing.verify(VECTOR_PUBLIC, message, VECTOR_SIGNATURE)
    crypt = gmssl_sm2.CryptSM2(private_key=VECTOR_PRIVATE, public_key=VECTOR_PUBLIC)
    assert crypt.verify_with_sm3(VECTOR_SIGNATURE, message)
