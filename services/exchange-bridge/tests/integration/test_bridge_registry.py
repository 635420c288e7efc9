"""The bridge (its Repository on FerretDB) against the real registry process: groups, whole
tonnes, the carried remainder chain, unit operations, a retirement certificate judged by the
reference verifier, a fault run landing every reduction exactly once, two bridges at once, and
the operator commands. The account is the unit suite's fake (the real one: test_bridge.py)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import eventlet
import pytest
import requests

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_dev.testing import TEST_MONGO_URI
from exchange_bridge import batch_format as bf
from exchange_bridge.bridge import Bridge
from exchange_bridge.registry.records import verify_record
from exchange_bridge.registry_client import RegistryClient
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

from bridge_fakes import FakeAccount, FakeDispatch, contribution
from registry_support import ADMIN_TOKEN, REGISTRY_KEYS, Bank

pytestmark = pytest.mark.integration
TONNE = 1_000_000
VERIFIER = Path(__file__).resolve().parents[4] / "tools" / "certificate-verifier" / "verify.js"
FAULTS = "latency=0.2,error5xx=0.2,timeout_after_commit=0.2,duplicate=0.2,reject=0.15"


def onboard(url: str, participant: str = "bank-a") -> Bank:
    """Through the operator command, as a deployment does it."""
    private, public = gm.generate_sm2_keypair()
    result = run_onboard(url, participant, public, private)
    assert result.returncode == 0, result.stderr
    return Bank(participant, "k1", private, public)


def run_onboard(url: str, participant: str, public: str, private: str = "") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "REGISTRY_URL": url,
        "REGISTRY_ADMIN_TOKEN": ADMIN_TOKEN,
        "BRIDGE_PARTICIPANT": participant,
        "BRIDGE_KEY_ID": "k1",
        "BRIDGE_SM2_PUBLIC_KEY": public,
        "BRIDGE_SM2_PRIVATE_KEY": private,
    }
    command = [sys.executable, "-m", "exchange_bridge.cli.onboard", "--wait", "10"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


class Setup:
    def __init__(self, url: str, bank: Bank, db, attempts: int = 5, **options):
        self.url, self.bank, self.db = url, bank, db
        self.account, self.dispatch = FakeAccount(), FakeDispatch()
        self.client = RegistryClient(
            url, bank.participant, bank.key_id, bank.private, attempts=attempts, backoff=0.01, timeout=5
        )
        self.options = {"min_grams": TONNE, **options}

    def bridge(self) -> Bridge:
        signer = Signer(self.bank.private, self.bank.public, self.bank.key_id)
        return Bridge(
            self.account, Repository(self.db), self.client, signer, self.dispatch, self.bank.participant, **self.options
        )


@pytest.fixture
def setup(registry_process, mongo_database):
    def make(faults: str = "", seed: int = 0, **options) -> tuple[Setup, object]:
        url, registry_db = registry_process(faults, seed)
        return Setup(url, onboard(url), mongo_database("bridge"), **options), registry_db

    return make


def redeem_three_waves(s: Setup) -> dict[str, list[str]]:
    """pid-alice and others redeem: metro 2026 thrice (a remainder carried across three batches),
    bus 2025 once. -> ({owner: reduction ids, "waiting": [the one left queued]}, issued batch ids)."""
    owners: dict[str, list[str]] = {}
    waves = [
        [
            ("pid-alice", 700_000, "metro_ride", 2026),
            ("pid-bob", 600_000, "metro_ride", 2026),
            ("pid-alice", 1_100_000, "bus_ride", 2025),
        ],
        [("pid-carol", 900_000, "metro_ride", 2026), ("pid-alice", 45_678, "bus_ride", 2025)],
        [
            ("pid-alice", 500_000, "metro_ride", 2026),
            ("pid-bob", 400_000, "metro_ride", 2026),
            ("pid-dan", 350_000, "metro_ride", 2026),
        ],
    ]
    issued = []
    for wave in waves:
        reductions = [contribution(o, g, methodology=m, year=y) for o, g, m, y in wave]
        for r in reductions:
            owners.setdefault(r["owner_pid"], []).append(r["reduction_id"])
            if r["grams"] == 45_678:
                owners["waiting"] = [r["reduction_id"]]
        s.account.redeem(reductions)
        issued += s.bridge().run()["registered"]
    return owners, issued


def verify(doc: dict, bank_key: str) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found in PATH: the certificate verifier runs on Node.js", pytrace=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)
        f.flush()
        args = [node, str(VERIFIER), "--bank-key", bank_key, "--registry-key", REGISTRY_KEYS[1], "--json", f.name]
        return json.loads(subprocess.run(args, capture_output=True, text=True, timeout=60).stdout)


def test_groups_become_whole_tonnes_with_the_remainder_carried_at_the_registry(setup):
    s, _ = setup()
    owners, issued = redeem_three_waves(s)
    statuses = [s.client.status(b) for b in issued]
    metro = [st for st in statuses if st["batch"]["methodology_id"] == "metro_ride"]
    bus = [st for st in statuses if st["batch"]["methodology_id"] == "bus_ride"]
    # metro 2026: 1.3 t -> 1 unit, 0.3 out; 0.3 + 0.9 -> 1, 0.2 out; 0.2 + 1.25 -> 1, 0.45 out
    assert [(st["batch"]["carried_in_grams"], st["units"], st["carried_out_grams"]) for st in metro] == [
        (0, 1, 300_000),
        (300_000, 1, 200_000),
        (200_000, 1, 450_000),
    ]
    assert [st["batch"]["carried_from"] for st in metro] == ["", metro[0]["batch_id"], metro[1]["batch_id"]]
    assert [(st["serial_start"], st["serial_end"]) for st in metro] == [(1, 1), (2, 2), (3, 3)]
    assert [(st["batch"]["vintage"], st["units"], st["carried_out_grams"]) for st in bus] == [(2025, 1, 100_000)]
    assert all(verify_record(REGISTRY_KEYS[1], st["issuance"]) for st in statuses)
    events = s.dispatch.of("exchange_batch_registered")
    assert sorted(i for _, i in events) == sorted(issued)
    assert sorted(r for p, _ in events for r in p["reduction_ids"]) == sorted(
        r for owner, ids in owners.items() if owner.startswith("pid-") for r in ids if r not in owners["waiting"]
    )  # alice's 45,678 g of bus 2025 wait in the queue (with 100 kg carried: below a tonne)
    # the operator's view
    env = {**os.environ, "MONGO_URI": TEST_MONGO_URI, "MONGO_DATABASE": s.db.name}
    out = subprocess.run(
        [sys.executable, "-m", "exchange_bridge.cli.status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    view = json.loads(out.stdout)
    groups = {g["group"]: g for g in view["groups"]}
    assert (
        groups["bus_ride:1:2025"]["pending_grams"] == 45_678
        and groups["bus_ride:1:2025"]["carried_in_grams"] == 100_000
    )
    assert groups["metro_ride:1:2026"]["batches"] == 3 and groups["metro_ride:1:2026"]["head_state"] == "issued"


def retired_certificate(s: Setup) -> dict:
    owners, issued = redeem_three_waves(s)
    bridge = s.bridge()
    for n, batch_id in enumerate(issued):
        bridge.units.retire(batch_id, 1, "张三", "个人碳中和", f"retire-{n}")
    return bridge.certificate("pid-alice", owners["pid-alice"])


def test_the_verifier_accepts_a_certificate_built_from_a_real_registry_run(setup):
    s, _ = setup()
    doc = retired_certificate(s)
    assert doc["format"] == "carbon-retirement-certificate/2"
    assert len(doc["batches"]) == 3  # metro 2026 #1 and #3, bus 2025: alice's issued reductions
    for entry in doc["batches"]:  # the registry's records verbatim: exactly the members it signed
        for signed in [entry["issuance"], *entry["retirements"]]:
            stored = s.client.record(signed["record"]["op_id"])
            assert signed["record"] == {k: v for k, v in stored.items() if k not in ("signature", "seq")}
            assert signed["registry_signature"] == stored["signature"]
            assert gm.sm2_verify(
                REGISTRY_KEYS[1], canonical_bytes(signed["record"]), bytes.fromhex(signed["registry_signature"])
            )
    report = verify(doc, s.bank.public)
    assert (report["verdict"], report["failures"]) == ("VALID", [])
    assert report["keys"]["registry"]["fingerprint"] == gm.sm3_hex(bytes.fromhex(REGISTRY_KEYS[1]))


def test_a_tampered_certificate_from_a_real_registry_run_is_refused(setup):
    s, _ = setup()
    doc = retired_certificate(s)
    # the beneficiary of a retirement changed: the registry's signature no longer covers it
    edited = json.loads(json.dumps(doc))
    edited["batches"][0]["retirements"][0]["record"]["beneficiary"] = "李四"
    report = verify(edited, s.bank.public)
    assert report["verdict"] == "INVALID"
    assert {(f["code"], f["batch"]) for f in report["failures"]} == {
        ("retirement_signature", doc["batches"][0]["batch"]["batch_id"])
    }
    # another batch's retirement (genuinely signed by the registry) shown under the first batch
    borrowed = json.loads(json.dumps(doc))
    borrowed["batches"][0]["retirements"].append(borrowed["batches"][1]["retirements"][0])
    codes = {f["code"] for f in verify(borrowed, s.bank.public)["failures"]}
    assert "retirement_batch" in codes and codes <= {"retirement_batch", "retirement_range", "retirement_overlap"}


def rejected(seed: int, batch_ids) -> list[bool]:
    """Whether the registry injects a rejection on each batch at rate 0.5 (its own per-batch rule)."""
    from exchange_bridge.registry.faults import Faults

    faults = Faults({"reject": 0.5}, seed)
    return [faults.rejects(b) for b in batch_ids]


def test_a_re_formed_batch_after_a_rejection_makes_a_valid_certificate(setup):
    s, _ = setup()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    alice = [contribution("pid-alice", 700_000), contribution("pid-bob", 600_000)]
    s.account.redeem(alice)
    # a seed that rejects attempt 1 of the batch and not attempt 2 (rejections are decided per batch)
    ids = [r["reduction_id"] for r in alice]
    attempts = [bf.batch_id("metro_ride", "1", 2026, ids, attempt=a) for a in (1, 2)]
    seed = next(n for n in range(10_000) if rejected(n, attempts) == [True, False])
    faults = {"rates": "reject=0.5", "seed": seed}
    requests.put(f"{s.url}/v1/admin/faults", json=faults, headers=admin, timeout=10).raise_for_status()
    issued = []
    for _ in range(5):
        issued += s.bridge().run()["registered"]
        if issued:
            break
    [batch_id] = issued
    assert s.client.status(batch_id)["batch"]["batch_id"] == batch_id
    assert s.dispatch.of("exchange_batch_released")  # attempt 1 was rejected and its reductions released
    assert s.client.status(batch_id)["batch"]["attempt"] == 2
    s.bridge().units.retire(batch_id, 1, "张三", "个人碳中和", "retire-attempt-2")
    doc = s.bridge().certificate("pid-alice", [alice[0]["reduction_id"]])
    assert doc["batches"][0]["batch"]["attempt"] == 2
    assert verify(doc, s.bank.public)["verdict"] == "VALID"


def test_a_fault_run_lands_every_reduction_exactly_once(setup):
    from exchange_bridge.errors import OutcomeUnknown

    s, registry_db = setup(FAULTS, seed=20261207, attempts=3, min_grams=300_000)
    reductions = []
    for wave in range(8):
        batch = [
            contribution(f"pid-{i}", 150_000 + 10_000 * i, methodology=("metro_ride", "bus_ride", "walking")[i % 3])
            for i in range(wave, wave + 6)
        ]
        reductions += batch
        s.account.redeem(batch)
        for _ in range(2):
            s.bridge().run()
    # units move exactly once per request key, whatever answers were lost
    retired = []
    for batch_id in sorted({i for _, i in s.dispatch.of("exchange_batch_registered")}):
        if Repository(s.db).transitions_of([batch_id])[batch_id]["issued"]["units"] < 1:
            continue
        for _ in range(10):
            try:
                s.bridge().units.retire(batch_id, 1, "Alice", "offset", f"retire-{batch_id[:12]}")
                retired.append(batch_id)
                break
            except OutcomeUnknown:
                continue
    requests.put(
        f"{s.url}/v1/admin/faults", json={"rates": ""}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).raise_for_status()
    for _ in range(10):
        if not s.bridge().run()["waiting"]:
            break
    faults = requests.get(
        f"{s.url}/v1/admin/faults", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).json()
    assert faults["injected_total"] >= 20, faults
    assert faults["injected"]["reject"] and s.dispatch.of("exchange_batch_released")  # rule R2 was exercised
    retirements = list(registry_db.records.find({"type": "retire"}))
    assert sorted(r["batch_id"] for r in retirements) == sorted(retired) and len(retired) >= 3
    repo = Repository(s.db)
    issued = {doc["_id"]: doc["batch_id"] for doc in repo.issued.find({})}
    written_off = {doc["_id"] for doc in repo.write_offs.find({})}
    claimed = {doc["_id"]: doc["batch_id"] for doc in registry_db.reductions.find({})}
    ids = {r["reduction_id"] for r in reductions}
    assert not set(issued) & written_off
    offs = {r for p, _ in s.dispatch.of("exchange_batch_written_off") for r in p["reduction_ids"]}
    assert offs == written_off
    assert claimed == issued  # the registry holds exactly the reductions the bridge recorded as issued
    # every reduction is issued or written off, except what waits in a queue below a tonne
    waiting = ids - set(issued) - written_off
    view = s.bridge().overview()
    assert sum(g["pending_grams"] for g in view["groups"]) == sum(
        r["grams"] for r in reductions if r["reduction_id"] in waiting
    )
    assert all(g["head_state"] in ("", "issued", "released", "written_off") for g in view["groups"])
    # each group's chain at the registry is the bridge's: carried remainders counted once
    for group in view["groups"]:
        links = sorted(registry_db.issuances.find({"group": group["group"]}), key=lambda link: link["n"])
        for before, after in zip(links, links[1:]):
            assert (after["carried_from"], after["carried_in_grams"]) == (
                before["batch_id"],
                before["carried_out_grams"],
            )
        issued_grams = sum(link["quantity_grams"] for link in links)
        assert sum(link["units"] for link in links) == issued_grams // TONNE
    # one registered event per issued batch
    assert sorted({i for _, i in s.dispatch.of("exchange_batch_registered")}) == sorted(set(issued.values()))


def test_two_bridges_at_once_issue_each_reduction_once(setup):
    s, registry_db = setup(min_grams=1)
    reductions = [contribution(f"pid-{i % 4}", 300_000, year=2025 + i % 2) for i in range(24)]
    for i in range(0, 24, 3):
        s.account.redeem(reductions[i : i + 3])
    pool = eventlet.GreenPool()
    for _ in range(3):
        for bridge in (s.bridge(), s.bridge()):
            pool.spawn(bridge.run)
        pool.waitall()
    s.bridge().run()
    claimed = {doc["_id"]: doc["batch_id"] for doc in registry_db.reductions.find({})}
    assert set(claimed) == {r["reduction_id"] for r in reductions}
    slots = list(Repository(s.db).slots.find({}))
    assert sorted(slot["batch_id"] for slot in slots) == sorted(set(claimed.values()))


def test_onboarding_is_idempotent_and_refuses_a_different_key(registry_process):
    url, _ = registry_process()
    private, public = gm.generate_sm2_keypair()
    first = run_onboard(url, "bank-z", public, private)
    again = run_onboard(url, "bank-z", public, private)
    assert first.returncode == 0 and "registered" in first.stdout and "added" in first.stdout
    assert again.returncode == 0 and "already registered" in again.stdout
    assert "accepted" in again.stdout  # a signed request with the key went through
    other = run_onboard(url, "bank-z", gm.generate_sm2_keypair()[1])
    assert other.returncode == 1 and "key_conflict" in other.stderr
    assert run_onboard(url, "", public).returncode == 2
    assert bf.GRAMS_PER_UNIT == TONNE
