"""Customers' reductions at the exchange, through the real services (issue 20): redeemed grams
become batches per methodology and vintage at the registry, issued as whole tonnes, the
remainder carried to the group's next batch; and a factor correction that would reverse a
batched reduction is refused (calc: `locked_at_exchange`), recorded in the ledger as a zero-gram
reversal, and leaves every balance, the batch at the bridge and the registry, and the
reconciliation as they were.

The third asks the account's gRPC API for a customer's retirement certificate once units of the
batch holding her reductions were retired (GetRetirementCertificate: account-grpc calls the
bridge's RPC `certificate_pdf` over RabbitMQ): the JSON verifies in the independent verifier, the
PDF is one, and the call is one trace from the gRPC server to the bridge.

The bridge's passes are asked for over RPC (`run_batch`) rather than waited for. Reductions for
the first test are published as calc's `reduction_calculated` with large grams and vintages no
other test uses (2023, 2024), so its groups are its own; the second starts from a signed partner
record through ingest and calc, and tops its group up to a tonne the same way.
"""

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from datetime import datetime, timezone

import grpc
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from calc.repository import CalcRepository
from carbon_common import gm
from carbon_common.events import EventPublisher
from carbon_common.mongo import client
from carbon_dev import payloads
from carbon_dev.calc_fixtures import MethodologyDir
from carbon_dev.processes import ROOT, VENV_BIN
from carbon_dev.testing import EventListener, jaeger_trace, wait_until
from exchange_bridge.registry_client import RegistryClient
from ingest.cli.admin import AdminClient
from ingest.sdk.client import IngestClient

TONNE = 1_000_000


class Exchange:
    """The instance's account and bridge over RPC, its registry as the bank reads it, its
    databases, and calc's events of reductions with chosen grams."""

    def __init__(self, platform):
        self.platform = platform
        processes = {p.name: p for p in platform.processes()}
        bridge = processes["exchange-bridge"].env
        secrets = platform.secrets()
        self.registry = RegistryClient(
            bridge["REGISTRY_URL"], bridge["BRIDGE_PARTICIPANT"], bridge.get("BRIDGE_KEY_ID", "k1"),
            secrets["BRIDGE_SM2_PRIVATE_KEY"],
        )  # fmt: skip
        mongo = client(platform.mongo_uri)
        self.calc_db = mongo[f"carbon_{platform.name}_calc"]
        self.proxy = ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}, timeout=60)
        self.rpc = self.proxy.start()
        self.tag = uuid.uuid4().hex[:8]
        self.published = 0  # reductions published so far: their ids are unique in the run

    def close(self):
        self.proxy.stop()

    def credit(self, earned: dict[str, list[tuple]]) -> dict[str, dict]:
        """{owner: [(grams, methodology, occurred_at)]} as calc's events -> {reduction id: payload};
        returns once the account has credited them all."""
        publisher = EventPublisher(self.platform.amqp_uri, "calc")
        made = {}
        for owner, items in earned.items():
            for grams, methodology, occurred_at in items:
                n, self.published = self.published, self.published + 1
                red = payloads.reduction(
                    owner,
                    n,
                    grams,
                    reduction_id=f"xb-{self.tag}-{n:04d}",
                    record_key=f"xb-rec-{self.tag}-{n:04d}",
                    scenario=methodology,
                    methodology_id=methodology,
                    methodology_version="1",
                    occurred_at=occurred_at,
                    consent_id=f"consent-{owner}",
                )
                publisher.publish("reduction_calculated", red, event_id=red["reduction_id"])
                made[red["reduction_id"]] = red
        publisher.close()
        for owner, items in earned.items():
            wanted = sum(grams for grams, _, _ in items)
            wait_until(lambda o=owner, w=wanted: self.credited(o) >= w, 30, message=f"{owner} credited")
        return made

    def credited(self, owner: str) -> int:
        try:
            return self.rpc.account.get_totals(owner_pid=owner)["credited_grams"]
        except Exception:  # the account opens with its first credit
            return 0

    def redeem(self, owner: str, grams: int) -> None:
        self.rpc.account.redeem(
            grams=grams, request_key=f"xb-{self.tag}-{owner}-{grams}", reward_id="exchange-e2e", owner_pid=owner
        )

    def batches_for(self, listener: EventListener, reduction_ids: set, count: int) -> list[dict]:
        """Run bridge passes until `count` registered batches hold only (and all of) these
        reductions -> their exchange_batch_registered payloads, in arrival order."""
        found: dict[str, dict] = {}

        def arrived():
            self.rpc.exchange_bridge.run_batch()
            for data in events(listener):
                if set(data["reduction_ids"]) & reduction_ids:
                    found.setdefault(data["batch_id"], data)
            return len(found) >= count

        wait_until(arrived, 60, interval=0.5, message=f"{count} registered batches")
        held = {r for data in found.values() for r in data["reduction_ids"]}
        assert held == reduction_ids, "the batches hold exactly the redeemed reductions"
        return list(found.values())


