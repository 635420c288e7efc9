"""GetRetirementCertificate against the real `python -m account.grpc_server` process (plain OS
threads, FerretDB) calling an `exchange_bridge` over real RabbitMQ: here a stand-in nameko service
in this test process (its RPC `certificate_pdf` answers as the bridge's does, from the published
test vector, or raises the bridge's expected errors by name), so each of the client's paths can be
driven: the answer and its canonical JSON (VALID in tools/certificate-verifier), many calls at
once from the server's handler threads, which reductions are asked about, the bridge's refusals,
no bridge queue, a bridge that does not answer, RabbitMQ down, no AMQP_URI, the W3C trace
context and nothing personal in the request's headers. The real bridge end to end:
tests/e2e/test_exchange_batches.py::test_a_customer_gets_the_retirement_certificate_over_grpc."""

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import eventlet
import grpc
import pytest
import requests
from eventlet.event import Event
from kombu import Connection, Consumer, Exchange, Queue
from nameko.rpc import rpc

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account import ledger
from carbon_common import gm
from carbon_common.canonical import canonical_bytes, canonical_json
from carbon_dev.testing import free_port, wait_until

import test_account_grpc

pytestmark = pytest.mark.integration
call = test_account_grpc.call
grpc_process = test_account_grpc.grpc_process  # the server-process fixture, shared

ROOT = Path(__file__).resolve().parents[4]
VERIFIER = ROOT / "tools" / "certificate-verifier" / "verify.js"
VECTOR = json.loads(
    (ROOT / "tools" / "certificate-verifier" / "examples" / "certificate-v2-test-vector.json").read_text()
)
# the test vector's public keys (docs/certificate.md §10)
BANK_KEY = (
    "801ac7ba748c11413687703283827372acc6fef102b7db7fbeaf3c1efcd8b824"
    "e0151f9ec830fcad772c525a9742c1495a974b69e53f525796bde1cfc1624f64"
)
REGISTRY_KEY = (
    "aa32a944b93d9992d22ead95505fba21e67da7dc4aac2814c7681fd082c05a3e"
    "79a9b4efd54b9bd1559db4cdbc6dca09b5b83d3c5204e0f6f48502577b532774"
)
OWNER = VECTOR["owner_pid"]
VECTOR_IDS = ["tv-red-0001", "tv-red-0003"]
FAKE_PDF = b"%PDF-1.4\n% a stand-in for the bridge's fpdf2 rendering\n%%EOF\n"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


# --- a stand-in exchange bridge (the same RPC name, answer and expected errors) ------------------
class InvalidRequest(Exception):  # exchange_bridge.errors' names: nameko sends the type's name
    pass


class OutcomeUnknown(Exception):
    pass


class Stage:
    """What the stand-in received, and the calls it holds until the test lets them go."""

    calls: list = []
    pdf_asked: list = []
    held: dict = {}
    in_flight = most_in_flight = 0


def answer_for(owner_pid: str) -> dict:
    certificate = {**VECTOR, "owner_pid": owner_pid}
    return {
        "certificate": certificate,
        "pdf_base64": base64.b64encode(FAKE_PDF).decode(),
        "pdf_filename": f"carbon-retirement-certificate-{owner_pid[:12]}-2027-01-07.pdf",
        "json_filename": f"carbon-retirement-certificate-{owner_pid[:12]}-2027-01-07.json",
        "digest": gm.sm3_hex(canonical_bytes(certificate)),
        "bank_key_fingerprint": gm.sm3_hex(bytes.fromhex(BANK_KEY)),
        "registry_key_fingerprint": gm.sm3_hex(bytes.fromhex(REGISTRY_KEY)),
    }


