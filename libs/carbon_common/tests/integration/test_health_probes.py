"""Liveness checks only the process, readiness checks the dependencies: against real servers.

A MongoDB outage is made without touching the shared FerretDB: the processes reach it through
a TCP forwarder (a child process) that the test kills and restarts on the same port. Probe
paths are read from the Helm chart's values, so what is tested here is what the kubelet calls.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from functools import partial
from pathlib import Path

import eventlet
import pytest
import yaml
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy

from carbon_common import gm, ops, topology
from carbon_common.mongo import MongoDatabase, client
from carbon_common.ops_http import serve_ops
from carbon_dev.testing import TEST_MONGO_URI, free_port, wait_until

ROOT = Path(__file__).resolve().parents[4]
CHART_VALUES = ROOT / "charts" / "carbon-platform" / "values.yaml"
PROBE_TIMEOUT_S = 3.0  # the chart's probes.*.timeoutSeconds
MONGO_TARGET = urllib.parse.urlsplit(TEST_MONGO_URI).netloc.rsplit("@", 1)[-1]

FORWARDER = r"""
import asyncio, sys
port, host, target_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def serve(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection(host, target_port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", port, reuse_address=True)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


class MongoLink:
    """A TCP forwarder to MongoDB that can be cut (every connection drops, new ones are
    refused) and restored on the same port: a database outage seen from the processes."""

    def __init__(self):
        self.port = free_port()
        self.host, _, target_port = MONGO_TARGET.rpartition(":")
        self.target_port = int(target_port or 27017)
        self.process = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false"

    def up(self):
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORWARDER, str(self.port), self.host or "127.0.0.1", str(self.target_port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def down(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def mongo_link():
    link = MongoLink()
    link.up()
    yield link
    link.down()


def get(url: str, timeout: float = PROBE_TIMEOUT_S) -> tuple[int | None, dict, float]:
    """(status, JSON body, seconds) as the kubelet sees it: None when no answer in time."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError:
        return None, {}, time.monotonic() - started
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    return status, body, time.monotonic() - started


# --- a nameko service with the operations mixin, in this process -------------------------

BLOCKER = {"release": None}


class ProbedService(ops.OperationsMixin):
    name = "probed"
    db = MongoDatabase("probed")

    @rpc
    def hold(self):
        """Occupies a worker until the test releases it."""
        BLOCKER["release"].wait()
        return "released"


@pytest.fixture
def nameko_service(container_factory, platform_amqp, mongo_link):
    BLOCKER["release"] = eventlet.event.Event()
    address = f"127.0.0.1:{free_port()}"
    database = f"test_probes_{uuid.uuid4().hex[:8]}"
    config = dict(
        platform_amqp, WEB_SERVER_ADDRESS=address, MONGO_URI=mongo_link.uri, MONGO_DATABASE=database, max_workers=1
    )
    container = container_factory(ProbedService, config)
    container.start()
    yield container, f"http://{address}"
    if not BLOCKER["release"].ready():
        BLOCKER["release"].send(True)
    client(TEST_MONGO_URI).drop_database(database)


def test_nameko_liveness_stays_green_while_mongo_is_down_and_readiness_does_not(nameko_service, mongo_link):
    _, base = nameko_service
    assert get(f"{base}/health")[0] == 200
    mongo_link.down()
    status, body, seconds = get(f"{base}/health")
    assert status == 503 and body["checks"]["mongo"].startswith("unavailable"), body
    assert body["checks"]["amqp"] == "ok"
    assert seconds < PROBE_TIMEOUT_S, f"readiness answered after {seconds:.1f}s, the probe gives up at 3s"
    for _ in range(3):
        status, body, seconds = get(f"{base}/healthz")
        assert status == 200 and body["status"] == "ok", body
        assert seconds < 1.0
    mongo_link.up()
    wait_until(lambda: get(f"{base}/health")[0] == 200, timeout=20, message="readiness back after Mongo returns")


def test_nameko_readiness_checks_the_broker_for_real(nameko_service, monkeypatch):
    """The broker seen by new connections is gone (the running consumer keeps its own)."""
    container, base = nameko_service
    monkeypatch.setitem(container.config, "AMQP_URI", f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    status, body, seconds = get(f"{base}/health")
    assert status == 503 and body["checks"]["amqp"].startswith("unavailable"), body
    assert body["checks"]["mongo"] == "ok" and seconds < PROBE_TIMEOUT_S
    assert get(f"{base}/healthz")[0] == 200


def test_nameko_probes_answer_while_every_worker_is_busy(nameko_service, platform_amqp):
    """max_workers=1 and that worker is held: the probes and /metrics do not queue behind it."""
    container, base = nameko_service
    with ServiceRpcProxy("probed", platform_amqp) as proxy:
        reply = proxy.hold.call_async()
        wait_until(lambda: len(container._worker_threads) == 1, timeout=10, message="the only worker is busy")
        for path, expected in (("/healthz", 200), ("/health", 200)):
            status, _, seconds = get(f"{base}{path}")
            assert (status, seconds < 1.5) == (expected, True), (path, status, seconds)
        with urllib.request.urlopen(f"{base}/metrics", timeout=PROBE_TIMEOUT_S) as response:
            exposition = response.read().decode()
        assert f'carbon_queue_messages{{kind="unrouted",queue="{topology.UNROUTED_QUEUE}"}}' in exposition
        BLOCKER["release"].send(True)
        assert reply.result() == "released"


# --- a plain process's operations server ---------------------------------------------------


def test_ops_http_liveness_is_the_process_and_readiness_is_bounded(mongo_link):
    database = client(mongo_link.uri)["test_probes_ops_http"]
    address = f"127.0.0.1:{free_port()}"
    server = serve_ops(address, {"mongo": lambda: database.command("ping"), "slow": lambda: time.sleep(30)})
    try:
        mongo_link.down()
        status, body, seconds = get(f"http://{address}/health")
        assert status == 503 and seconds < PROBE_TIMEOUT_S, (status, seconds)
        assert body["checks"]["slow"] == "unavailable: timeout"
        assert body["checks"]["mongo"].startswith("unavailable")
        status, body, _ = get(f"http://{address}/healthz")
        assert status == 200 and body["status"] == "ok"
    finally:
        server.shutdown()


# --- every component of the chart, as real processes ----------------------------------------


def _chart_probes() -> dict:
    """component -> {"liveness": (port name, path), "readiness": …} from the chart's values."""
    components = yaml.safe_load(CHART_VALUES.read_text())["components"]
    out = {}
    for name, component in components.items():
        probes = component["probes"]
        out[name] = {
            kind: (probes[kind]["httpGet"]["port"], probes[kind]["httpGet"]["path"])
            for kind in ("liveness", "readiness")
        }
    return out


def _spawn(command: str, env: dict, log_path):
    """A platform process in its own session, its output in `log_path`."""
    with open(log_path, "w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            shlex.split(command),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _platform_processes(amqp_uri: str, mongo_uri: str, database_prefix: str, monkeypatch) -> list:
    """`make run`'s processes (carbon_dev.devstack), on free ports, against the given
    broker vhost and Mongo link, with throwaway keys and databases, without the dev-only exchange
    registry (one /health: it has no liveness apart from readiness to test)."""
    from carbon_dev import devstack

    keys = devstack.fresh_secrets()
    monkeypatch.setattr(devstack.Instance, "secrets", lambda self: keys)
    instance = devstack.Instance("probes")
    processes = []
    for process in instance.processes():
        if process.name == "exchange-registry":
            continue
        command, env = process.command, dict(process.env)
        argv = shlex.split(command)
        addresses = [v for k, v in env.items() if k.endswith("_ADDRESS")]
        addresses += [argv[argv.index("--bind") + 1]] if "--bind" in argv else []
        for old in addresses:  # `make run`'s fixed ports may be taken: free ones instead
            new = f"127.0.0.1:{free_port()}"
            command, process.address = command.replace(old, new), process.address.replace(old, new)
            env = {k: v.replace(old, new) for k, v in env.items()}
        env.update(
            AMQP_URI=amqp_uri,
            MONGO_URI=mongo_uri,
            OTEL_SDK_DISABLED="true",
            LOG_LEVEL="WARNING",
            MONGO_DATABASE=env["MONGO_DATABASE"].replace("carbon_probes_", database_prefix),
            # one gunicorn worker: ready then means every worker has booted
            INGEST_WORKERS="1",
        )
        http = process.address if process.address.startswith("http") else f"http://{env['METRICS_ADDRESS']}"
        processes.append((process.name, command, env, http))
    return processes


ENVIRONMENTS = {}  # component -> environment of the process the `platform` fixture started


@pytest.fixture
def platform(platform_amqp, mongo_link, monkeypatch, tmp_path):
    prefix = f"test_probes_{uuid.uuid4().hex[:6]}_"
    started = []
    for name, command, env, http in _platform_processes(platform_amqp["AMQP_URI"], mongo_link.uri, prefix, monkeypatch):
        child = _spawn(command, env, tmp_path / f"{name}.log")
        started.append((name, child, http, tmp_path / f"{name}.log"))
        ENVIRONMENTS[name] = env
    yield started
    for _, child, _, _ in started:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    for _, child, _, _ in started:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    for name in client(TEST_MONGO_URI).list_database_names():
        if name.startswith(prefix):
            client(TEST_MONGO_URI).drop_database(name)


def test_every_component_stays_live_but_unready_while_mongo_is_down(platform, mongo_link):
    probes = _chart_probes()
    urls = {name: {kind: f"{http}{path}" for kind, (_, path) in probes[name].items()} for name, _, http, _ in platform}

    def ready(name):
        child, log = next((c, lg) for n, c, _, lg in platform if n == name)
        assert child.poll() is None, (
            f"{name} exited (MongoDB link on port {mongo_link.port} "
            f"{'up' if mongo_link.process.poll() is None else 'dead'}):\n"
            f"{log.read_text()[-3000:]}"
        )
        return get(urls[name]["readiness"])[0] == 200

    def unready(url):  # 503, or no answer within the probe's timeout: both fail the kubelet's probe
        return get(url)[0] in (503, None)

    for name in urls:
        wait_until(partial(ready, name), timeout=90, interval=0.5, message=f"{name} ready")

    mongo_link.down()
    for name in urls:  # readiness goes red…
        wait_until(
            partial(unready, urls[name]["readiness"]),
            timeout=15,
            interval=0.5,
            message=f"{name} readiness failing with MongoDB down",
        )
    for round_ in range(3):  # …while liveness stays green, answering within the probe's timeout
        for name in urls:
            status, body, seconds = get(urls[name]["liveness"])
            assert status == 200, (name, round_, status, body)
            assert seconds < PROBE_TIMEOUT_S, (name, seconds)
        time.sleep(2)
    for name, child, _, log in platform:
        assert child.poll() is None, f"{name} exited during the outage:\n{log.read_text()[-3000:]}"

    mongo_link.up()
    for name in urls:
        wait_until(partial(ready, name), timeout=60, interval=0.5, message=f"{name} ready again after MongoDB")


def test_an_ingest_worker_booting_during_a_mongo_outage_does_not_take_ingest_down(
    platform_amqp, mongo_link, monkeypatch, tmp_path
):
    [(_, command, env, http)] = [
        p
        for p in _platform_processes(
            platform_amqp["AMQP_URI"], mongo_link.uri, f"test_probes_{uuid.uuid4().hex[:6]}_", monkeypatch
        )
        if p[0] == "ingest"
    ]
    log = tmp_path / "ingest.log"
    master = _spawn(command, env, log)
    try:
        wait_until(lambda: get(f"{http}/readyz")[0] == 200, timeout=60, interval=0.5, message="ingest ready")
        mongo_link.down()
        os.kill(master.pid, signal.SIGTTIN)  # gunicorn boots one more worker, as after a worker restart
        deadline = time.monotonic() + 12  # longer than the 5 s server selection of the new worker
        while time.monotonic() < deadline:
            assert master.poll() is None, f"gunicorn exited:\n{log.read_text()[-1500:]}"
            assert get(f"{http}/healthz")[0] == 200
            time.sleep(1)
    finally:
        if master.poll() is None:
            os.killpg(master.pid, signal.SIGTERM)
            master.wait(15)


# --- the chart's `helm test` Pods, run against the real processes -------------------------------


def _helm_test_pods(values: str) -> list[dict]:
    helm = ROOT / ".deps" / "bin" / "helm"
    if not helm.is_file():
        pytest.fail("helm not found in .deps/bin: run `make setup`", pytrace=False)
    result = subprocess.run(
        [
            str(helm),
            "template",
            "carbon-platform",
            str(CHART_VALUES.parent),
            "--namespace",
            "carbon",
            "--kube-version",
            "1.33.0",
            "--show-only",
            "templates/tests/tests.yaml",
            "--set-json",
            values,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _run_pod_script(pod: dict, env: dict) -> subprocess.CompletedProcess:
    """The test Pod's container command, here, with the Pod's environment rewritten to local addresses."""
    container = pod["spec"]["containers"][0]
    assert container["command"][:2] == ["python", "-c"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AMQP", "MONGO"))}
    return subprocess.run(
        [sys.executable, "-c", container["command"][2]],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_helm_test_pods_pass_against_the_running_platform(platform):
    def up(child, http):
        assert child.poll() is None, "exited"
        return get(f"{http}/healthz")[0] == 200

    for name, child, http, _ in platform:
        wait_until(partial(up, child, http), timeout=90, interval=0.5, message=f"{name} up")
    locals_ = {
        f"http://carbon-platform-{name}:{port}": http for name, _, http, _ in platform for port in (8000, 8080, 8081)
    }
    partner_key = gm.generate_sm2_keypair()
    pods = _helm_test_pods(
        'tests.signedRequest={"enabled": true, "partnerId": "helm-test-metro", "keyId": "helm-test-2026"}'
    )
    health = [p for p in pods if p["spec"]["containers"][0]["name"] == "health"]
    assert len(health) == len(platform)
    for pod in health:
        urls = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}["TEST_URLS"].split()
        local = " ".join(
            next(local + url[len(remote) :] for remote, local in locals_.items() if url.startswith(remote + "/"))
            for url in urls
        )
        result = _run_pod_script(pod, {"TEST_URLS": local})
        assert result.returncode == 0, (pod["metadata"]["name"], result.stdout, result.stderr)
        assert result.stdout.count(" 200 ") == 2, result.stdout

    ingest = next(http for name, _, http, _ in platform if name == "ingest")
    register = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest.cli.admin",
            "--base-url",
            ingest,
            "--token",
            ENVIRONMENTS["ingest"]["ADMIN_TOKEN"],
            "register",
            "helm-test-metro",
            "helm test",
            "--scenario",
            "metro_ride",
            "--key",
            f"helm-test-2026={partner_key[1]}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert register.returncode == 0, register.stdout + register.stderr
    [signed] = [p for p in pods if p["spec"]["containers"][0]["name"] == "signed-request"]
    env = {e["name"]: e.get("value") for e in signed["spec"]["containers"][0]["env"]}
    env.update(INGEST_URL=ingest, PARTNER_SM2_PRIVATE_KEY=partner_key[0])
    result = _run_pod_script(signed, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rejected 1" in result.stdout and "consent_required" in result.stdout, result.stdout
    # a key the platform does not know: the request itself is refused and the test Pod fails
    result = _run_pod_script(signed, {**env, "PARTNER_SM2_PRIVATE_KEY": gm.generate_sm2_keypair()[0]})
    assert result.returncode != 0 and "batch refused: 401" in result.stderr, result.stdout + result.stderr
