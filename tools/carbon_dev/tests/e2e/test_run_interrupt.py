"""Ctrl-C on `make run` stops what that run started and nothing else: with RabbitMQ, FerretDB and
Jaeger already up (started by `make test`, `make bench`, another engineer …), the same server
processes still answer afterwards, while the run's own platform instance is gone.

The runs use an instance of their own ("runstop": vhost carbon_runstop, databases
carbon_runstop_*, ports +5000), reset before and after, so they disturb nobody on the shared
servers. Ctrl-C is what a terminal sends: SIGINT to the whole foreground process group.
"""

import os
import signal
import subprocess
import sys

import pytest

from carbon_dev.instance import Instance
from carbon_dev.processes import ROOT
from carbon_dev.supervision import alive
from carbon_dev.testing import listening, pid_on_port, wait_until

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