def events(listener: EventListener) -> list[dict]:
    """The payloads of every event the listener has received so far."""
    return [message["body"]["data"] for message in listener.drain()]


@pytest.fixture(scope="module")
def exchange(platform):
    ex = Exchange(platform)
    yield ex
    ex.close()


def at(vintage: int, day: int) -> str:
    return f"{vintage}-05-{day:02d}T09:30:00+08:00"


def test_redeemed_grams_become_whole_tonnes_per_methodology_and_vintage_the_remainder_carried(exchange):
    t = exchange.tag
    ann, ben, cat, dan = (f"pid-{name}-{t}" for name in ("ann", "ben", "cat", "dan"))
    registered = EventListener(exchange.platform.amqp_uri, "exchange_bridge", "exchange_batch_registered")
    first = exchange.credit(
        {
            ann: [(700_000, "metro_ride", at(2024, 3)), (1_050_000, "metro_ride", at(2023, 4))],
            ben: [(500_000, "metro_ride", at(2024, 6))],
            cat: [(600_000, "bus_ride", at(2024, 7)), (700_000, "bus_ride", at(2024, 8))],
        }
    )
    for owner, grams in ((ann, 1_750_000), (ben, 500_000), (cat, 1_300_000)):
        exchange.redeem(owner, grams)
    batches = exchange.batches_for(registered, set(first), 3)

    by_group = {(b["methodology_id"], b["vintage"]): b for b in batches}
    assert set(by_group) == {("metro_ride", 2024), ("metro_ride", 2023), ("bus_ride", 2024)}
    owner_of = {rid: red["user_pid"] for rid, red in first.items()}
    metro24, metro23, bus24 = (
        by_group[("metro_ride", 2024)],
        by_group[("metro_ride", 2023)],
        by_group[("bus_ride", 2024)],
    )
    # 0.7 (ann) + 0.5 (ben) = 1.2 t -> 1 unit, 200 kg carried; ann's 1.05 t -> 1 unit, 50 kg; cat's 1.3 t -> 1, 300 kg
    assert {owner_of[r] for r in metro24["reduction_ids"]} == {ann, ben}
    assert (metro24["units"], metro24["carried_out_grams"], metro24["grams"]) == (1, 200_000, 1_200_000)
    assert (metro23["units"], metro23["carried_out_grams"]) == (1, 50_000)
    assert (bus24["units"], bus24["carried_out_grams"]) == (1, 300_000)
    assert metro24["serial_block"] == "CN-PCA-METRO-RIDE-V1-2024-000000001-000000001"
    assert bus24["serial_block"] == "CN-PCA-BUS-RIDE-V1-2024-000000001-000000001"

    # dan's 850 kg and the 200 kg carried make metro 2024's next tonne
    second = exchange.credit({dan: [(850_000, "metro_ride", at(2024, 9))]})
    exchange.redeem(dan, 850_000)
    [follow] = exchange.batches_for(registered, set(second), 1)
    registered.close()
    assert (follow["units"], follow["carried_in_grams"], follow["carried_out_grams"]) == (1, 200_000, 50_000)
    assert follow["serial_block"] == "CN-PCA-METRO-RIDE-V1-2024-000000002-000000002"
    status = exchange.registry.status(follow["batch_id"])
    assert (status["batch"]["carried_from"], status["batch"]["carried_in_grams"]) == (metro24["batch_id"], 200_000)
    assert (status["status"], status["units"], status["serial_start"]) == ("issued", 1, 2)
    for batch in (metro24, metro23, bus24):
        assert exchange.registry.status(batch["batch_id"])["carried_out_grams"] == batch["carried_out_grams"]

    report = exchange.rpc.exchange_bridge.reconcile()
    assert report["ok"], json.dumps(report["differences"][:5], indent=1)


