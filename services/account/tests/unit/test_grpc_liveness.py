"""account-grpc liveness (/healthz) follows the gRPC server itself, never MongoDB.

The server runs in a child process (grpcio and this suite's eventlet do not mix): a real
grpc.Server with the health service, started by account.grpc_server.start_servers, and the
ops HTTP endpoints wired as serve() wires them, with a MongoDB check that always fails. The
test drives it over stdin ("stop" stops the gRPC server and nothing else) and polls HTTP.
"""

import json
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request

import pytest

from account.grpc_server import grpc_liveness
from carbon_dev.testing import free_port, wait_until

CHILD = textwrap.dedent("""
    import sys
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2_grpc
    from carbon_common.ops_http import serve_ops
    from account.grpc_server import grpc_liveness, readiness_of, start_servers

    grpc_address, ops_address = sys.argv[1], sys.argv[2]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    assert server.add_insecure_port(grpc_address)
    liveness = grpc_liveness(server, start_servers([server]))

    def mongo_is_down():
        raise ConnectionError("MongoDB unreachable")
    serve_ops(ops_address, {"mongo": mongo_is_down, "grpc": readiness_of(liveness)}, liveness)
    print("started", flush=True)
    for line in sys.stdin:
        if line.strip() == "stop":
            server.stop(grace=None).wait()
            print("stopped", flush=True)
""")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def child():
    grpc_port, ops_port = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{ops_port}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "started", process.stderr.read()
        yield process, f"http://127.0.0.1:{ops_port}"
    finally:
        process.kill()
        process.wait(10)


def test_liveness_is_green_while_mongo_is_down_and_red_once_the_grpc_server_stops(child):
    process, base = child
    status, body = get(f"{base}/healthz")
    assert status == 200 and body["grpc"] == "serving", body
    status, body = get(f"{base}/health")  # readiness still checks MongoDB
    assert status == 503 and body["checks"]["mongo"].startswith("unavailable"), body
    assert body["checks"]["grpc"] == "ok", body

    process.stdin.write("stop\n")
    process.stdin.flush()
    assert process.stdout.readline().strip() == "stopped"
    wait_until(lambda: get(f"{base}/healthz")[0] == 503, timeout=10, message="liveness failing")
    status, body = get(f"{base}/healthz")
    assert body == {**body, "status": "stuck", "grpc": "stopped"}, body
    assert get(f"{base}/health")[1]["checks"]["grpc"].startswith("unavailable"), "readiness too"
    assert process.poll() is None, "the process itself still runs: only the probe can tell"


class RunningServer:
    """Stands in for a grpc.Server that has not terminated (wait_for_termination times out)."""

    def wait_for_termination(self, timeout=None):
        return True


def test_liveness_fails_when_a_serving_loop_thread_has_ended():
    running, ended = threading.Event(), threading.Thread(target=lambda: None, name="Thread-9 (_serve)")
    ended.start()
    ended.join()
    alive = threading.Thread(target=running.wait, name="Thread-8 (_serve)")
    alive.start()
    try:
        assert grpc_liveness(RunningServer(), [alive])() == (True, {"grpc": "serving"})
        ok, detail = grpc_liveness(RunningServer(), [alive, ended])()
        assert not ok and detail == {"grpc": "serving loop ended", "threads": ["Thread-9 (_serve)"]}
    finally:
        running.set()
        alive.join()
