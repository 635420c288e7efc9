"""Ctrl-C on `make run` stops what that run started and nothing else: with RabbitMQ, FerretDB and
Jaeger already up (started by `make test`, `make bench`, another engineer …), the same server
processes still answer afterwards, while the run's own platform instance is gone. And what the
run's demo prints is true: the catalogue's redemption confirmed by its partner and in the pool,
the enterprise's view (its staff linked, its groups adding up, none below the minimum size), the
exchange lifecycle (a batch issued in whole tonnes with its remainder carried, units
transferred and retired, a retirement certificate that verify.js judges as printed), checked
against the files, the registry and the platform's own answers.

The runs use an instance of their own ("runstop": vhost carbon_runstop, databases
carbon_runstop_*, ports +5000), reset before and after, so they disturb nobody on the shared
servers. Ctrl-C is what a terminal sends: SIGINT to the whole foreground process group.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import pytest

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_dev.instance import Instance
from carbon_dev.processes import ROOT
from carbon_dev.supervision import alive
from carbon_dev.testing import listening, pid_on_port, wait_until
from exchange_bridge.registry_client import RegistryClient

SHARED_PORTS = {
    "RabbitMQ": 5672,
    "RabbitMQ management": 15672,
    "FerretDB": 27017,
    "Jaeger UI": 16686,
    "Jaeger OTLP": 4318,
}
NAME, OFFSET = "runstop", 5000


@pytest.fixture
def instance():
    instance = Instance(NAME, port_offset=OFFSET)
    instance.reset()
    yield instance
    instance.reset()  # stops it too, should a test have failed half-way


@pytest.fixture
def shared_servers():
    down = [name for name, port in SHARED_PORTS.items() if not listening(port)]
    assert not down, f"this test needs the shared dependencies up (make deps-up): {down} down"
    return {port: pid_on_port(port) for port in SHARED_PORTS.values()}


def run_until(argv, log_path, marker: str, env: dict) -> subprocess.Popen:
    """Start `argv` in a new process group (as a terminal's foreground job) and poll its log
    until `marker` appears."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait_until(
        lambda: marker in log_path.read_text() or process.poll() is not None,
        timeout=600,
        interval=0.5,
        message=f"{marker!r} in {log_path}",
    )
    assert process.poll() is None, log_path.read_text()
    return process


def ctrl_c(process: subprocess.Popen, log_path) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"still running 120 s after Ctrl-C:\n{log_path.read_text()}")


def platform_pids(instance: Instance) -> list[int]:
    return [instance.supervisord_pid(), *(instance.pid(p.name) for p in instance.processes())]


def assert_stopped_only_the_platform(instance: Instance, pids: list[int], shared_before: dict, log: str) -> None:
    assert "stopping what this run started ..." in log, log
    assert f"platform instance {NAME} stopped" in log, log
    assert "left running, not started by this run: jaeger ferretdb rabbitmq" in log, log
    assert not [pid for pid in pids if alive(pid)], "platform processes left running"
    assert not instance.running() and not listening(instance.port(8080))
    assert {port: pid_on_port(port) for port in SHARED_PORTS.values()} == shared_before, (
        "a shared dependency was stopped or restarted"
    )


def environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DETACH", "CARBON_DEPS_OWNER", "CARBON_DEPS")}
    return {**env, "CARBON_INSTANCE": NAME, "CARBON_PORT_OFFSET": str(OFFSET), **extra}


def test_ctrl_c_on_make_run_stops_its_platform_and_leaves_the_running_dependencies(instance, shared_servers, tmp_path):
    log_path = tmp_path / "make-run.log"
    process = run_until(
        ["make", "--no-print-directory", "run"],
        log_path,
        "Ctrl-C stops what this run started",
        environment(DEMO_RECORDS="20"),
    )
    log = log_path.read_text()
    assert f"Ctrl-C stops what this run started: platform instance {NAME}." in log
    assert "RabbitMQ, FerretDB, Jaeger were already running (see make status): they keep running." in log
    pids = platform_pids(instance)
    assert all(pids), pids
    assert_the_demo_told_the_truth(instance, log)

    ctrl_c(process, log_path)

    # make itself dies of the SIGINT it got too (after its child exited); the run exited cleanly
    assert process.returncode in (0, -signal.SIGINT, 130), process.returncode
    assert_stopped_only_the_platform(instance, pids, shared_servers, log_path.read_text())


