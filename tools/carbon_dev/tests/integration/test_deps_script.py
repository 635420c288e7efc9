"""scripts/deps.sh and `make stop` on throwaway dependencies: a FerretDB and a RabbitMQ of the
test's own (other ports, another node name, a data directory under tmp_path), never the shared
servers on 5672/15672/27017/16686/4318, whose pids are checked unchanged after every test.
Waiting is polling with a deadline."""

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from carbon_dev.processes import ROOT
from carbon_dev.supervision import alive
from carbon_dev.testing import free_port, listening, pid_on_port, wait_until

SHARED_PORTS = (5672, 15672, 27017, 16686, 4318)
DEPS_SH = ["bash", str(ROOT / "scripts" / "deps.sh")]


@pytest.fixture(autouse=True)
def shared_servers_untouched():
    before = {port: pid_on_port(port) for port in SHARED_PORTS}
    yield
    after = {port: pid_on_port(port) for port in SHARED_PORTS}
    assert after == before, "a shared server was stopped or restarted"


@pytest.fixture
def throwaway(tmp_path):
    """(env for deps.sh/make naming the throwaway dependencies, their ports); what is still
    running at the end is stopped by pid (found on its port)."""
    rabbit = next(
        p for p in iter(lambda: random.randint(21000, 29000), None) if not listening(p) and not listening(p + 20000)
    )  # + 20000: its distribution port
    env = {
        **os.environ,
        "CARBON_DEPS_DATA": str(tmp_path / "data"),
        "CARBON_FERRET_PORT": str(free_port()),
        "CARBON_FERRET_DEBUG_PORT": str(free_port()),
        "CARBON_RABBIT_PORT": str(rabbit),
        "CARBON_RABBIT_UI_PORT": str(free_port()),
        "CARBON_RABBIT_NODE": f"carbon-test-{uuid.uuid4().hex[:8]}",
        "CARBON_INSTANCE": f"nothing-{uuid.uuid4().hex[:8]}",
    }  # `make stop`: no platform instance of that name
    for name in ("CARBON_DEPS_OWNER", "CARBON_DEPS_STARTED_BY", "CARBON_DEPS", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    ports = {"ferretdb": int(env["CARBON_FERRET_PORT"]), "rabbitmq": rabbit}
    yield env, ports
    for port in ports.values():
        pid = pid_on_port(port)
        if pid:
            os.kill(pid, signal.SIGKILL)


def deps(env, *args, deps_only: str, timeout: float = 120, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DEPS_SH, *args],
        env={**env, "CARBON_DEPS": deps_only, **extra},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_stop(env, deps_only: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "stop"],
        env={**env, "CARBON_DEPS": deps_only},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    "dep, label, pid_file, process_name",
    [
        ("ferretdb", "FerretDB", "ferretdb.pid", "ferretdb"),
        # the hang of issue 12: `rabbitmqctl stop <pid file>` waited forever for a missing pid file
        ("rabbitmq", "RabbitMQ", "rabbitmq/rabbit.pid", "beam.smp"),
    ],
)
def test_make_stop_with_the_pid_file_gone_finds_the_process_by_port_within_30_s(
    dep, label, pid_file, process_name, throwaway
):
    env, ports = throwaway
    started = deps(env, "start", deps_only=dep)
    assert started.returncode == 0, started.stdout + started.stderr
    pid = pid_on_port(ports[dep])
    assert pid and open(f"/proc/{pid}/comm").read().strip() == process_name
    assert os.getsid(pid) != os.getsid(0), f"{label} runs in a session of its own (a Ctrl-C of its starter misses it)"
    os.unlink(os.path.join(env["CARBON_DEPS_DATA"], pid_file))

    result, seconds = make_stop(env, dep)

    assert result.returncode == 0, result.stdout + result.stderr
    assert seconds < 30, f"make stop took {seconds:.1f} s"
    assert f"stopping {label} (pid {pid}, found by port {ports[dep]}" in result.stdout
    assert not alive(pid) and not listening(ports[dep])
    print(f"make stop, {label} without pid file: {seconds:.1f} s")


def test_stop_when_nothing_runs_says_so_at_once(throwaway):
    env, ports = throwaway
    result, seconds = make_stop(env, "ferretdb rabbitmq")
    assert result.returncode == 0 and seconds < 10, (seconds, result.stdout + result.stderr)
    assert "FerretDB not running" in result.stdout and "RabbitMQ not running" in result.stdout
    assert f"platform instance {env['CARBON_INSTANCE']} was not running" in result.stdout


def test_a_foreign_process_on_the_port_is_left_alone(throwaway):
    env, ports = throwaway
    squatter = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(ports["ferretdb"])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: listening(ports["ferretdb"]), timeout=10, message="the squatter listens")
        result = deps(env, "stop", deps_only="ferretdb", timeout=30)
        assert result.returncode == 0
        assert "not ferretdb: left alone" in result.stdout + result.stderr
        assert squatter.poll() is None
    finally:
        squatter.kill()
        squatter.wait()


def test_stop_owned_stops_what_its_owner_started_and_nothing_else(throwaway):
    env, ports = throwaway
    started = deps(env, "start", deps_only="ferretdb", CARBON_DEPS_OWNER="run-A", CARBON_DEPS_STARTED_BY="test run A")
    assert started.returncode == 0
    pid = pid_on_port(ports["ferretdb"])
    status = deps(env, "status", deps_only="ferretdb").stdout
    assert re.search(
        rf"FerretDB +127\.0\.0\.1:{ports['ferretdb']} +up +pid {pid} +started by: test run A at ", status
    ), status
    # a second start (another command) finds it running and does not take it over
    assert deps(env, "start", deps_only="ferretdb", CARBON_DEPS_OWNER="run-B").returncode == 0

    other = deps(env, "stop-owned", "run-B", deps_only="ferretdb")
    assert "left running, not started by this run: ferretdb" in other.stdout
    assert alive(pid) and listening(ports["ferretdb"])

    own = deps(env, "stop-owned", "run-A", deps_only="ferretdb")
    assert own.returncode == 0 and "stopping FerretDB" in own.stdout
    assert not alive(pid)
    assert not os.path.exists(os.path.join(env["CARBON_DEPS_DATA"], "ferretdb.owner"))