# -- a correction of a batched reduction --------------------------------------------------------
class Partner:
    """An EV charging operator and a bank app of this test, and one customer who consents."""

    def __init__(self, platform):
        base = f"http://{platform.address(8080)}"
        admin = AdminClient(base, platform.secrets()["ADMIN_TOKEN"])
        suffix = uuid.uuid4().hex[:6]
        self.partner_id, bank_id = f"charge-{suffix}", f"bank-{suffix}"
        keys = {pid: gm.generate_sm2_keypair() for pid in (self.partner_id, bank_id)}
        for pid, kind, scenarios in (
            (self.partner_id, "data_partner", ["ev_charging", "metro_ride"]),
            (bank_id, "bank_app", []),
        ):
            response = admin.register(pid, pid, kind, scenarios, 0, [(f"{pid}-k1", keys[pid][1])])
            assert response.status_code in (200, 201), response.text
        self.partner = IngestClient(base, self.partner_id, f"{self.partner_id}-k1", keys[self.partner_id][0])
        bank = IngestClient(base, bank_id, f"{bank_id}-k1", keys[bank_id][0])
        self.customer = "6222" + uuid.uuid4().int.__str__()[:12]
        consent = bank.record_consent(
            f"c-{suffix}",
            self.customer,
            self.partner_id,
            ["ev_charging", "metro_ride"],
            "green",
            "2030-01-01T00:00:00Z",
        )
        assert consent.status_code in (200, 201), consent.text

    def send(self, scenario: str, activity: dict) -> str:
        """One signed record -> its reduction id (SM3(record key ":0"))."""
        record = {
            "record_id": f"r-{uuid.uuid4().hex[:10]}",
            "customer_ref": self.customer,
            "scenario": scenario,
            "occurred_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "activity": activity,
        }
        response = self.partner.send_batch([record])
        assert response.status_code == 200 and response.json()["results"][0]["outcome"] == "accepted", response.text
        record_key = gm.sm3_hex(f"{self.partner_id}:{record['record_id']}".encode())
        return gm.sm3_hex(f"{record_key}:0".encode())


def entries_of(exchange: Exchange, owner: str) -> list[dict]:
    out, token = [], ""
    while True:
        page = exchange.rpc.account.list_entries(owner_pid=owner, page_size=200, page_token=token)
        out.extend(page["entries"])
        token = page["next_page_token"]
        if not token:
            return out