class StandInBridge:
    name = "exchange_bridge"

    @rpc(expected_exceptions=(InvalidRequest, OutcomeUnknown))
    def certificate_pdf(self, owner_pid, reduction_ids, with_pdf=True):
        Stage.calls.append((owner_pid, list(reduction_ids)))
        Stage.pdf_asked.append(with_pdf)
        Stage.in_flight += 1
        Stage.most_in_flight = max(Stage.most_in_flight, Stage.in_flight)
        try:
            return self._answer(owner_pid, with_pdf)
        finally:
            Stage.in_flight -= 1

    def _answer(self, owner_pid, with_pdf):
        if owner_pid in Stage.held:
            Stage.held[owner_pid].wait()
        if owner_pid == "pid-none":
            raise InvalidRequest("none of these reductions of the owner is in a batch with retired units")
        if owner_pid == "pid-rotated":
            raise InvalidRequest("the certificate's signatures do not verify with the current bank and registry keys")
        if owner_pid == "pid-registry-down":
            raise OutcomeUnknown("the registry's public key could not be read: ConnectionError")
        if owner_pid == "pid-broken":
            raise KeyError("batches")  # a fault of the bridge, not a refusal
        eventlet.sleep(0.05 * (len(Stage.calls) % 5))  # answers come back out of order
        return {**answer_for(owner_pid), **({} if with_pdf else {"pdf_base64": ""})}


@pytest.fixture
def bridge(rabbit_config, container_factory):
    Stage.calls, Stage.pdf_asked, Stage.held, Stage.in_flight, Stage.most_in_flight = [], [], {}, 0, 0
    container = container_factory(StandInBridge, rabbit_config)
    container.start()
    yield rabbit_config["AMQP_URI"]
    for event in Stage.held.values():
        if not event.ready():
            event.send(True)


@pytest.fixture
def accounts(ops):
    for owner in (OWNER, "pid-none", "pid-rotated", "pid-registry-down", "pid-broken", "pid-held", "pid-slow"):
        ops.open_account(owner)
    for n in range(12):
        ops.open_account(f"pid-c-{n}")


def ask(address, owner_pid=OWNER, reduction_ids=VECTOR_IDS, fmt="", timeout=15, metadata=()):
    """(status code, details, response) of one GetRetirementCertificate."""

    def run(channel):
        request = pb.GetRetirementCertificateRequest(
            account=pb.AccountRef(owner_pid=owner_pid), reduction_ids=list(reduction_ids), format=fmt
        )
        try:
            response = pb_grpc.AccountServiceStub(channel).GetRetirementCertificate(
                request, timeout=timeout, metadata=metadata
            )
            return grpc.StatusCode.OK, "", response
        except grpc.RpcError as error:
            return error.code(), error.details() or "", None

    return call(address, run)


def verify(text: str) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found in PATH: the certificate verifier runs on Node.js", pytrace=False)
    with tempfile.NamedTemporaryFile("wb", suffix=".json") as f:
        f.write(text.encode("utf-8"))
        f.flush()
        args = [node, str(VERIFIER), "--bank-key", BANK_KEY, "--registry-key", REGISTRY_KEY, "--json", f.name]
        return json.loads(subprocess.run(args, capture_output=True, text=True, timeout=60).stdout)


def request_copies(amqp_uri: str):
    """A queue of our own bound like the bridge's: a copy of every certificate_pdf request, with
    its headers and properties as they travelled -> drain() -> [(properties, headers, body)]."""
    connection = Connection(amqp_uri)
    queue = Queue(
        "copies-of-certificate-requests",
        exchange=Exchange("nameko-rpc", type="topic", durable=True),
        routing_key="exchange_bridge.certificate_pdf",
        exclusive=True,
    )
    got = []
    consumer = Consumer(
        connection.channel(),
        queues=[queue],
        no_ack=True,
        accept=["json"],
        callbacks=[lambda body, message: got.append((dict(message.properties), dict(message.headers), body))],
    )
    consumer.consume()

    def drain():
        try:
            while True:
                connection.drain_events(timeout=0.2)
        except Exception:  # noqa: BLE001 - socket.timeout: nothing more
            pass
        return got

    return connection, drain


