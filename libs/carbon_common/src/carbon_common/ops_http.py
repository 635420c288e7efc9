"""Operations HTTP endpoints for processes that are not nameko services (the gRPC server,
relays): GET /health (readiness: every named check passes), GET /metrics (Prometheus) and,
when given, GET /healthz (liveness). Runs in a daemon thread; one copy for every such process.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from carbon_common.metrics import exposition

Check = Callable[[], object]          # raises when the dependency is unavailable
Liveness = Callable[[], tuple[bool, dict]]


def run_checks(checks: dict[str, Check]) -> dict[str, str]:
    results = {}
    for name, probe in checks.items():
        try:
            probe()
            results[name] = "ok"
        except Exception as exc:  # a health endpoint reports, never raises
            results[name] = f"unavailable: {type(exc).__name__}"
    return results


def _handler(checks: dict[str, Check], liveness: Liveness | None):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path == "/metrics":
                body, content_type = exposition()
                return self._send(200, body, content_type)
            if self.path == "/health":
                results = run_checks(checks)
                ok = all(v == "ok" for v in results.values())
                return self._json(200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": results})
            if self.path == "/healthz" and liveness is not None:
                alive, detail = liveness()
                return self._json(200 if alive else 503, {"status": "ok" if alive else "stuck", **detail})
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
    server = ThreadingHTTPServer((host, int(port)), _handler(checks, liveness))
    threading.Thread(target=server.serve_forever, name="ops-http", daemon=True).start()
    return server