def test_a_correction_of_a_batched_reduction_is_refused_recorded_and_changes_nothing(exchange, tmp_path):
    platform, calc = exchange.platform, exchange.calc_db
    partner = Partner(platform)
    # a charging session in the north grid region: its grams use cn_grid_average v2's 2023 factor
    ev = partner.send("ev_charging", {"kwh": "100", "region": "north"})
    outcome = wait_until(lambda: calc.outcomes.find_one({"_id": ev}), 30, message="calc's outcome")
    reduction = CalcRepository._decode(outcome)["payload"]
    owner, grams = reduction["user_pid"], int(reduction["grams"])
    assert reduction["factor_set_version"] == "2" and grams == 72_290  # 100 kWh: 135,900 g - 100 x 636.1 g
    wait_until(lambda: exchange.credited(owner) >= grams, 30, message="the session credited")
    partner.send("metro_ride", {"distance_km": "10", "city": "beijing"})  # stays in the balance
    ride_grams = 467  # 10 km x 46.7 g
    wait_until(lambda: exchange.credited(owner) >= grams + ride_grams, 30, message="the ride credited")
    exchange.redeem(owner, grams)  # FIFO: exactly the charging session's credit

    # two other customers' sessions bring the group (ev_charging 1, vintage of now) to a tonne
    vintage = int(reduction["occurred_at"][:4])
    t = exchange.tag
    top = {f"pid-ev-{t}-{n}": [(500_000, "ev_charging", f"{vintage}-06-0{n + 1}T10:00:00+08:00")] for n in range(2)}
    topped = exchange.credit(top)
    for other in top:
        exchange.redeem(other, 500_000)
    registered = EventListener(platform.amqp_uri, "exchange_bridge", "exchange_batch_registered")
    [batch] = exchange.batches_for(registered, {ev, *topped}, 1)
    registered.close()
    assert batch["units"] == 1 and batch["carried_out_grams"] == grams  # 1,072,290 g
    # calc locks the batch's reductions when the issuance event reaches it: wait for that first
    wait_until(lambda: calc.locks.find_one({"_id": ev}), 30, message="calc's lock of the batched reduction")
    balance = exchange.rpc.account.get_balance(owner_pid=owner)["balance_grams"]
    assert balance == ride_grams

    # the grid factor correction (north 2023: 0.6361 -> 0.6400), then the recalculation
    files = MethodologyDir(tmp_path / "methodologies")
    corrected = files.derive(
        "factor_sets/cn_grid_average.v2.yml",
        "factor_sets/cn_grid_average.v2.1.yml",
        version='"2.1"',
        status="corrected",
        supersedes='"2"',
    )
    corrected.write_text(corrected.read_text().replace('north: "0.6361"', 'north: "0.6400"'))
    refused = EventListener(platform.amqp_uri, "calc", "reduction_reversal_refused")
    reversed_ = EventListener(platform.amqp_uri, "calc", "reduction_reversed")
    env = {
        **os.environ,
        "AMQP_URI": platform.amqp_uri,
        "MONGO_URI": platform.mongo_uri,
        "MONGO_DATABASE": f"carbon_{platform.name}_calc",
    }
    run = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "calc.cli.recalculate", "--methodology-dir", str(files.root)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "refused (locked at the exchange)" in run.stdout

    def refusal_of_ev():
        return next((data for data in events(refused) if data["reduction_id"] == ev), None)

    data = wait_until(refusal_of_ev, 30, message="reduction_reversal_refused of the batched reduction")
    refused.close()
    assert (data["code"], data["batch_id"]) == ("locked_at_exchange", batch["batch_id"])
    assert (data["original_grams"], data["corrected_grams"]) == (72_290, 71_900)

    # the ledger: a zero-gram reversal with the refusal's code, the balance untouched
    def refusal_entry():
        found = [e for e in entries_of(exchange, owner) if e["type"] == "reversal" and e.get("reduction_id") == ev]
        return found or None

    [entry] = wait_until(refusal_entry, 30, message="the zero-gram reversal entry")
    assert (entry["grams"], entry["code"], entry["batch_id"]) == (0, "locked_at_exchange", batch["batch_id"])
    assert entry["corrected_grams"] == 71_900
    assert ev not in {data["reduction_id"] for data in events(reversed_)}, "no reversal of the locked reduction"
    reversed_.close()
    for who in (owner, *top):
        entries = entries_of(exchange, who)
        assert exchange.rpc.account.get_balance(owner_pid=who)["balance_grams"] == sum(e["grams"] for e in entries)
    assert exchange.rpc.account.get_balance(owner_pid=owner)["balance_grams"] == balance == ride_grams

    # the batch stays issued at the bridge and at the registry; the reconciliation is clean
    assert exchange.rpc.exchange_bridge.batch_status(batch["batch_id"])["state"] == "issued"
    status = exchange.registry.status(batch["batch_id"])
    assert (status["status"], status["units"]) == ("issued", 1)
    report = exchange.rpc.exchange_bridge.reconcile()
    assert report["ok"], json.dumps(report["differences"][:5], indent=1)
    assert report["figures"]["registered_grams"] <= report["figures"]["redeemed_to_pool_grams"]


