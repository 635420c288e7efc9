"""The exchange batch format: fixed vectors (an auditor's implementation must give the same
hex; docs/registry-api.md quotes them), the Merkle rule, proofs, tonnes and serials."""

import json

import pytest
from gmssl import func as gmssl_func
from gmssl import sm3 as gmssl_sm3

from carbon_common.gm import sm3_hex
from exchange_bridge import batch_format as bf

LEAVES = [
    {
        "reduction_id": "red-0001",
        "grams": 1234,
        "owner_pid": "pid-alice",
        "methodology_id": "metro_ride",
        "methodology_version": "1",
        "factor_set_id": "",
        "factor_set_version": "",
        "vintage": 2026,
        "occurred_at": "2026-03-01T08:30:00+08:00",
    },
    {
        "reduction_id": "red-0002",
        "grams": 2000000,
        "owner_pid": "pid-bob",
        "methodology_id": "metro_ride",
        "methodology_version": "1",
        "factor_set_id": "",
        "factor_set_version": "",
        "vintage": 2026,
        "occurred_at": "2026-06-15T12:00:00Z",
    },
    {
        "reduction_id": "red-0003",
        "grams": 500,
        "owner_pid": "pid-alice",
        "methodology_id": "metro_ride",
        "methodology_version": "1",
        "factor_set_id": "",
        "factor_set_version": "",
        "vintage": 2026,
        "occurred_at": "2026-12-31T15:59:59Z",
    },
]
CONSENTS = [("red-0001", "consent-a"), ("red-0002", "consent-b"), ("red-0003", "consent-a")]
CREATED_AT = "2027-01-05T00:00:00.000000Z"

# Expected hex for the inputs above (docs/registry-api.md, "Test vector").
VECTOR = {
    "leaf_hashes": [
        "07b8db3ac12249530cf471a336f86ca690d2f9de4487da3486ffa490d226bdbd",
        "12ed699f365319305b0a5d90b4299d0e626e6b015a0aea52fd6367fa511b2a80",
        "6042f68df674ae5021104bff236cab514af84e2aabbab85192bc4cf8bc8fb8eb",
    ],
    "merkle_root": "85230e38e1f93ed51ea4125f71605559f21ff2189b2046a333dfd671e7c3b085",
    "consent_hashes": [
        "58d092f0e31d4471197af87e6da702da25a9c2ffa268ae467e7bd62d980015c4",
        "070be8d733854d698a94a4c1300259ef57eb950b4eabb675bfdcde8d4920f493",
        "6f6aff1b52d78df0992f47225ec795e12f03cd43784e070163c414f814631f45",
    ],
    "consent_root": "03117763c0f34632ae12de28586675683657fe01cfac159a141aa7e4090ee63e",
    "batch_id": "a80a6dcbbf4f4ae1a67a8d3c3bbe72d876f900268859d0ff37c880d9f98b7d8e",
}


def test_the_fixed_vector():
    assert [bf.leaf_hash(leaf) for leaf in LEAVES] == VECTOR["leaf_hashes"]
    assert bf.merkle_root(VECTOR["leaf_hashes"]) == VECTOR["merkle_root"]
    assert [bf.consent_leaf_hash(r, c) for r, c in CONSENTS] == VECTOR["consent_hashes"]
    assert bf.merkle_root(VECTOR["consent_hashes"]) == VECTOR["consent_root"]
    assert bf.batch_id("metro_ride", "1", 2026, ["red-0003", "red-0001", "red-0002"]) == VECTOR["batch_id"]
    batch = bf.batch_document(LEAVES, VECTOR["consent_hashes"], 0, "", CREATED_AT)
    assert batch == {
        "format": "carbon-reduction-batch/1",
        "batch_id": VECTOR["batch_id"],
        "methodology_id": "metro_ride",
        "methodology_version": "1",
        "vintage": 2026,
        "record_count": 3,
        "quantity_grams": 2001734,
        "carried_in_grams": 0,
        "carried_from": "",
        "merkle_root": VECTOR["merkle_root"],
        "consent_root": VECTOR["consent_root"],
        "period": "2026-03-01T08:30:00+08:00/2026-12-31T15:59:59Z",
        "created_at": CREATED_AT,
    }
    assert bf.tonnes(batch["carried_in_grams"], batch["quantity_grams"]) == (2, 1734)
    assert bf.serial("metro_ride", "1", 2026, 1, 2) == "CN-PCA-METRO-RIDE-V1-2026-000000001-000000002"


def independent_sm3(data: bytes) -> str:
    return gmssl_sm3.sm3_hash(gmssl_func.bytes_to_list(data))  # gmssl, not the platform's SM3


