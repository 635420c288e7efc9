"""RPCs `certificate` and `certificate_pdf` of the real exchange_bridge nameko service, over the
real registry process, RabbitMQ and FerretDB: the JSON is VALID in verify.js and the PDF is made
from that same certificate. The units were issued and retired beforehand by a Bridge on the
service's own database (the account is the unit suite's fake)."""

import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from carbon_common import gm
from carbon_common.mongo import client
from carbon_dev.testing import TEST_MONGO_URI
from exchange_bridge.bridge import Bridge
from exchange_bridge.registry_client import RegistryClient
from exchange_bridge.repository import Repository
from exchange_bridge.service import ExchangeBridgeService
from exchange_bridge.signer import Signer

from bridge_fakes import FakeAccount, FakeDispatch, contribution
from registry_support import REGISTRY_KEYS, onboard_over_http

pytestmark = pytest.mark.integration
VERIFIER = Path(__file__).resolve().parents[4] / "tools" / "certificate-verifier" / "verify.js"


def verify(text: str, bank_key: str, registry_keys: list[str] = (REGISTRY_KEYS[1],)) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found in PATH: the certificate verifier runs on Node.js", pytrace=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        registries = [arg for key in registry_keys for arg in ("--registry-key", key)]
        args = [node, str(VERIFIER), "--bank-key", bank_key, *registries, "--json", f.name]
        return json.loads(subprocess.run(args, capture_output=True, text=True, timeout=60).stdout)


def test_the_service_returns_the_certificate_and_its_pdf(registry_process, bridge_config, container_factory):
    url, _ = registry_process()
    bank = onboard_over_http(url)
    config = bridge_config(url, bank)
    account = FakeAccount()
    db = client(TEST_MONGO_URI)[config["MONGO_DATABASE"]]
    registry = RegistryClient(url, bank.participant, bank.key_id, bank.private, backoff=0.01, timeout=5)
    signer = Signer(bank.private, bank.public, bank.key_id)
    bridge = Bridge(account, Repository(db), registry, signer, FakeDispatch(), bank.participant)
    mine = [contribution("pid-alice", 800_000), contribution("pid-alice", 45_678)]
    account.redeem(mine + [contribution("pid-bob", 1_300_000)])
    [batch_id] = bridge.run()["registered"]
    bridge.units.retire(batch_id, 2, "张三", "个人碳中和", "retire-rpc-1")
    ids = [c["reduction_id"] for c in mine]

    container_factory(ExchangeBridgeService, config).start()
    with ServiceRpcProxy("exchange_bridge", config) as service:
        doc = service.certificate("pid-alice", ids)
        answer = service.certificate_pdf("pid-alice", ids)
        json_only = service.certificate_pdf("pid-alice", ids, False)
        with pytest.raises(RemoteError) as nothing:
            service.certificate_pdf("pid-bob", ids)  # none of these is bob's
    assert nothing.value.exc_type == "InvalidRequest"

    report = verify(json.dumps(doc, ensure_ascii=False), bank.public)
    assert (report["verdict"], report["failures"]) == ("VALID", [])
    pdf_doc = answer["certificate"]
    assert {k: v for k, v in pdf_doc.items() if k != "issued_at"} == {k: v for k, v in doc.items() if k != "issued_at"}
    assert verify(json.dumps(pdf_doc, ensure_ascii=False), bank.public)["digest"] == answer["digest"]
    pdf = base64.b64decode(answer["pdf_base64"])
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
    assert answer["bank_key_fingerprint"] == gm.sm3_hex(bytes.fromhex(bank.public))
    assert answer["registry_key_fingerprint"] == report["keys"]["registry"]["fingerprint"]
    assert answer["pdf_filename"].endswith(".pdf") and answer["json_filename"].endswith(".json")
    # asked without the PDF: the same checks and figures, nothing rendered
    assert json_only["pdf_base64"] == "" and json_only["bank_key_fingerprint"] == answer["bank_key_fingerprint"]
    assert (
        verify(json.dumps(json_only["certificate"], ensure_ascii=False), bank.public)["digest"] == json_only["digest"]
    )


def test_after_the_registry_rotates_its_key_the_service_still_hands_out_the_pdf(
    registry_process, bridge_config, container_factory
):
    """One batch issued and retired under the registry's old key, the registry restarted with a
    new key (publishing the old one), a second batch under the new key: the RPC checks each record
    with the key that signed it and the PDF names both."""
    from registry_support import start_registry

    url, registry_db = registry_process()
    bank = onboard_over_http(url)
    account, alice = FakeAccount(), []
    config = bridge_config(url, bank)
    db = client(TEST_MONGO_URI)[config["MONGO_DATABASE"]]
    signer = Signer(bank.private, bank.public, bank.key_id)

    def batch_retired(registry_url: str, n: int) -> None:
        registry = RegistryClient(registry_url, bank.participant, bank.key_id, bank.private, backoff=0.01, timeout=5)
        bridge = Bridge(account, Repository(db), registry, signer, FakeDispatch(), bank.participant)
        mine = contribution("pid-alice", 700_000 + n)
        alice.append(mine["reduction_id"])
        account.redeem([mine, contribution("pid-bob", 1_300_000)])
        [batch_id] = bridge.run()["registered"]
        bridge.units.retire(batch_id, 1, "张三", "个人碳中和", f"retire-rotation-{n}")

    batch_retired(url, 1)
    new_private, new_public = gm.generate_sm2_keypair()
    rotated_url, rotated = start_registry(
        registry_db.name,
        REGISTRY_SM2_PRIVATE_KEY=new_private,
        REGISTRY_SM2_PUBLIC_KEY=new_public,
        REGISTRY_SM2_PREVIOUS_PUBLIC_KEYS=REGISTRY_KEYS[1],
    )
    try:
        batch_retired(rotated_url, 2)
        config["REGISTRY_URL"] = rotated_url
        container_factory(ExchangeBridgeService, config).start()
        with ServiceRpcProxy("exchange_bridge", config) as service:
            answer = service.certificate_pdf("pid-alice", alice)
    finally:
        rotated.terminate()
        rotated.wait(10)

    text = json.dumps(answer["certificate"], ensure_ascii=False)
    assert verify(text, bank.public, [REGISTRY_KEYS[1], new_public])["verdict"] == "VALID"
    assert verify(text, bank.public, [new_public])["verdict"] == "INVALID"  # half its records are the old key's
    assert len(answer["certificate"]["batches"]) == 2
    assert answer["registry_key_fingerprint"] == gm.sm3_hex(bytes.fromhex(new_public))
    assert base64.b64decode(answer["pdf_base64"]).startswith(b"%PDF-")  # its text: test_certificate_pdf
