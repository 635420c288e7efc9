"""docs/partner-api.md §3, followed by a partner who has only the doc.

The envelope is rebuilt here from the doc's inputs with an implementation that shares nothing
with ours: SM4 from `cryptography`, SM3 from gmssl, HMAC and SM2 encryption written out by
hand from the doc's steps (curve parameters from gmssl's table). Every value is read from the
doc's tables, so doc and test cannot drift apart, and the result must open with the platform's
own server-side code.
"""

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm2 as gmssl_sm2
from gmssl.sm3 import sm3_hash

from ingest import signing
from ingest.errors import ApiError

DOC = (Path(__file__).resolve().parents[4] / "docs" / "partner-api.md").read_text()
SECTION = DOC[DOC.index("## 3. ") : DOC.index("## 4. ")]


def _table() -> dict:
    rows = {}
    for line in SECTION.splitlines():
        cells = line.split("|")
        if len(cells) == 4 and cells[0] == "" and cells[3] == "" and "`" in cells[2]:
            rows[cells[1].strip()] = re.findall(r"`([^`]*)`", cells[2])
    return rows


V = _table()


def value(label: str) -> str:
    [text] = V[label]
    return text


def hexval(label: str) -> bytes:
    return bytes.fromhex(value(label))


# ---- primitives written from the doc's notation ------------------------------------------


def sm3(data: bytes) -> bytes:
    return bytes.fromhex(sm3_hash(list(data)))


def hmac_sm3(key: bytes, msg: bytes) -> bytes:
    """RFC 2104 with SM3: 64-byte block, keys shorter than a block padded with zeros."""
    assert len(key) <= 64
    key = key.ljust(64, b"\0")
    inner = sm3(bytes(b ^ 0x36 for b in key) + msg)
    return sm3(bytes(b ^ 0x5C for b in key) + inner)


def sm4_cbc_no_padding(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


CURVE = {name: int(text, 16) for name, text in gmssl_sm2.default_ecc_table.items() if name != "g"}
G = (int(gmssl_sm2.default_ecc_table["g"][:64], 16), int(gmssl_sm2.default_ecc_table["g"][64:], 16))


def _add(p1, p2):
    p = CURVE["p"]
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    if p1[0] == p2[0] and (p1[1] + p2[1]) % p == 0:
        return None
    if p1 == p2:
        slope = (3 * p1[0] * p1[0] + CURVE["a"]) * pow(2 * p1[1], -1, p) % p
    else:
        slope = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, p) % p
    x = (slope * slope - p1[0] - p2[0]) % p
    return x, (slope * (p1[0] - x) - p1[1]) % p


def ec_mul(k: int, point):
    out = None
    for bit in bin(k)[2:]:
        out = _add(out, out)
        if bit == "1":
            out = _add(out, point)
    return out


def xy(point) -> bytes:
    return point[0].to_bytes(32, "big") + point[1].to_bytes(32, "big")


