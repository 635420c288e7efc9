"""Builders for registry tests: banks, leaves, signed submissions, a signing test client, and
the registry as a real process."""

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_common.clock import utc_now_iso
from carbon_dev.testing import TEST_MONGO_URI, free_port, wait_until
from exchange_bridge import batch_format as bf
from exchange_bridge.registry import Faults, create_app, signing
from exchange_bridge.registry_client import signed_submission

METHODOLOGIES = {("metro_ride", "1"), ("bus_ride", "1"), ("walking", "1")}
ADMIN_TOKEN = "registry-admin-token-for-tests"
REGISTRY_KEYS = gm.generate_sm2_keypair()


@dataclass
class Bank:
    participant: str
    key_id: str
    private: str
    public: str


def make_leaves(n: int, grams: int = 300_000, methodology="metro_ride", version="1", year=2026) -> list[dict]:
    tag = uuid.uuid4().hex[:8]
    return [
        {
            "reduction_id": f"red-{tag}-{i:05d}",
            "grams": grams,
            "owner_pid": f"pid-{i % 7}",
            "methodology_id": methodology,
            "methodology_version": version,
            "factor_set_id": "",
            "factor_set_version": "",
            "vintage": year,
            "occurred_at": f"{year}-05-{1 + i % 28:02d}T10:00:00+08:00",
        }
        for i in range(n)
    ]


def consents_of(leaves: list[dict]) -> list[dict]:
    return [{"reduction_id": leaf["reduction_id"], "consent_id": "consent-" + leaf["owner_pid"]} for leaf in leaves]


def submission(bank: Bank, leaves, carried_in=0, carried_from="", attempt=1, consents=None) -> dict:
    consents = consents_of(leaves) if consents is None else consents
    hashes = [bf.consent_leaf_hash(c["reduction_id"], c["consent_id"]) for c in consents]
    batch = bf.batch_document(leaves, hashes, carried_in, carried_from, utc_now_iso(), attempt)
    return signed_submission(batch, leaves, consents, bank.key_id, bank.private)


def resign(body: dict, bank: Bank) -> dict:
    """The body with its batch signed again (after a test edits the batch)."""
    return dict(body, signature=gm.sm2_sign(bank.private, canonical_bytes(body["batch"])).hex())


class RegistryApi:
    """The registry app on a Flask test client, with a signing helper per bank."""

    def __init__(self, db, faults: Faults | None = None, **options):
        self.db = db
        options.setdefault("methodologies", METHODOLOGIES)
        options.setdefault("admin_token", ADMIN_TOKEN)
        options.setdefault("private_key", REGISTRY_KEYS[0])
        options.setdefault("public_key", REGISTRY_KEYS[1])
        self.app = create_app(db, faults, **options)
        self.client = self.app.test_client()

    def admin(self, method: str, path: str, body=None):
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return self.client.open(path, method=method, json=body, headers=headers)

    def onboard(self, participant: str | None = None, key_id: str = "k1") -> Bank:
        participant = participant or f"bank-{uuid.uuid4().hex[:8]}"
        private, public = gm.generate_sm2_keypair()
        assert self.admin(
            "POST", "/v1/admin/participants", {"participant_id": participant, "name": participant}
        ).status_code in (200, 201)
        added = self.admin(
            "POST", f"/v1/admin/participants/{participant}/keys", {"key_id": key_id, "public_key": public}
        )
        assert added.status_code in (200, 201), added.json
        return Bank(participant, key_id, private, public)

    def call(self, bank: Bank, method: str, path: str, body=None, query=None, raw: bytes | None = None, **sign):
        target = path + (f"?{urlencode(query)}" if query else "")
        data = raw if raw is not None else (canonical_bytes(body) if body is not None else b"")
        headers = signing.sign_headers(bank.participant, bank.key_id, bank.private, method, target, data, **sign)
        client = self.app.test_client()  # one per call: safe from concurrent threads
        return client.open(target, method=method, data=data, headers=headers, content_type="application/json")

    def submit(self, bank: Bank, body: dict):
        return self.call(bank, "POST", "/v1/batches", body)


def start_registry(db_name: str, faults: str = "", seed: int = 0, **env) -> tuple[str, subprocess.Popen]:
    """`python -m exchange_bridge.registry` on a free port -> (base URL, process)."""
    address = f"127.0.0.1:{free_port()}"
    environment = {
        **os.environ,
        "MONGO_URI": TEST_MONGO_URI,
        "REGISTRY_DB": db_name,
        "REGISTRY_ADDRESS": address,
        "REGISTRY_ADMIN_TOKEN": ADMIN_TOKEN,
        "REGISTRY_SM2_PRIVATE_KEY": REGISTRY_KEYS[0],
        "REGISTRY_SM2_PUBLIC_KEY": REGISTRY_KEYS[1],
        "REGISTRY_METHODOLOGIES": ",".join(f"{m}:{v}" for m, v in sorted(METHODOLOGIES)),
        "REGISTRY_FAULTS": faults,
        "REGISTRY_FAULT_SEED": str(seed),
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "exchange_bridge.registry"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{address}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"registry exited with {proc.returncode}")
        try:
            return requests.get(f"{url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(up, 30, message="registry up")
    return url, proc


def onboard_over_http(url: str, participant: str | None = None) -> Bank:
    participant = participant or f"bank-{uuid.uuid4().hex[:8]}"
    private, public = gm.generate_sm2_keypair()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body = {"participant_id": participant, "name": participant}
    requests.post(f"{url}/v1/admin/participants", json=body, headers=headers, timeout=10).raise_for_status()
    key = {"key_id": "k1", "public_key": public}
    requests.post(
        f"{url}/v1/admin/participants/{participant}/keys", json=key, headers=headers, timeout=10
    ).raise_for_status()
    return Bank(participant, "k1", private, public)
