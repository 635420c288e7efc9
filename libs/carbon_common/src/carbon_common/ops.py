"""Operational entrypoints every nameko service has: RPC `ping`, GET /health, GET /metrics.

/health is readiness: it answers 200 only when the service's own database responds; the AMQP
connection is implied (the RPC and event consumers would not have started otherwise).
"""
import json
import logging

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from carbon_common import metrics, topology

log = logging.getLogger(__name__)


def refresh_queue_depths(amqp_uri: str, service: str) -> None:
    """Depth of this service's handler, retry and dead-letter queues, read at scrape time."""
    try:
        with Connection(amqp_uri, connect_timeout=2) as conn:
            channel = conn.channel()
            for route in topology.ROUTES:
                if route.service != service:
                    continue
                for kind, queue in (("main", topology.handler_queue(route)),
                                    ("retry", topology.retry_queue(route)),
                                    ("dlq", topology.dead_letter_queue(route))):
                    _, count, _ = channel.queue_declare(queue=queue.name, passive=True)
                    metrics.QUEUE_DEPTH.labels(queue.name, kind).set(count)
    except Exception as exc:  # a scrape must not fail because the broker blinked
        log.warning("queue depth unavailable", extra={"error": repr(exc)})


class OperationsMixin:
    """Mix into a nameko service class that has a `db` (pymongo Database) dependency.

    Import the module (`from carbon_common import ops`), not the class: `nameko run <module>`
    treats every class with entrypoints in the module namespace as a service to run.
    """

    config = Config()

    @rpc
    def ping(self):
        return {"service": self.name, "status": "ok"}

    @http("GET", "/health")
    def health(self, request):
        checks = {"amqp": "ok"}
        status = 200
        try:
            self.db.command("ping")
            checks["mongo"] = "ok"
        except Exception as exc:
            checks["mongo"] = f"error: {type(exc).__name__}"
            status = 503
        body = {"service": self.name, "status": "ok" if status == 200 else "unavailable", "checks": checks}
        return Response(json.dumps(body), status=status, mimetype="application/json")

    @http("GET", "/metrics")
    def metrics(self, request):
        refresh_queue_depths(self.config["AMQP_URI"], self.name)
        payload, content_type = metrics.exposition()
        return Response(payload, mimetype=content_type.split(";")[0], content_type=content_type)
