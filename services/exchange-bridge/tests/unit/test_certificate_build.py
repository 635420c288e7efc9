"""exchange_bridge.certificate: a retirement certificate (docs/certificate.md,
carbon-retirement-certificate/2) built from what the bridge stores, judged by the reference
verifier (tools/certificate-verifier/verify.js).

The certificate carries the registry's records verbatim, as signed. The unit suite's FakeRegistry
signs a shortened record, so these tests use it with its records built by the registry's own code
(`Issuance._issue_body`, `Ledger._body`: certificate_support.RegistryShapedFake); the real registry process:
tests/integration/test_bridge_registry.py."""

import pytest

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge import batch_format as bf
from exchange_bridge import certificate

from bridge_fakes import REGISTRY_KEYS, contribution
from certificate_support import KEYS, make_bridge, retired_batches, verify

RECORD_MEMBERS = {
    "format",
    "op_id",
    "type",
    "batch_id",
    "methodology_id",
    "methodology_version",
    "vintage",
    "units",
    "serial",
    "start",
    "end",
    "from_holder",
    "to_holder",
    "beneficiary",
    "reason",
    "at",
    "consumed",
    "produced",
}
ISSUE_MEMBERS = RECORD_MEMBERS | {
    "batch_digest",
    "merkle_root",
    "consent_root",
    "quantity_grams",
    "carried_in_grams",
    "carried_from",
    "carried_out_grams",
    "group_position",
}
RETIRE_MEMBERS = RECORD_MEMBERS | {"request"}


@pytest.fixture
def bridge():
    return make_bridge()


def test_a_certificate_holds_the_owners_leaves_with_proofs_and_the_registrys_records_verbatim(bridge):
    alice = retired_batches(bridge)
    doc = bridge.certificate("pid-alice", alice + ["unknown-reduction"])
    assert set(doc) == {"format", "owner_pid", "issued_at", "total_grams", "batches"}
    assert doc["format"] == "carbon-retirement-certificate/2" and len(doc["batches"]) == 2
    assert doc["total_grams"] == 900_000 + 900_001 + 2 * 45_678
    stored = bridge.repo.records_of(list(bridge.lifecycle.registry.records))
    for entry in doc["batches"]:
        batch = entry["batch"]
        assert set(entry) == {"batch", "bank_signature", "issuance", "retirements", "leaves"}
        assert gm.sm2_verify(KEYS[1], canonical_bytes(batch), bytes.fromhex(entry["bank_signature"]))
        assert set(entry["issuance"]["record"]) == ISSUE_MEMBERS
        assert [set(r["record"]) for r in entry["retirements"]] == [RETIRE_MEMBERS]  # the transfer is not listed
        for signed in [entry["issuance"], *entry["retirements"]]:
            record = stored[signed["record"]["op_id"]]
            assert signed == {
                "record": {k: v for k, v in record.items() if k != "signature"},
                "registry_signature": record["signature"],
            }
            assert gm.sm2_verify(
                REGISTRY_KEYS[1], canonical_bytes(signed["record"]), bytes.fromhex(signed["registry_signature"])
            )
        assert entry["retirements"][0]["record"]["beneficiary"] == "张三"
        assert {leaf["leaf"]["owner_pid"] for leaf in entry["leaves"]} == {"pid-alice"} and len(entry["leaves"]) == 2
        for item in entry["leaves"]:
            assert bf.verify_proof(bf.leaf_hash(item["leaf"]), item["proof"], batch["merkle_root"])
    assert bridge.certificate("pid-bob", alice)["batches"] == []  # not bob's reductions


def test_the_verifier_accepts_it(bridge):
    doc = bridge.certificate("pid-alice", retired_batches(bridge))
    report = verify(doc)
    assert (report["verdict"], report["failures"]) == ("VALID", [])
    assert verify(doc, gm.generate_sm2_keypair()[1])["verdict"] == "INVALID"  # another bank's key


def test_a_batch_re_formed_after_a_rejection_keeps_its_attempt_and_verifies(bridge):
    bridge.lifecycle.registry.reject = 1
    mine = [contribution("pid-alice", 1_100_000)]
    bridge.intake.account.redeem(mine)
    registered = []
    for _ in range(3):
        registered += bridge.run()["registered"]
    [batch_id] = registered
    bridge.units.retire(batch_id, 1, "张三", "个人碳中和", "retire-attempt-2")
    doc = bridge.certificate("pid-alice", [mine[0]["reduction_id"]])
    assert doc["batches"][0]["batch"]["attempt"] == 2
    assert verify(doc)["verdict"] == "VALID"


LEAF = {
    "reduction_id": "r",
    "grams": 5,
    "owner_pid": "p",
    "methodology_id": "m",
    "methodology_version": "1",
    "factor_set_id": "",
    "factor_set_version": "",
    "vintage": 2026,
    "occurred_at": "2026-01-01T00:00:00Z",
}
ISSUE = {"type": "issue", "op_id": "issue:b", "units": 1, "start": 1, "end": 1, "signature": "ab", "seq": 4}
RETIRE = {"type": "retire", "op_id": "retire:x:1", "start": 1, "signature": "cd", "seq": 5}


@pytest.mark.parametrize(
    "owner, material",
    [
        ("p", {"leaves": [LEAF], "issuance": ISSUE, "retirements": []}),  # nothing retired
        ("q", {"leaves": [LEAF], "issuance": ISSUE, "retirements": [RETIRE]}),  # none of q's leaves
        ("p", {"leaves": [LEAF], "issuance": None, "retirements": [RETIRE]}),  # not issued
        # a batch of less than a tonne: 0 units, no serials (start/end null), nothing to retire
        ("p", {"leaves": [LEAF], "issuance": {**ISSUE, "units": 0, "start": None, "end": None}, "retirements": []}),
    ],
)
def test_batches_without_retired_units_of_the_owner_are_left_out(owner, material):
    assert certificate.batch_entry(owner, {"batch": {}, "bank_signature": "", **material}) is None


def test_the_records_go_in_as_signed_without_signature_and_seq():
    entry = certificate.batch_entry(
        "p", {"batch": {}, "bank_signature": "", "leaves": [LEAF], "issuance": ISSUE, "retirements": [RETIRE]}
    )
    assert entry["issuance"] == {
        "record": {k: v for k, v in ISSUE.items() if k not in ("signature", "seq")},
        "registry_signature": "ab",
    }
    assert entry["retirements"] == [
        {"record": {"type": "retire", "op_id": "retire:x:1", "start": 1}, "registry_signature": "cd"}
    ]
    assert certificate.build("p", [], "2027-01-01T00:00:00Z")["total_grams"] == 0
