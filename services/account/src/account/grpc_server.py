"""The account gRPC server: `python -m account.grpc_server` (a plain process, no eventlet).

GRPC_ADDRESS (default 127.0.0.1:50051) serves carbon.account.v1.AccountService and the
standard grpc.health.v1.Health (service "" and "carbon.account.v1.AccountService" SERVING once
the database answered). METRICS_ADDRESS (default 127.0.0.1:8103) serves GET /metrics
(Prometheus) and GET /health (200 when the database answers). MONGO_URI is required.
"""
import json
import logging
import signal
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from carbon_common.config import int_setting, require, setting
from carbon_common.logs import configure_logging
from carbon_common.metrics import exposition
from carbon_common.mongo import connect_database
from carbon_common.telemetry import setup_telemetry

from account.dependencies import DATABASE, build_ledger
from account.grpc_api import AccountServicer
from account.tiers import DEFAULT_THRESHOLDS

log = logging.getLogger("account.grpc_server")
SERVICE_NAME = "carbon.account.v1.AccountService"


def http_handler(database):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/metrics":
                body, content_type = exposition()
                return self._send(200, body, content_type)
            if self.path == "/health":
                try:
                    database.command("ping")
                    return self._send(200, json.dumps({"status": "ok"}).encode(), "application/json")
                except Exception as exc:
                    return self._send(503, json.dumps({"status": "unavailable", "mongo": type(exc).__name__}).encode(),
                                      "application/json")
            self._send(404, b'{"code":"not_found"}', "application/json")

        def _send(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # access logs stay out of the JSON log stream
            pass
    return Handler


def serve() -> None:
    configure_logging("account-grpc")
    setup_telemetry("account-grpc")
    require("MONGO_URI")
    address = setting("GRPC_ADDRESS", "127.0.0.1:50051")
    metrics_host, _, metrics_port = setting("METRICS_ADDRESS", "127.0.0.1:8103").rpartition(":")
    database = connect_database(DATABASE)
    ledger = build_ledger(database, setting("TIER_THRESHOLDS", DEFAULT_THRESHOLDS))

    from opentelemetry.instrumentation.grpc import server_interceptor
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=int_setting("GRPC_MAX_WORKERS", 16)),
                         interceptors=[server_interceptor()])
    pb_grpc.add_AccountServiceServicer_to_server(AccountServicer(ledger), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"cannot listen on GRPC_ADDRESS {address}")
    http = ThreadingHTTPServer((metrics_host, int(metrics_port)), http_handler(database))
    threading.Thread(target=http.serve_forever, name="metrics-http", daemon=True).start()
    server.start()
    database.command("ping")
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("account gRPC serving", extra={"grpc_address": address, "metrics_address": f"{metrics_host}:{metrics_port}"})

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    server.stop(grace=5).wait()
    http.shutdown()


if __name__ == "__main__":
    serve()