def test_the_certificate_comes_as_canonical_json_that_verifies_and_with_its_pdf(grpc_process, bridge, accounts):
    server = grpc_process(AMQP_URI=bridge)
    code, details, json_only = ask(server["grpc"])
    assert code == grpc.StatusCode.OK, details
    text = canonical_json(VECTOR)
    assert json_only.certificate_json == text  # the bytes the digest is over, not re-shaped
    assert json_only.digest == gm.sm3_hex(text.encode("utf-8")) == verify(json_only.certificate_json)["digest"]
    report = verify(json_only.certificate_json)
    assert (report["verdict"], report["failures"]) == ("VALID", [])
    assert json_only.bank_key_fingerprint == report["keys"]["bank"]["fingerprint"]
    assert json_only.registry_key_fingerprint == report["keys"]["registry"]["fingerprint"]
    assert (json_only.account_id, json_only.owner_pid) == (ledger.account_id_for(OWNER), OWNER)
    assert (json_only.certificate_format, json_only.issued_at, json_only.total_grams) == (
        "carbon-retirement-certificate/2",
        VECTOR["issued_at"],
        VECTOR["total_grams"],
    )
    assert json_only.pdf == b"" and json_only.json_filename.endswith(".json")
    assert json_only.pdf_filename.endswith(".pdf")

    code, details, with_pdf = ask(server["grpc"], fmt="json_pdf")
    assert code == grpc.StatusCode.OK, details
    assert with_pdf.pdf == FAKE_PDF and with_pdf.pdf.startswith(b"%PDF")
    assert with_pdf.certificate_json == text and with_pdf.digest == json_only.digest
    assert Stage.calls == [(OWNER, VECTOR_IDS)] * 2
    assert Stage.pdf_asked == [False, True]  # the bridge renders a PDF only when one was asked for
    assert OWNER not in server["log"].read_text()  # the pseudonym travels in the message body only