# -- a customer's retirement certificate through the account gRPC API ----------------------------
def verify_certificate(text: str, bank_key: str, registry_key: str) -> dict:
    """tools/certificate-verifier's command line over the certificate's bytes -> its JSON report."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found in PATH: the certificate verifier runs on Node.js", pytrace=False)
    with tempfile.NamedTemporaryFile("wb", suffix=".json") as f:
        f.write(text.encode("utf-8"))
        f.flush()
        verifier = ROOT / "tools" / "certificate-verifier" / "verify.js"
        args = [node, str(verifier), "--bank-key", bank_key, "--registry-key", registry_key, "--json", f.name]
        run = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout)


def test_a_customer_gets_the_retirement_certificate_over_grpc(exchange):
    platform, t = exchange.platform, exchange.tag
    eve, fay = f"pid-eve-{t}", f"pid-fay-{t}"
    # metro_ride 2022 is this test's group: 0.7 + 0.2 (eve) + 0.3 t (fay) -> 1 unit, 200 kg carried
    made = exchange.credit(
        {
            eve: [(700_000, "metro_ride", at(2022, 3)), (200_000, "metro_ride", at(2022, 4))],
            fay: [(300_000, "metro_ride", at(2022, 5))],
        }
    )
    kept = exchange.credit({eve: [(40_000, "metro_ride", at(2022, 6))]})  # stays in her balance
    wait_until(lambda: exchange.credited(eve) >= 940_000, 30, message="eve's third credit")
    exchange.redeem(eve, 900_000)  # oldest first: her first two credits, whole
    exchange.redeem(fay, 300_000)
    registered = EventListener(platform.amqp_uri, "exchange_bridge", "exchange_batch_registered")
    [batch] = exchange.batches_for(registered, set(made), 1)
    registered.close()
    assert (batch["units"], batch["carried_out_grams"]) == (1, 200_000)
    retired = exchange.rpc.exchange_bridge.retire_units(
        batch["batch_id"], 1, "households of the e2e", "carbon neutral commute", f"e2e-cert-{t}"
    )
    assert retired["units"] == 1
    eves = sorted(r for r, red in made.items() if red["user_pid"] == eve)

    trace_id = uuid.uuid4().hex
    with grpc.insecure_channel(platform.address(50051)) as channel:
        stub = pb_grpc.AccountServiceStub(channel)
        # no reduction ids: the account's redeemed reductions (the ledger's FIFO), not the kept one
        answer = stub.GetRetirementCertificate(
            pb.GetRetirementCertificateRequest(account=pb.AccountRef(owner_pid=eve), format="json_pdf"),
            timeout=60,
            metadata=[("traceparent", f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01")],
        )
        json_only = stub.GetRetirementCertificate(
            pb.GetRetirementCertificateRequest(account=pb.AccountRef(owner_pid=eve), reduction_ids=eves[:1]),
            timeout=60,
        )
        with pytest.raises(grpc.RpcError) as none:  # eve's reductions are not fay's
            stub.GetRetirementCertificate(
                pb.GetRetirementCertificateRequest(account=pb.AccountRef(owner_pid=fay), reduction_ids=eves),
                timeout=60,
            )
    assert none.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert none.value.details().startswith("no_retired_units:") and fay not in none.value.details()

    bank_key = platform.secrets()["BRIDGE_SM2_PUBLIC_KEY"]
    registry_key = exchange.registry.public_key()["public_key"]
    report = verify_certificate(answer.certificate_json, bank_key, registry_key)
    assert (report["verdict"], report["failures"]) == ("VALID", [])
    assert answer.digest == report["digest"]  # the response's digest is the JSON's
    assert (answer.bank_key_fingerprint, answer.registry_key_fingerprint) == (
        report["keys"]["bank"]["fingerprint"],
        report["keys"]["registry"]["fingerprint"],
    )
    certificate = json.loads(answer.certificate_json)
    assert certificate["owner_pid"] == answer.owner_pid == eve
    [entry] = certificate["batches"]
    assert entry["batch"]["batch_id"] == batch["batch_id"]
    assert sorted(leaf["leaf"]["reduction_id"] for leaf in entry["leaves"]) == eves
    assert not set(kept) & {leaf["leaf"]["reduction_id"] for leaf in entry["leaves"]}
    assert certificate["total_grams"] == answer.total_grams == 900_000
    assert [r["record"]["op_id"] for r in entry["retirements"]] == [retired["record_id"]]
    assert answer.pdf.startswith(b"%PDF") and len(answer.pdf) > 1000
    assert answer.pdf_filename.endswith(".pdf") and answer.json_filename.endswith(".json")

    # one reduction named: the batch that holds it, with all the owner's reductions in that
    # batch (the bridge's rule, docs/certificate.md §8), and no PDF
    assert json_only.pdf == b""
    only = json.loads(json_only.certificate_json)
    assert [e["batch"]["batch_id"] for e in only["batches"]] == [batch["batch_id"]]
    assert sorted(leaf["leaf"]["reduction_id"] for leaf in only["batches"][0]["leaves"]) == eves
    assert verify_certificate(json_only.certificate_json, bank_key, registry_key)["verdict"] == "VALID"

    # one trace: the gRPC server's span, its call to the bridge, and the bridge's RPC span
    def spans_of_both():
        trace = jaeger_trace(trace_id)
        if not trace:
            return None
        services = {trace["processes"][s["processID"]]["serviceName"]: s for s in trace["spans"]}
        return trace if {"account-grpc", "exchange-bridge"} <= set(services) else None

    trace = wait_until(spans_of_both, 30, message=f"trace {trace_id} through account-grpc and the bridge")
    operations = {(trace["processes"][s["processID"]]["serviceName"], s["operationName"]) for s in trace["spans"]}
    assert ("account-grpc", "exchange_bridge/certificate_pdf") in operations
    assert ("exchange-bridge", "exchange_bridge/certificate_pdf") in operations
    assert eve not in json.dumps(trace)  # the pseudonym is in no span
