"""exchange_bridge.certificate: a retirement certificate (docs/certificate.md) built from what the
bridge stores, judged by the reference verifier (tools/certificate-verifier/verify.js).

The registry signs its own record shape, not the certificate's (see the README): a certificate
built from its records verifies in every step but the registry's signatures. Re-signing the
certificate's record shape with the registry's key makes it VALID, which shows that everything
else the bridge stores and builds is right. The same against the real registry process:
tests/integration/test_bridge_registry.py."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge import batch_format as bf
from exchange_bridge import certificate
from exchange_bridge.bridge import Bridge
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

from bridge_fakes import REGISTRY_KEYS, FakeAccount, FakeDatabase, FakeDispatch, FakeRegistry, contribution

VERIFIER = Path(__file__).resolve().parents[4] / "tools" / "certificate-verifier" / "verify.js"
KEYS = gm.generate_sm2_keypair()
ISSUE_MEMBERS = {
    "type",
    "batch_id",
    "serial_start",
    "serial_end",
    "start",
    "end",
    "units",
    "carried_out_grams",
    "holder",
    "at",
    "transaction_id",
}
RETIRE_MEMBERS = {
    "type",
    "batch_id",
    "serial_start",
    "serial_end",
    "start",
    "end",
    "units",
    "beneficiary",
    "reason",
    "at",
    "transaction_id",
}


@pytest.fixture
def bridge():
    registry = FakeRegistry("bank-a", KEYS[1])
    return Bridge(FakeAccount(), Repository(FakeDatabase()), registry, Signer(*KEYS), FakeDispatch(), "bank-a")


def retired_batches(bridge) -> tuple[list[dict], list[str]]:
    """Two batches holding reductions of pid-alice (and others), with units retired."""
    account, alice = bridge.intake.account, []
    for wave in range(2):
        mine = [contribution("pid-alice", 900_000 + wave), contribution("pid-alice", 45_678)]
        alice += [c["reduction_id"] for c in mine]
        account.redeem(mine + [contribution("pid-bob", 1_200_000), contribution("pid-carol", 333)])
        [batch_id] = bridge.run()["registered"]
        bridge.units.retire(batch_id, 1, "张三", "个人碳中和", f"retire-{wave}")
        bridge.units.transfer(batch_id, 1, "bank-b", f"move-{wave}")
    return alice


def verify(certificate_doc: dict) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found in PATH: the certificate verifier runs on Node.js", pytrace=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        json.dump(certificate_doc, f, ensure_ascii=False)
        f.flush()
        args = [node, str(VERIFIER), "--bank-key", KEYS[1], "--registry-key", REGISTRY_KEYS[1], "--json", f.name]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


def resigned(doc: dict) -> dict:
    """The certificate with its registry records signed in their own (the certificate's) shape."""
    doc = json.loads(json.dumps(doc))
    for entry in doc["batches"]:
        for signed in [entry["issuance"], *entry["retirements"]]:
            signed["registry_signature"] = gm.sm2_sign(REGISTRY_KEYS[0], canonical_bytes(signed["record"])).hex()
    return doc


def test_a_certificate_holds_the_owners_leaves_with_proofs_and_the_signed_records(bridge):
    alice = retired_batches(bridge)
    doc = bridge.certificate("pid-alice", alice + ["unknown-reduction"])
    assert set(doc) == {"format", "owner_pid", "issued_at", "total_grams", "batches"}
    assert doc["format"] == "carbon-retirement-certificate/1" and len(doc["batches"]) == 2
    assert doc["total_grams"] == 900_000 + 900_001 + 2 * 45_678
    for entry in doc["batches"]:
        batch = entry["batch"]
        assert set(entry) == {"batch", "bank_signature", "issuance", "retirements", "leaves"}
        assert gm.sm2_verify(KEYS[1], canonical_bytes(batch), bytes.fromhex(entry["bank_signature"]))
        assert set(entry["issuance"]["record"]) == ISSUE_MEMBERS
        assert [set(r["record"]) for r in entry["retirements"]] == [RETIRE_MEMBERS]  # the transfer is not a retirement
        assert entry["retirements"][0]["record"]["beneficiary"] == "张三"
        assert {leaf["leaf"]["owner_pid"] for leaf in entry["leaves"]} == {"pid-alice"} and len(entry["leaves"]) == 2
        for item in entry["leaves"]:
            assert bf.verify_proof(bf.leaf_hash(item["leaf"]), item["proof"], batch["merkle_root"])
    assert bridge.certificate("pid-bob", alice)["batches"] == []  # not bob's reductions


def test_the_verifier_accepts_it_but_for_the_registrys_record_shape(bridge):
    alice = retired_batches(bridge)
    doc = bridge.certificate("pid-alice", alice)
    report = verify(doc)
    assert report["verdict"] == "INVALID"
    assert {f["code"] for f in report["failures"]} == {"issuance_signature", "retirement_signature"}
    assert verify(resigned(doc))["verdict"] == "VALID"


def test_batches_without_a_retirement_or_without_the_owners_leaves_are_left_out():
    leaf = {
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
    issue = {"units": 1, "start": 1, "end": 1}
    assert certificate.batch_entry("p", {"batch": {}, "leaves": [leaf], "issuance": issue, "retirements": []}) is None
    assert (
        certificate.batch_entry(
            "q", {"batch": {}, "leaves": [leaf], "issuance": issue, "retirements": [{"type": "retire"}]}
        )
        is None
    )
    assert certificate.build("p", [], "2027-01-01T00:00:00Z")["total_grams"] == 0
