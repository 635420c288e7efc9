"""Helpers of the certificate tests: the unit suite's fake registry signing the registry's real
record shape, a bridge with retired units, and the reference verifier (verify.js)."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge import batch_format as bf
from exchange_bridge.bridge import Bridge
from exchange_bridge.registry.blocks import ACTIVE, Ledger, make_block
from exchange_bridge.registry.issuance import Issuance
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

from bridge_fakes import REGISTRY_KEYS, FakeAccount, FakeDatabase, FakeDispatch, FakeRegistry, contribution

VERIFIER = Path(__file__).resolve().parents[4] / "tools" / "certificate-verifier" / "verify.js"
KEYS = gm.generate_sm2_keypair()
ROTATED_KEYS = gm.generate_sm2_keypair()  # the bank's key after a rotation
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


def make_bridge() -> Bridge:
    registry = RegistryShapedFake("bank-a", KEYS[1])
    return Bridge(FakeAccount(), Repository(FakeDatabase()), registry, Signer(*KEYS), FakeDispatch(), "bank-a")


def rotate_bank_key(bridge, keys=ROTATED_KEYS, key_id: str = "k2") -> None:
    """The bank's key rotation (docs/registry-api.md §1) as the bridge lives it: it signs with the
    new key from now on, and the registry accepts that key."""
    bridge.lifecycle.signer = Signer(*keys, key_id)
    bridge.lifecycle.registry.bank_key = keys[1]


def rotate_registry_key(bridge, keys) -> None:
    """The exchange registry's own key rotation: records from now on are signed with `keys`."""
    bridge.lifecycle.registry.private_key, bridge.lifecycle.registry.public_key = keys


def retired_batches(bridge, between=None) -> list[str]:
    """Two batches holding reductions of pid-alice (and others), with units retired; `between()`
    runs after the first batch is retired, before the second is formed."""
    account, alice = bridge.intake.account, []
    for wave in range(2):
        if wave and between is not None:
            between()
        mine = [contribution("pid-alice", 900_000 + wave), contribution("pid-alice", 45_678)]
        alice += [c["reduction_id"] for c in mine]
        account.redeem(mine + [contribution("pid-bob", 1_200_000), contribution("pid-carol", 333)])
        [batch_id] = bridge.run()["registered"]
        bridge.units.retire(batch_id, 1, "张三", "个人碳中和", f"retire-{wave}")
        bridge.units.transfer(batch_id, 1, "bank-b", f"move-{wave}")
    return alice


def verify(
    certificate_doc: dict, bank_key: str | list[str] = KEYS[1], registry_key: str | list[str] = REGISTRY_KEYS[1]
) -> dict:
    """verify.js --json; `bank_key`, `registry_key`: one key, or a list (each given with its own
    --bank-key / --registry-key)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found in PATH: the certificate verifier runs on Node.js", pytrace=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        json.dump(certificate_doc, f, ensure_ascii=False)
        f.flush()
        banks = [arg for key in ([bank_key] if isinstance(bank_key, str) else bank_key) for arg in ("--bank-key", key)]
        registries = [
            arg
            for key in ([registry_key] if isinstance(registry_key, str) else registry_key)
            for arg in ("--registry-key", key)
        ]
        args = [node, str(VERIFIER), *banks, *registries, "--json", f.name]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)
