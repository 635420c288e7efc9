"""exchange_bridge.certificate: a retirement certificate (docs/certificate.md,
carbon-retirement-certificate/2) built from what the bridge stores, judged by the reference
verifier (tools/certificate-verifier/verify.js).

The certificate carries the registry's records verbatim, as signed. The unit suite's FakeRegistry
signs a shortened record, so these tests use it with its records built by the registry's own code
(`Issuance._issue_body`, `Ledger._body`: RegistryShapedFake); the real registry process:
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
from exchange_bridge.registry.blocks import ACTIVE, Ledger, make_block
from exchange_bridge.registry.issuance import Issuance
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

from bridge_fakes import REGISTRY_KEYS, FakeAccount, FakeDatabase, FakeDispatch, FakeRegistry, contribution

VERIFIER = Path(__file__).resolve().parents[4] / "tools" / "certificate-verifier" / "verify.js"
KEYS = gm.generate_sm2_keypair()
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
REQUEST_FIELDS = {"transfer": ("to_holder",), "retire": ("beneficiary", "reason"), "cancel": ("reason",)}


class RegistryShapedFake(FakeRegistry):
    """FakeRegistry whose records are the registry's: same members and values, built by the
    registry's own code, so they are what a certificate carries."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.submitted: dict[str, dict] = {}
        self.positions: dict[str, int] = {}

    def submit(self, body: dict) -> dict:
        self.submitted[body["batch"]["batch_id"]] = body["batch"]
        return super().submit(body)

    def _sign(self, body: dict) -> dict:
        if body["type"] == "issue":
            batch = self.submitted[body["batch_id"]]
            group = bf.group_key(batch["methodology_id"], batch["methodology_version"], batch["vintage"])
            self.positions[group] = self.positions.get(group, 0) + 1
            digest = gm.sm3_hex(canonical_bytes(batch))
            stored = {"_id": body["batch_id"], "batch": batch, "participant": self.participant, "digest": digest}
            link = {key: body[key] for key in ("units", "carried_out_grams", "start", "end", "at")}
            body = Issuance._issue_body(stored, {**link, "n": self.positions[group]})
        else:  # the consumed block: exactly the units moved (the fake keeps no block ids)
            block = make_block(
                f"fake:{body['batch_id']}:{body['start']}", body, body["start"], body["end"], self.participant, ACTIVE
            )
            request = {"batch_id": body["batch_id"], "units": body["units"]}
            request.update({name: body[name] for name in REQUEST_FIELDS[body["type"]]})
            body = Ledger._body(body["op_id"], body["type"], self.participant, block, request, body["at"])
        return super()._sign(body)


@pytest.fixture
def bridge():
    registry = RegistryShapedFake("bank-a", KEYS[1])
    return Bridge(FakeAccount(), Repository(FakeDatabase()), registry, Signer(*KEYS), FakeDispatch(), "bank-a")


def retired_batches(bridge) -> list[str]:
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


def verify(certificate_doc: dict, bank_key: str = KEYS[1]) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found in PATH: the certificate verifier runs on Node.js", pytrace=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        json.dump(certificate_doc, f, ensure_ascii=False)
        f.flush()
        args = [node, str(VERIFIER), "--bank-key", bank_key, "--registry-key", REGISTRY_KEYS[1], "--json", f.name]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)


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
