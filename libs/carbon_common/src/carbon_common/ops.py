"""Operational entrypoints every nameko service has: RPC `ping`, GET /healthz, /health, /metrics.

GET /healthz is liveness: it checks only the process. It answers 200 while the eventlet hub
serves requests; a blocked hub (a call that never yields) leaves the request unanswered and
the kubelet restarts the pod. No dependency is consulted, so a MongoDB or RabbitMQ outage
never restarts the fleet.

GET /health is readiness: 200 only when the service's MongoDB database answers a ping and
RabbitMQ accepts a connection and still has every queue this service consumes from (passive
declare). Each check is bounded (CHECK_TIMEOUT_S) so the answer comes before the probe's
timeout; 503 names the failing check.

The three HTTP endpoints are answered in the web server's own green thread, not by a service
worker: a backlog that keeps all `max_workers` busy, or handlers stuck on an outage, never
delays a probe or a scrape, and probes produce no spans.
"""

import json
import logging
import time

import eventlet
import pymongo
from kombu import Connection
from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from carbon_common import metrics, topology
from carbon_common.mongo import MongoDatabase

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 2.0


def refresh_queue_depths(amqp_uri: str, service: str) -> None:
    """Depth of this service's handler, retry and dead-letter queues, and of carbon.unrouted
    (events no queue was bound for), read at scrape time. When the broker does not answer,
    the series are dropped rather than left at stale values."""
    series = [
        (queue.name, kind)
        for route in topology.ROUTES
        if route.service == service
        for queue, kind in topology.route_queues(route)
    ]
    series.append((topology.UNROUTED_QUEUE, "unrouted"))
    try:
        with Connection(amqp_uri, connect_timeout=2) as conn:
            channel = conn.channel()
            for name, kind in series:
                _, count, _ = channel.queue_declare(queue=name, passive=True)
                metrics.QUEUE_DEPTH.labels(name, kind).set(count)
    except Exception as exc:  # a scrape must not fail because the broker blinked
        log.warning("queue depth unavailable", extra={"error": repr(exc)})
        for name, kind in series:
            try:
                metrics.QUEUE_DEPTH.remove(name, kind)
            except KeyError:
                pass


def _consumed_queues(container) -> list[str]:
    """Durable queues the container's entrypoints consume from (event handlers)."""
    names = set()
    for entrypoint in container.entrypoints:
        for queue in getattr(entrypoint, "queues", None) or [getattr(entrypoint, "queue", None)]:
            if queue is not None and getattr(queue, "durable", False) and getattr(queue, "name", ""):
                names.add(queue.name)
    return sorted(names)


def _check_mongo(container) -> None:
    databases = {
        id(p.database): p.database
        for p in container.dependencies
        if isinstance(p, MongoDatabase) and getattr(p, "database", None) is not None
    }
    with pymongo.timeout(CHECK_TIMEOUT_S):
        for database in databases.values():
            database.command("ping")


def _check_amqp(container) -> None:
    with Connection(container.config["AMQP_URI"], connect_timeout=CHECK_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_S)  # one attempt, no back-off
        channel = conn.channel()
        for name in _consumed_queues(container):
            channel.queue_declare(queue=name, passive=True)


def _run(name, check, container) -> tuple[str, str]:
    try:
        check(container)
        return name, "ok"
    except Exception as exc:  # a health endpoint reports, never raises
        return name, f"unavailable: {type(exc).__name__}"


def readiness(container) -> tuple[int, dict]:
    pile = eventlet.GreenPile()  # both checks at once: the answer stays within one CHECK_TIMEOUT_S
    for name, check in (("mongo", _check_mongo), ("amqp", _check_amqp)):
        pile.spawn(_run, name, check, container)
    checks = dict(pile)
    ok = all(v == "ok" for v in checks.values())
    return (200 if ok else 503), {
        "service": container.service_name,
        "status": "ok" if ok else "unavailable",
        "checks": checks,
    }


_STARTED = time.monotonic()


def liveness(container) -> tuple[int, dict]:
    return 200, {"service": container.service_name, "status": "ok", "uptime_s": round(time.monotonic() - _STARTED, 1)}


class DirectHttp(HttpRequestHandler):
    """A GET entrypoint whose `answer(container)` runs in the web server's green thread,
    without a worker (no dependency injection, no worker pool slot, no span)."""

    def __init__(self, url, answer, **kwargs):
        self.answer = answer
        super().__init__("GET", url, **kwargs)

    def handle_request(self, request):
        try:
            result = self.answer(self.container)
        except Exception as exc:  # noqa: BLE001 - an operations endpoint answers 500, never hangs
            log.exception("operations endpoint failed", extra={"path": self.url})
            return Response(
                json.dumps({"status": "error", "error": type(exc).__name__}), status=500, mimetype="application/json"
            )
        if isinstance(result, Response):
            return result
        status, body = result
        return Response(json.dumps(body), status=status, mimetype="application/json")


def _metrics(container):
    refresh_queue_depths(container.config["AMQP_URI"], container.service_name)
    payload, content_type = metrics.exposition()
    return Response(payload, mimetype=content_type.split(";")[0], content_type=content_type)


class OperationsMixin:
    """Mix into a nameko service class that has a `db` (pymongo Database) dependency.

    Import the module (`from carbon_common import ops`), not the class: `nameko run <module>`
    treats every class with entrypoints in the module namespace as a service to run.
    """

    config = Config()

    @rpc
    def ping(self):
        return {"service": self.name, "status": "ok"}

    @DirectHttp.decorator("/healthz", answer=liveness)
    def healthz(self, request):
        """Liveness: answered by the entrypoint itself (`liveness`), never by a worker."""

    @DirectHttp.decorator("/health", answer=readiness)
    def health(self, request):
        """Readiness: answered by the entrypoint itself (`readiness`), never by a worker."""

    @DirectHttp.decorator("/metrics", answer=_metrics)
    def metrics(self, request):
        """Prometheus exposition: answered by the entrypoint itself, never by a worker."""