def test_the_vector_by_first_principles():
    """The same numbers from the documented rules, with json and gmssl's SM3 only."""
    text = json.dumps(LEAVES[0], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert independent_sm3(b"leaf:" + text.encode()) == VECTOR["leaf_hashes"][0]
    a, b, c = sorted(VECTOR["leaf_hashes"])
    ab = independent_sm3(("node:" + a + b).encode("ascii"))
    assert independent_sm3(("node:" + ab + c).encode("ascii")) == VECTOR["merkle_root"]
    assert independent_sm3(b"consent:red-0001:consent-a") == VECTOR["consent_hashes"][0]
    ids = "\n".join(["red-0001", "red-0002", "red-0003"])
    assert independent_sm3(("batch:metro_ride:1:2026\n" + ids).encode()) == VECTOR["batch_id"]


def digests(n: int) -> list[str]:
    return [sm3_hex(f"leaf {i}".encode()) for i in range(n)]


def node(left: str, right: str) -> str:
    return sm3_hex(("node:" + left + right).encode("ascii"))


def test_trees_of_zero_one_even_and_odd_leaves():
    assert bf.merkle_root([]) == ""
    (one,) = digests(1)
    assert bf.merkle_root([one]) == one
    a, b, c, d = sorted(digests(4))
    assert bf.merkle_root([d, c, b, a]) == node(node(a, b), node(c, d))  # order given does not matter
    a, b, c = sorted(digests(3))
    assert bf.merkle_root([c, a, b]) == node(node(a, b), c)  # the odd last node is promoted
    five = sorted(digests(5))
    assert bf.merkle_root(five) == node(node(node(five[0], five[1]), node(five[2], five[3])), five[4])
    assert bf.merkle_root([h.upper() for h in five]) == bf.merkle_root(five)


@pytest.mark.parametrize("n", range(1, 12))
def test_every_proof_verifies_and_any_tampering_fails(n):
    hashes = digests(n)
    root = bf.merkle_root(hashes)
    for target in hashes:
        proof = bf.inclusion_proof(hashes, target)
        assert bf.verify_proof(target, proof, root)
        assert not bf.verify_proof(sm3_hex(b"forged"), proof, root)  # tampered leaf
        assert not bf.verify_proof(target, proof, sm3_hex(b"other root"))  # tampered root
        if proof:
            flipped = [dict(proof[0], side="left" if proof[0]["side"] == "right" else "right"), *proof[1:]]
            assert not bf.verify_proof(target, flipped, root)
            changed = [dict(proof[0], hash=sm3_hex(b"x")), *proof[1:]]
            assert not bf.verify_proof(target, changed, root)
            assert not bf.verify_proof(target, proof[:-1], root)  # a step dropped
    with pytest.raises(ValueError):
        bf.inclusion_proof(hashes, sm3_hex(b"absent"))


def test_malformed_proofs_are_false_not_errors():
    (h,) = digests(1)
    assert not bf.verify_proof(h, [{"side": "up", "hash": h}], h)
    assert not bf.verify_proof(h, [{"hash": h}], h)
    assert not bf.verify_proof(h, [{"side": "left", "hash": "ab"}], h)
    assert not bf.verify_proof(h, None, h)
    assert not bf.verify_proof(h, [], "")


def test_vintage_is_the_china_standard_time_year():
    assert bf.vintage("2025-12-31T15:59:59Z") == 2025
    assert bf.vintage("2025-12-31T16:00:00Z") == 2026
    assert bf.vintage("2026-01-01T00:00:00+08:00") == 2026
    with pytest.raises(ValueError):
        bf.vintage("2026-01-01T00:00:00")  # no offset: refused, never guessed


def test_tonnes_carry_the_remainder():
    assert bf.tonnes(0, 999_999) == (0, 999_999)
    assert bf.tonnes(999_999, 1) == (1, 0)
    assert bf.tonnes(400_000, 2_700_000) == (3, 100_000)


def test_serial_format():
    assert bf.serial("household_electricity", "2", 2031, 7, 123456789) == (
        "CN-PCA-HOUSEHOLD-ELECTRICITY-V2-2031-000000007-123456789"
    )


def test_leaf_takes_exactly_the_leaf_fields_and_derives_vintage():
    reduction = dict(LEAVES[0], consent_id="consent-a", extra="dropped")
    del reduction["vintage"]
    assert bf.leaf(reduction) == LEAVES[0]


def test_batch_is_a_function_of_its_leaves_and_refuses_mixed_groups():
    hashes = VECTOR["consent_hashes"]
    one = bf.batch_document(LEAVES, hashes, 5, "ab" * 32, CREATED_AT)
    assert one == bf.batch_document(list(reversed(LEAVES)), list(reversed(hashes)), 5, "ab" * 32, CREATED_AT)
    again = bf.batch_document(LEAVES, hashes, 0, "", CREATED_AT, attempt=2)
    assert again["attempt"] == 2 and again["batch_id"] != VECTOR["batch_id"]
    with pytest.raises(ValueError):
        bf.batch_document([LEAVES[0], dict(LEAVES[1], methodology_version="2")], hashes[:2], 0, "", CREATED_AT)
    with pytest.raises(ValueError):
        bf.batch_document([], [], 0, "", CREATED_AT)
