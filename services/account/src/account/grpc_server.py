"""The account gRPC server: `python -m account.grpc_server` (a plain process, no eventlet).

GRPC_ADDRESS (default 127.0.0.1:50051) serves carbon.account.v1.AccountService and the
standard grpc.health.v1.Health (service "" and "carbon.account.v1.AccountService" SERVING once
the database answered). METRICS_ADDRESS (default 127.0.0.1:8103) serves GET /metrics
(Prometheus) and GET /health (200 when the database answers). MONGO_URI is required.
"""
import logging
import signal
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from carbon_common.config import int_setting, require, setting
from carbon_common.logs import configure_logging
from carbon_common.ops_http import serve_ops
from carbon_common.mongo import connect_database
from carbon_common.telemetry import setup_telemetry

from account.dependencies import DATABASE, build_ledger
from account.grpc_api import AccountServicer
from account.tiers import DEFAULT_THRESHOLDS

log = logging.getLogger("account.grpc_server")
SERVICE_NAME = "carbon.account.v1.AccountService"


def serve() -> None:
    configure_logging("account-grpc")
    setup_telemetry("account-grpc")
    require("MONGO_URI")
    address = setting("GRPC_ADDRESS", "127.0.0.1:50051")
    metrics_address = setting("METRICS_ADDRESS", "127.0.0.1:8103")
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
    http = serve_ops(metrics_address, {"mongo": lambda: database.command("ping")})
    server.start()
    database.command("ping")
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("account gRPC serving", extra={"grpc_address": address, "metrics_address": metrics_address})

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