def test_the_example_client_saves_the_json_as_it_came_and_the_pdf(grpc_process, bridge, accounts, tmp_path):
    server = grpc_process(AMQP_URI=bridge)
    example = ROOT / "services" / "account" / "examples" / "grpc_client.py"
    command = [sys.executable, str(example), "--address", server["grpc"], "--insecure", "--timeout", "30"]
    command += ["certificate", "--owner-pid", OWNER, "--pdf", "--out", str(tmp_path / "out")]
    command += [arg for rid in VECTOR_IDS for arg in ("--reduction-id", rid)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    printed = json.loads(run.stdout)
    saved = tmp_path / "out" / printed["json_filename"]
    assert saved.read_bytes() == canonical_bytes(VECTOR)
    assert (tmp_path / "out" / printed["pdf_filename"]).read_bytes() == FAKE_PDF
    assert verify(saved.read_text(encoding="utf-8"))["verdict"] == "VALID"


def test_many_calls_at_once_each_get_their_own_answer(grpc_process, bridge, accounts):
    """Twelve calls in flight together on the server's handler threads: one reply consumer
    hands each answer (returned out of order) to the thread waiting for its correlation id."""
    server = grpc_process(AMQP_URI=bridge, BRIDGE_RPC_MAX_CONCURRENT="16")
    owners = [f"pid-c-{n}" for n in range(12)]
    # one OS thread (tpool) and channel per call: grpc futures in this eventlet process would
    # be driven one at a time by whoever waits on them
    pool = eventlet.GreenPool(len(owners))
    results = list(pool.imap(lambda o: ask(server["grpc"], owner_pid=o, reduction_ids=[f"red-{o}"]), owners))
    assert [(code, details) for code, details, _ in results] == [(grpc.StatusCode.OK, "")] * len(owners)
    answers = [answer for _, _, answer in results]
    assert [a.owner_pid for a in answers] == owners
    assert [json.loads(a.certificate_json)["owner_pid"] for a in answers] == owners
    assert all(a.digest == gm.sm3_hex(a.certificate_json.encode()) for a in answers)
    assert sorted(Stage.calls) == sorted((o, [f"red-{o}"]) for o in owners)
    assert Stage.most_in_flight > 1  # they were at the bridge together


def test_without_reduction_ids_the_accounts_consumed_credits_are_asked_about(grpc_process, bridge, ops, make_reduction):
    """Redemptions consume credits oldest first: 350 g take the 100 g and 200 g credits whole
    and 50 g of the 300 g one, so only the first two can have reached the exchange."""
    credits = [make_reduction(user_pid="pid-fifo", grams=g) for g in (100, 200, 300)]
    for reduction in credits:
        ops.credit(reduction)
    ops.redeem(ledger.account_id_for("pid-fifo"), 350, "fifo-1", "tea")
    server = grpc_process(AMQP_URI=bridge)
    code, details, answer = ask(server["grpc"], owner_pid="pid-fifo", reduction_ids=[])
    assert code == grpc.StatusCode.OK, details
    assert Stage.calls == [("pid-fifo", [credits[0]["reduction_id"], credits[1]["reduction_id"]])]
    assert answer.owner_pid == "pid-fifo"


def test_the_bridges_refusals_and_faults_have_their_codes(grpc_process, bridge, accounts):
    server = grpc_process(AMQP_URI=bridge)
    expected = {
        "pid-none": (grpc.StatusCode.FAILED_PRECONDITION, "no_retired_units"),
        "pid-rotated": (grpc.StatusCode.FAILED_PRECONDITION, "certificate_unverifiable"),
        "pid-registry-down": (grpc.StatusCode.UNAVAILABLE, "registry_unavailable"),
        "pid-broken": (grpc.StatusCode.INTERNAL, "internal_error"),
    }
    got = {}
    for owner in expected:
        code, details, _ = ask(server["grpc"], owner_pid=owner)
        got[owner] = (code, details.partition(":")[0])
        assert len(details) < 300 and owner not in details
    assert got == expected
    assert "exchange_bridge raised KeyError" in server["log"].read_text()  # the fault is logged, by type


def test_a_bridge_that_does_not_answer_in_time_and_too_many_waiting(grpc_process, bridge, accounts):
    server = grpc_process(AMQP_URI=bridge, BRIDGE_RPC_TIMEOUT_SECONDS="1", BRIDGE_RPC_MAX_CONCURRENT="1")
    Stage.held["pid-slow"] = Event()
    code, details, _ = ask(server["grpc"], owner_pid="pid-slow")
    assert (code, details.partition(":")[0]) == (grpc.StatusCode.DEADLINE_EXCEEDED, "bridge_timeout")

    # one call waits on the bridge (its only slot): a second is refused at once, not queued
    Stage.held["pid-held"] = Event()
    server = grpc_process(AMQP_URI=bridge, BRIDGE_RPC_TIMEOUT_SECONDS="10", BRIDGE_RPC_MAX_CONCURRENT="1")
    first = eventlet.spawn(ask, server["grpc"], owner_pid="pid-held", reduction_ids=["r1"])
    wait_until(lambda: ("pid-held", ["r1"]) in Stage.calls, 10, message="the first call at the bridge")
    code, details, _ = ask(server["grpc"])
    assert (code, details.partition(":")[0]) == (grpc.StatusCode.UNAVAILABLE, "bridge_busy")
    Stage.held["pid-held"].send(True)
    code, details, answer = first.wait()
    assert code == grpc.StatusCode.OK and answer.owner_pid == "pid-held", details
    code, details, _ = ask(server["grpc"])  # the slot is free again
    assert code == grpc.StatusCode.OK, details


def test_the_trace_context_travels_and_nothing_personal_in_headers(grpc_process, bridge, accounts):
    server = grpc_process(AMQP_URI=bridge)
    connection, drain = request_copies(bridge)
    try:
        code, details, _ = ask(server["grpc"], metadata=[("traceparent", TRACEPARENT)])
        assert code == grpc.StatusCode.OK, details
        [(properties, headers, body)] = wait_until(drain, 10, message="a copy of the request")
    finally:
        connection.release()
    assert set(headers) <= {"nameko.traceparent", "nameko.tracestate"}
    assert headers["nameko.traceparent"].split("-")[1] == TRACE_ID  # a child of the caller's trace
    assert not any(OWNER in str(value) for value in [*headers.values(), *properties.values()])
    assert body == {"args": [OWNER, VECTOR_IDS, False], "kwargs": {}}  # format json: no PDF asked for
    assert properties["reply_to"] and properties["correlation_id"]
    assert properties["delivery_mode"] == 1 and 0 < int(properties["expiration"]) <= 30_000


def reply_connections(amqp_uri: str, api_uri: str) -> list[str]:
    """Names (RabbitMQ's) of the gRPC server's reply connections in the test's vhost."""
    vhost = urllib.parse.urlparse(amqp_uri).path.lstrip("/")
    found = requests.get(
        f"{api_uri.rstrip('/')}/api/vhosts/{urllib.parse.quote(vhost, safe='')}/connections", timeout=5
    )
    found.raise_for_status()
    return [
        c["name"]
        for c in found.json()
        if c.get("client_properties", {}).get("connection_name") == "account-grpc: exchange_bridge RPC replies"
    ]


def test_a_lost_reply_connection_fails_the_waiting_call_and_the_next_one_reconnects(
    grpc_process, bridge, accounts, request
):
    api_uri = request.config.getoption("RABBIT_API_URI")
    server = grpc_process(AMQP_URI=bridge)
    code, details, _ = ask(server["grpc"])
    assert code == grpc.StatusCode.OK, details
    [first] = wait_until(lambda: reply_connections(bridge, api_uri), 10, message="the reply connection listed")

    Stage.held["pid-held"] = Event()
    waiting = eventlet.spawn(ask, server["grpc"], owner_pid="pid-held", reduction_ids=["r1"])
    wait_until(lambda: ("pid-held", ["r1"]) in Stage.calls, 10, message="the call at the bridge")
    closed = requests.delete(
        f"{api_uri.rstrip('/')}/api/connections/{urllib.parse.quote(first, safe='')}",
        headers={"X-Reason": "test: a broker that closes the connection"},
        timeout=5,
    )
    assert closed.status_code in (200, 204), closed.text
    code, details, _ = waiting.wait()  # at once, not after the 30 s timeout
    assert (code, details.partition(":")[0]) == (grpc.StatusCode.UNAVAILABLE, "bridge_unavailable")
    Stage.held["pid-held"].send(True)

    code, details, answer = ask(server["grpc"])  # a new reply connection and queue
    assert code == grpc.StatusCode.OK and answer.owner_pid == OWNER, details
    assert first not in reply_connections(bridge, api_uri)


def test_no_bridge_queue_is_unavailable_at_once(grpc_process, rabbit_config, ops):
    """A vhost where no exchange_bridge ever started: the mandatory request has no route."""
    ops.open_account(OWNER)
    server = grpc_process(AMQP_URI=rabbit_config["AMQP_URI"])
    code, details, _ = ask(server["grpc"], timeout=10)
    assert (code, details.partition(":")[0]) == (grpc.StatusCode.UNAVAILABLE, "bridge_unavailable")


def test_rabbitmq_down_or_not_configured_leaves_every_other_method_served(grpc_process, ops):
    ops.open_account(OWNER)
    down = grpc_process(AMQP_URI=f"pyamqp://guest:guest@127.0.0.1:{free_port()}/")  # nothing listens
    unset = grpc_process(AMQP_URI="")
    for server, error in ((down, "bridge_unavailable"), (unset, "bridge_not_configured")):
        code, details, _ = ask(server["grpc"], timeout=15)
        assert (code, details.partition(":")[0]) == (grpc.StatusCode.UNAVAILABLE, error)
        balance = call(server["grpc"], lambda ch: pb_grpc.AccountServiceStub(ch).GetBalance(
            pb.AccountRef(owner_pid=OWNER), timeout=5
        ))  # fmt: skip
        assert balance.account_id == ledger.account_id_for(OWNER)