def test_ctrl_c_in_the_middle_of_the_demo_stops_the_platform_too(instance, shared_servers, tmp_path):
    log_path = tmp_path / "devstack-run.log"
    process = run_until(
        [sys.executable, "-m", "carbon_dev.devstack", "run"],
        log_path,
        "[demo] streaming",
        environment(DEMO_RECORDS="100000"),
    )
    pids = platform_pids(instance)
    assert all(pids), pids

    ctrl_c(process, log_path)

    assert process.returncode == 0, log_path.read_text()
    assert_stopped_only_the_platform(instance, pids, shared_servers, log_path.read_text())


def grams(text: str) -> int:
    return int(text.replace(",", ""))


def one(pattern: str, log: str) -> re.Match:
    found = re.findall(pattern, log)
    assert len(found) == 1, f"{pattern!r} found {len(found)} times in:\n{log}"
    return re.search(pattern, log)


def assert_the_demo_told_the_truth(instance: Instance, log: str) -> None:
    """Every claim of the catalogue and exchange steps, checked (the instance is still up)."""
    assert "exchange-onboarding participant demo-bank: registered; key k1: added" in log, log
    # the catalogue: an item listed, redeemed, confirmed by the partner's signed call, in the pool
    assert "the operator lists demo-metro-day-pass" in log, log
    one(r"RedeemItem\): redemption [0-9a-f]{16}…, 2,000 g debited, awaiting_partner", log)
    one(r"POST /v1/fulfilments/[0-9a-f]{16}…/confirm: 202", log)
    one(r"GetCatalogueRedemption says confirmed, and 2,000 g reached the bank pool \(chain bank-pool(/\d)?, entry", log)

    # the enterprise: its staff linked with their consent; what it sees adds up, no small group shown
    linked = one(r"enterprise demo-enterprise-0001 \(account (\S+)\): (\d+) employees linked their accounts", log)
    assert int(linked[2]) == 12, linked[0]
    # (the test streams DEMO_RECORDS=20: most groups stay below 5 employees and are withheld)
    shown = re.findall(r"\[enterprise\]   (\S+) +(\d+) employees +([\d,]+) g", log)
    withheld = re.findall(r"\[enterprise\]   (\S+) +withheld \(fewer than 5 employees\)", log)
    reported = one(r"\[enterprise\]   reported ([\d,]+) g, (\d+) group\(s\) withheld", log)
    assert shown or withheld, "the enterprise view shows no group: its staff earned nothing"
    assert all(int(n) >= 5 for _, n, _ in shown), shown  # ENTERPRISE_MIN_GROUP 5
    assert sum(grams(g) for _, _, g in shown) == grams(reported[1]) and len(withheld) == int(reported[2]), reported[0]

    # the exchange: the programme's reductions issued as whole tonnes, the remainder carried. One
    # batch, unless the bridge's own timer (every 30 s) passed while the households redeemed: then
    # two, chained by their carry, and the demo moves the units of the one with the most
    homes = one(r"(\d+) households of the energy-saving programme redeem their whole balance, ([\d,]+) g in all", log)
    assert int(homes[1]) == 48 and grams(homes[2]) >= 3_000_000, homes[0]
    issued = re.findall(
        r"household_electricity v1 (\d{4}): batch ([0-9a-f]{12})… of (\d+) reductions, ([\d,]+) g \+ ([\d,]+) g "
        r"carried in → issued (\d+) unit\(s\) CN-PCA-HOUSEHOLD-ELECTRICITY-V1-(\d{4})-(\d{9})-(\d{9}), ([\d,]+) g carried",
        log,
    )
    assert 1 <= len(issued) <= 2, log
    carry, serial, batches = 0, 1, {}
    for vintage, batch_id, _count, quantity, carried_in, units, serial_vintage, start, end, carried_out in issued:
        assert grams(carried_in) == carry and vintage == serial_vintage and int(start) == serial, issued
        units, carry = int(units), grams(carried_out)
        assert (units, carry) == divmod(grams(quantity) + grams(carried_in), 1_000_000) and int(
            end
        ) == serial + units - 1
        batches[batch_id] = (vintage, int(start), units)
        serial += units
    assert carry > 0 and sum(grams(q) for _, _, _, q, *_ in issued) >= grams(homes[2]), issued
    pool = grams(one(r"the bank pool holds ([\d,]+) g taken back from redemptions", log)[1])
    assert pool >= grams(homes[2]) + 2_000
    assert re.search(rf"totals: .* bank pool {pool} g", log), "the report's pool differs from the demo's"

    # part of its units transferred, part retired
    chosen = one(r"units of batch ([0-9a-f]{12})… \((\d+) units\):", log)
    vintage, start, units = batches[chosen[1]]
    assert units == int(chosen[2]) == max(u for _, _, u in batches.values()) >= 2
    moved = one(r"transferred 1 unit (\S+) to demo-green-fund \(registry record (\S+)\)", log)
    retired = one(r'retired (\d+) unit\(s\) (\S+) for "([^"]+)" \(registry record (\S+)\)', log)
    prefix = f"CN-PCA-HOUSEHOLD-ELECTRICITY-V1-{vintage}"
    assert moved[1] == f"{prefix}-{start:09d}-{start:09d}"
    assert int(retired[1]) == units - 1
    assert retired[2] == f"{prefix}-{start + 1:09d}-{start + units - 1:09d}"
    secrets = instance.secrets()
    bank = RegistryClient(instance.url("exchange-registry"), "demo-bank", "k1", secrets["BRIDGE_SM2_PRIVATE_KEY"])
    for op_id, serial, count in ((moved[2], moved[1], 1), (retired[4], retired[2], units - 1)):
        record = bank.record(op_id)  # the registry's own signed record of each
        assert record["batch_id"].startswith(chosen[1]) and (record["serial"], record["units"]) == (serial, count)
    held = bank.holdings("demo-green-fund")
    assert any(block["serial"] == moved[1] for block in held["blocks"]["active"]), held

    # the certificate: the printed file, and verify.js says what the run printed
    cert = one(
        r"retirement certificate \((\S+)\) of household (\d+) \(pid ([0-9a-f]{16})…\): ([\d,]+) g of its "
        r"reductions in (\d+) batch\(es\) whose retirements total (\d+) unit\(s\)",
        log,
    )
    path = ROOT / one(r"written to (\S+\.json)", log)[1]
    certificate = json.loads(path.read_text())
    assert certificate["format"] == cert[1] and certificate["owner_pid"].startswith(cert[3])
    assert certificate["total_grams"] == grams(cert[4]) and len(certificate["batches"]) == int(cert[5]) == 1
    assert certificate["batches"][0]["batch"]["batch_id"].startswith(chosen[1])
    assert int(cert[6]) == units - 1
    command = one(
        r"\n    (node tools/certificate-verifier/verify\.js --bank-key [0-9a-f]{128} --registry-key [0-9a-f]{128} \S+)\n",
        log,
    )[1]
    said = one(r"\n      exit (\d): (\S+)", log)
    result = subprocess.run(shlex.split(command), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == int(said[1]) and result.stdout.split()[0] == said[2], result.stdout + result.stderr
    assert f"--bank-key {secrets['BRIDGE_SM2_PUBLIC_KEY']}" in command
    assert f"--registry-key {secrets['REGISTRY_SM2_PUBLIC_KEY']}" in command
    assert "tools/certificate-verifier/index.html" in log
    pdf = re.search(
        r"and as a PDF for people \(RPC certificate_pdf\): (\S+\.pdf), certificate digest ([0-9a-f]{64})", log
    )
    if pdf:  # where the bridge offers the PDF: the file, of the JSON printed beside it
        assert (ROOT / pdf[1]).read_bytes().startswith(b"%PDF-")
        assert pdf[2] == gm.sm3_hex(canonical_bytes(certificate))
