"""`devstack stop` (the platform half of `make stop`) is bounded and finds a supervisord whose pid
file and socket are gone by its command line. A real supervisord of a throwaway instance runs
one harmless program; nothing of the shared servers is involved."""

import subprocess
import sys
import time
import uuid

import pytest

from carbon_dev.instance import Instance
from carbon_dev.processes import VENV_BIN, Process
from carbon_dev.supervision import alive
from carbon_dev.testing import wait_until


@pytest.fixture
def instance():
    instance = Instance(f"stoptest-{uuid.uuid4().hex[:8]}")
    yield instance
    pid = instance.supervisord_pid()
    if pid:  # the test failed: do not leave it behind
        subprocess.run(["kill", "-KILL", str(pid)])
    subprocess.run(["rm", "-rf", str(instance.dir)])


def test_stop_finds_supervisord_without_pid_file_or_socket_and_stops_its_programs(instance):
    instance.write_conf([Process("sleeper", f"{sys.executable} -c 'import time; time.sleep(600)'", "")])
    subprocess.run([f"{VENV_BIN}/supervisord", "-c", str(instance.conf)], check=True)
    program = wait_until(lambda: instance.pid("sleeper"), timeout=30, message="the program runs")
    supervisord = instance.supervisord_pid()
    assert supervisord and alive(program)
    (instance.dir / "supervisord.pid").unlink()
    (instance.dir / "supervisor.sock").unlink()
    assert not instance.running()

    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "carbon_dev.devstack", "stop", "--instance", instance.name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert f"SIGTERM to supervisord pid {supervisord}" in result.stdout, result.stdout
    assert seconds < 30
    assert not alive(supervisord) and not alive(program)
    again = subprocess.run(
        [sys.executable, "-m", "carbon_dev.devstack", "stop", "--instance", instance.name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"platform instance {instance.name} was not running" in again.stdout
