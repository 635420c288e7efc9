"""Operations HTTP endpoints for processes that are not nameko services (the gRPC server,
relays): GET /health (readiness: every named check passes), GET /healthz (liveness) and
GET /metrics (Prometheus). Runs in a daemon thread; one copy for every such process.

Liveness checks only the process: by default /healthz answers 200 whenever this server
answers; a process passes its own `liveness` callable to also report a stuck main loop. It
never consults a dependency, so a database or broker outage does not restart the pod.
Readiness runs the checks concurrently, each bounded by CHECK_TIMEOUT_S (below the probes'
3 s timeout), and names the failing ones in a 503.
"""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from carbon_common.metrics import exposition

Check = Callable[[], object]  # raises when the dependency is unavailable
Liveness = Callable[[], tuple[bool, dict]]
CHECK_TIMEOUT_S = 2.5


def run_checks(checks: dict[str, Check], timeout: float = CHECK_TIMEOUT_S) -> dict[str, str]:
    """name -> "ok" or "unavailable: <reason>"; a check still running after `timeout` is
    reported as a timeout (its thread is left to finish on its own)."""
    if not checks:
        return {}
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="ops-check")
    futures = {name: pool.submit(probe) for name, probe in checks.items()}
    pool.shutdown(wait=False)
    deadline = time.monotonic() + timeout
    results = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
            results[name] = "ok"
        except FutureTimeout:
            results[name] = "unavailable: timeout"
        except Exception as exc:  # a health endpoint reports, never raises
            results[name] = f"unavailable: {type(exc).__name__}"
    return results


def process_alive() -> tuple[bool, dict]:
    """The default liveness: this server answered, so the process runs and schedules threads."""
    return True, {}


def _handler(checks: dict[str, Check], liveness: Liveness):
    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path == "/metrics":
                body, content_type = exposition()
                return self._send(200, body, content_type)
            if self.path == "/health":
                results = run_checks(checks)
                ok = all(v == "ok" for v in results.values())
                return self._json(200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": results})
            if self.path == "/healthz":
                alive, detail = liveness()
                return self._json(
                    200 if alive else 503,
                    {"status": "ok" if alive else "stuck", "uptime_s": round(time.monotonic() - started, 1), **detail},
                )
            self._json(404, {"code": "not_found"})

        def _json(self, status, document):
            self._send(status, json.dumps(document).encode(), "application/json")

        def _send(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # probes every few seconds would flood the JSON logs
            pass

    return Handler


def serve_ops(address: str, checks: dict[str, Check], liveness: Liveness | None = None) -> ThreadingHTTPServer:
    host, _, port = address.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), _handler(checks, liveness or process_alive))
    threading.Thread(target=server.serve_forever, name="ops-http", daemon=True).start()
    return server