def sm3_kdf(z: bytes, length: int) -> bytes:
    out, counter = b"", 1
    while len(out) < length:
        out += sm3(z + counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


LABELS = {kind: label.encode() for label, kind in re.findall(r'HMAC-SM3\(K, "(carbon-gm/[^"]+/(enc|mac))"\)', SECTION)}


# ---- the recipe, step by step --------------------------------------------------------------


def build_from_the_doc(mac_with_length_prefix: bool = True) -> dict:
    partner_id, key_id = V["partner id, key id"]
    timestamp, nonce = V["X-Carbon-Timestamp, X-Carbon-Nonce"]
    method, path = V["method, path"]
    body = value("plaintext body B (the §2 body, 238 bytes)").encode()
    content_key, iv = hexval("content key K"), hexval("IV")
    out = {}

    # 1. AAD: five fields joined by LF, no trailing LF
    [scheme] = re.findall(r'`AAD = "([^"]+)" LF partner_id LF key_id LF timestamp LF nonce`', SECTION)
    aad = b"\n".join(s.encode() for s in (scheme, partner_id, key_id, timestamp, nonce))
    out["AAD (74 bytes, hex)"] = aad.hex()
    # 3. sub-keys under the two labels, as the doc's table writes them
    enc_label, mac_label = LABELS["enc"], LABELS["mac"]
    k_enc = hmac_sm3(content_key, enc_label)[:16]
    k_mac = hmac_sm3(content_key, mac_label)
    out["K_enc"], out["K_mac"] = k_enc.hex(), k_mac.hex()
    # 5. PKCS#7
    n = 16 - len(body) % 16
    out["padding (238 bytes → 240)"] = (bytes([n]) * n).hex()
    # 6. SM4-CBC
    ct = sm4_cbc_no_padding(k_enc, iv, body + bytes([n]) * n)
    out["CT (240 bytes)"] = ct.hex()
    # 7. MAC over L || AAD || IV || CT, L = len(AAD) as 8 bytes big-endian
    length = len(aad).to_bytes(8, "big")
    out["L (8 bytes)"] = length.hex()
    tag = hmac_sm3(k_mac, (length if mac_with_length_prefix else b"") + aad + iv + ct)
    out["TAG = HMAC-SM3(K_mac, L ‖ AAD ‖ IV ‖ CT)"] = tag.hex()
    # 8. standard base64 with padding
    out["ciphertext field (base64 of IV ‖ CT ‖ TAG, 288 bytes)"] = base64.b64encode(iv + ct + tag).decode()
    # 9. SM2-encrypt K to the platform key: 04 || x1 || y1 || C3 || C2
    public = hexval("platform public key P")
    k = int(value("SM2 encryption k"), 16)
    shared = xy(ec_mul(k, (int.from_bytes(public[:32], "big"), int.from_bytes(public[32:], "big"))))
    t = sm3_kdf(shared, 16)
    assert any(t)
    c1 = b"\x04" + xy(ec_mul(k, G))
    c3 = sm3(shared[:32] + content_key + shared[32:])
    c2 = bytes(a ^ b for a, b in zip(content_key, t))
    out.update(
        {
            "SM2 x2 ‖ y2 = k·P": shared.hex(),
            "SM2 t = KDF(x2 ‖ y2, 16)": t.hex(),
            "SM2 C1 = 04 ‖ k·G": c1.hex(),
            "SM2 C3 = SM3(x2 ‖ K ‖ y2)": c3.hex(),
            "SM2 C2 = K ⊕ t": c2.hex(),
            "wrapped_key field (C1 ‖ C3 ‖ C2)": (c1 + c3 + c2).hex(),
        }
    )
    # 10. the envelope, 11. sign it as in §2
    envelope = '{"wrapped_key":"%s","ciphertext":"%s"}' % (
        out["wrapped_key field (C1 ‖ C3 ‖ C2)"],
        out["ciphertext field (base64 of IV ‖ CT ‖ TAG, 288 bytes)"],
    )
    out["envelope body as sent (one line, no newline at the end)"] = envelope
    out["SM3(envelope body)"] = sm3(envelope.encode()).hex()
    to_sign = "\n".join(["CARBON-SM2-SM3", method, path, timestamp, nonce, out["SM3(envelope body)"]]).encode()
    signing_key = value("signing private key (the §2 test key)")
    signer = gmssl_sm2.CryptSM2(private_key=signing_key, public_key="")
    signer.public_key = xy(ec_mul(int(signing_key, 16), G)).hex()  # Z needs it; set past gmssl's lstrip("04")
    out["signing public key"] = signer.public_key
    out["X-Carbon-Signature (over the §2 string to sign of the envelope)"] = signer.sign_with_sm3(
        to_sign, value("SM2 signing k")
    )
    out["headers"] = {
        "X-Carbon-Partner": partner_id,
        "X-Carbon-Key-Id": key_id,
        "X-Carbon-Timestamp": timestamp,
        "X-Carbon-Nonce": nonce,
        "X-Carbon-Encryption": "sm2-sm4-cbc-hmac-sm3",
        "Content-Type": "application/json",
        "X-Carbon-Signature": out["X-Carbon-Signature (over the §2 string to sign of the envelope)"],
    }
    out["string to sign"], out["plaintext"] = to_sign, body
    return out


BUILT = build_from_the_doc()
DERIVED = [label for label in BUILT if label in V]


def test_the_doc_publishes_every_derived_value():
    assert len(DERIVED) == 17
    assert set(V) - set(DERIVED) == {
        "partner id, key id",
        "signing private key (the §2 test key)",
        "method, path",
        "X-Carbon-Timestamp, X-Carbon-Nonce",
        "plaintext body B (the §2 body, 238 bytes)",
        "platform private key (test only)",
        "platform public key P",
        "content key K",
        "IV",
        "SM2 encryption k",
        "SM2 signing k",
    }


def test_an_independent_build_gives_the_published_ciphertext_and_mac():
    assert BUILT["CT (240 bytes)"] == value("CT (240 bytes)")
    tag_label = "TAG = HMAC-SM3(K_mac, L ‖ AAD ‖ IV ‖ CT)"
    assert BUILT[tag_label] == value(tag_label)


@pytest.mark.parametrize("label", DERIVED)
def test_every_published_value_is_what_the_recipe_computes(label):
    assert BUILT[label] == value(label)


def test_the_labels_are_spelled_out_as_33_bytes_of_hex():
    assert set(LABELS) == {"enc", "mac"}
    for kind, label in LABELS.items():
        assert len(label) == 33 and f"`{kind}` = `{label.hex()}`" in SECTION


def test_the_prose_around_the_vector_matches_it():
    assert f"| public key | `{BUILT['signing public key']}` |" in DOC  # the §2 key pair
    assert BUILT["L (8 bytes)"] == "000000000000004a" and "gives `L` = `000000000000004a`" in SECTION
    shown = BUILT["string to sign"].decode().replace("\n", "\\n")
    assert f"`{shown[:-56]}…{shown[-6:]}`" in SECTION
    for name, text in BUILT["headers"].items():
        if name != "X-Carbon-Signature":
            assert f"`{name}: {text}`" in SECTION


def test_the_platform_accepts_the_independently_built_request():
    """What the server runs on an encrypted request: header parsing, the timestamp window, the
    SM2 signature over the envelope bytes, then envelope decryption bound to the headers."""
    envelope = BUILT["envelope body as sent (one line, no newline at the end)"].encode()
    auth = signing.parse_headers(BUILT["headers"])
    assert auth.encryption == signing.ENCRYPTION
    signing.check_timestamp(auth.timestamp, now=float(auth.timestamp))
    message = signing.string_to_sign("POST", "/v1/records", auth.timestamp, auth.nonce, envelope)
    assert message == BUILT["string to sign"]
    assert signing.verify(BUILT["signing public key"], message, auth.signature)
    assert signing.decrypt_body(value("platform private key (test only)"), envelope, auth) == BUILT["plaintext"]


def test_gmssl_opens_the_wrapped_key_as_c1c3c2():
    wrapped = hexval("wrapped_key field (C1 ‖ C3 ‖ C2)")
    platform = gmssl_sm2.CryptSM2(private_key=value("platform private key (test only)"), public_key="", mode=1)
    assert platform.decrypt(wrapped[1:]) == hexval("content key K")  # gmssl wants C1 without 04


def test_the_old_recipe_without_the_length_prefix_is_refused():
    """The §3 before this recipe MACed aad || iv || ct: the platform answers decryption_failed."""
    old = build_from_the_doc(mac_with_length_prefix=False)
    envelope = old["envelope body as sent (one line, no newline at the end)"].encode()
    with pytest.raises(ApiError) as err:
        signing.decrypt_body(value("platform private key (test only)"), envelope, signing.parse_headers(old["headers"]))
    assert err.value.code == "decryption_failed"


def test_the_envelope_is_exactly_two_members():
    assert set(json.loads(value("envelope body as sent (one line, no newline at the end)"))) == {
        "wrapped_key",
        "ciphertext",
    }
