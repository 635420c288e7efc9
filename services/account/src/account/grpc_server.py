"""The account gRPC server: `python -m account.grpc_server` (a plain process, no eventlet).

GRPC_ADDRESS (default 127.0.0.1:50051) serves carbon.account.v1.AccountService and the
standard grpc.health.v1.Health (service "" and "carbon.account.v1.AccountService" SERVING once
the database answered). METRICS_ADDRESS (default 127.0.0.1:8103) serves GET /metrics
(Prometheus), GET /health (readiness: 200 when the database answers and the gRPC server
serves) and GET /healthz (liveness: 200 while the gRPC server serves; never the database,
see grpc_liveness). MONGO_URI is required.

Security (docs/grpc.md): TLS from GRPC_TLS_CERT_FILE + GRPC_TLS_KEY_FILE, mutual TLS with
GRPC_TLS_CLIENT_CA_FILE (account.grpc_tls, files re-read on change); callers and their
permissions from GRPC_CALLERS_FILE (account.grpc_callers), checked on every call
(account.grpc_auth). Without TLS or without a callers file the server only starts when it
listens on loopback (a warning is logged) or when GRPC_ALLOW_INSECURE=true;
GRPC_ALLOW_INSECURE=false refuses both even on loopback.
GRPC_HEALTH_ADDRESS (optional) serves grpc.health.v1 alone in plaintext, for probes that
cannot speak TLS (the kubelet's gRPC probe).
AMQP_URI (optional): GetRetirementCertificate calls the exchange bridge's RPC over it
(account.bridge_client), connecting on the first such call, so the server starts and serves
every other method while RabbitMQ is down; unset, that method answers UNAVAILABLE
"bridge_not_configured". BRIDGE_RPC_TIMEOUT_SECONDS (30), BRIDGE_RPC_MAX_CONCURRENT (4).
"""

import ipaddress
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

from account.bridge_client import BridgeClient
from account.dependencies import DATABASE, build_ledger
from account.grpc_api import AccountServicer, UndecodableRequests
from account.grpc_auth import AuthInterceptor, Authoriser, authoriser_from_env
from account.grpc_tls import credentials_from_env
from account.tiers import DEFAULT_THRESHOLDS

log = logging.getLogger("account.grpc_server")
SERVICE_NAME = "carbon.account.v1.AccountService"


def is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(address: str, tls: bool, authenticated: bool, allow_insecure: str) -> list[str]:
    """What is missing (for the start-up warning); SystemExit when that is not allowed here."""
    if allow_insecure not in ("", "true", "false"):
        raise SystemExit(f"GRPC_ALLOW_INSECURE must be true or false, got {allow_insecure!r}")
    missing = ([] if tls else ["TLS (GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE)"]) + (
        [] if authenticated else ["caller authentication (GRPC_CALLERS_FILE)"]
    )
    if missing and (allow_insecure == "false" or (allow_insecure == "" and not is_loopback(address))):
        raise SystemExit(
            f"refusing to serve gRPC on {address} without {' and '.join(missing)}; "
            "configure them, or set GRPC_ALLOW_INSECURE=true for a development set-up"
        )
    return missing


def start_servers(servers: list[grpc.Server]) -> list[threading.Thread]:
    """Start each server; return the threads grpcio started to serve them (one polling loop per
    server: the `_serve` thread of grpc._server), for grpc_liveness to watch."""
    before = set(threading.enumerate())
    for each in servers:
        each.start()
    started = [t for t in threading.enumerate() if t not in before]
    return [t for t in started if t.name.endswith("(_serve)")] or started


def grpc_liveness(server: grpc.Server, serving_threads: list[threading.Thread]):
    """The /healthz check: the gRPC server has not stopped and its serving loop still runs.

    It makes no RPC and touches no dependency: a call through the server would wait in the one
    handler thread pool behind calls blocked on MongoDB, so a database outage under load would
    fail liveness and restart every pod (readiness takes the pod out of the Service instead)."""

    def alive() -> tuple[bool, dict]:
        if not server.wait_for_termination(timeout=0):  # False: terminated
            return False, {"grpc": "stopped"}
        ended = [t.name for t in serving_threads if not t.is_alive()]
        if ended:
            return False, {"grpc": "serving loop ended", "threads": ended}
        return True, {"grpc": "serving"}

    return alive


def readiness_of(liveness):
    """A readiness check (raises) from a liveness callable: an unready pod for a stopped server."""

    def check():
        ok, detail = liveness()
        if not ok:
            raise RuntimeError(detail.get("grpc", "not serving"))

    return check


def serve() -> None:
    configure_logging("account-grpc")
    setup_telemetry("account-grpc")
    require("MONGO_URI")
    address = setting("GRPC_ADDRESS", "127.0.0.1:50051")
    metrics_address = setting("METRICS_ADDRESS", "127.0.0.1:8103")
    tls = credentials_from_env()
    authoriser = authoriser_from_env(mutual_tls=bool(tls and tls.mutual))
    missing = check_exposure(
        address, tls is not None, authoriser is not None, setting("GRPC_ALLOW_INSECURE", "").lower()
    )
    if missing:
        log.warning(
            "account gRPC serving WITHOUT " + " and ".join(missing) + ": development only",
            extra={"grpc_address": address},
        )
    database = connect_database(DATABASE)
    ledger = build_ledger(database, setting("TIER_THRESHOLDS", DEFAULT_THRESHOLDS))

    from opentelemetry.instrumentation.grpc import server_interceptor

    # The tracing interceptor first: the caller check then runs inside the server span; a
    # request that does not parse is refused (INVALID_ARGUMENT) after the caller check.
    open_mode = Authoriser(None)
    auth = AuthInterceptor(authoriser or (lambda: open_mode))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=int_setting("GRPC_MAX_WORKERS", 64)),
        interceptors=[server_interceptor(), auth, UndecodableRequests()],
    )
    bridge = BridgeClient.from_env()  # connects on its first call, not here
    pb_grpc.add_AccountServiceServicer_to_server(AccountServicer(ledger, bridge), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_secure_port(address, tls.server_credentials()) if tls else server.add_insecure_port(address)
    if bound == 0:
        raise SystemExit(f"cannot listen on GRPC_ADDRESS {address}")
    servers = [server]
    health_address = setting("GRPC_HEALTH_ADDRESS", "")
    if health_address:
        probe_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, probe_server)
        if probe_server.add_insecure_port(health_address) == 0:
            raise SystemExit(f"cannot listen on GRPC_HEALTH_ADDRESS {health_address}")
        servers.append(probe_server)
    serving_threads = start_servers(servers)
    liveness = grpc_liveness(server, serving_threads)
    http = serve_ops(
        metrics_address, {"mongo": lambda: database.command("ping"), "grpc": readiness_of(liveness)}, liveness
    )
    database.command("ping")
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "account gRPC serving",
        extra={
            "grpc_address": address,
            "metrics_address": metrics_address,
            "health_address": health_address or None,
            "tls": ("mutual" if tls.mutual else "server") if tls else "off",
            "callers": sorted(authoriser().callers) if authoriser else "open",
            "exchange_bridge_rpc": "on first use" if bridge else "off (no AMQP_URI)",
        },
    )

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    for each in servers:
        each.stop(grace=5).wait()
    if bridge is not None:
        bridge.close()
    http.shutdown()


if __name__ == "__main__":
    serve()
