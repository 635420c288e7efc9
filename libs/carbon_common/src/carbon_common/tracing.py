"""Server/consumer spans for nameko workers, continued from the W3C context in AMQP headers.

Decision (docs/telemetry.md): a per-record event (behaviour_received, reduction_calculated,
account_*) is processed in a CHILD span of its publisher, so one partner record is one trace
from the HTTP request to the ledger. RPC calls are children. Timers and health/metrics HTTP get
no span here: the bridge's timer run, for one, starts traces of its own, not linked to the
records' traces (account RPC does not expose the traceparent stored with each entry).
"""

import time

from nameko.events import EventHandler
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind

from carbon_common import attributes, metrics
from carbon_common.handlers import ATTEMPT_KEY
from carbon_common.logs import configure_logging
from carbon_common.telemetry import extract_context, setup_telemetry, tracer


class Tracing(DependencyProvider):
    """Also sets up JSON logs and OpenTelemetry once per process, before the first worker."""

    def setup(self):
        configure_logging(self.container.service_name)
        setup_telemetry(self.container.service_name)

    def worker_setup(self, worker_ctx):
        entrypoint = worker_ctx.entrypoint
        service = worker_ctx.service_name
        if isinstance(entrypoint, EventHandler):
            queue = getattr(getattr(entrypoint, "queue", None), "name", entrypoint.method_name)
            name, kind = f"process {queue}", SpanKind.CONSUMER
            attrs = {
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.destination.name": f"{entrypoint.source_service}.events",
                "messaging.rabbitmq.destination.routing_key": entrypoint.event_type,
                "messaging.consumer.group.name": queue,
                attributes.EVENT_TYPE: entrypoint.event_type,
            }
            attempt = worker_ctx.data.pop(ATTEMPT_KEY, None)
            if attempt:
                attrs[attributes.DELIVERY_ATTEMPT] = attempt
            envelope = worker_ctx.args[0] if worker_ctx.args else None
            if isinstance(envelope, dict) and "event_id" in envelope:
                attrs["messaging.message.id"] = envelope["event_id"]
                attrs[attributes.EVENT_ID] = envelope["event_id"]
                attrs.update(attributes.from_payload(envelope.get("data")))
        elif isinstance(entrypoint, Rpc):
            name, kind = f"{service}/{entrypoint.method_name}", SpanKind.SERVER
            attrs = {"rpc.system": "nameko", "rpc.service": service, "rpc.method": entrypoint.method_name}
        else:  # health/metrics HTTP and timers: not worth a trace each
            return
        span = tracer().start_span(name, context=extract_context(worker_ctx.data), kind=kind, attributes=attrs)
        token = context.attach(trace.set_span_in_context(span))
        carrier = {}
        propagate.inject(carrier)  # outgoing RPC/events from this worker continue this span
        worker_ctx.data.update(carrier)
        worker_ctx.__dict__["_carbon_span"] = (span, token, time.perf_counter())

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        held = worker_ctx.__dict__.get("_carbon_span")
        if not held:
            return
        if exc_info is not None:
            held[0].record_exception(exc_info[1])
            held[0].set_status(trace.Status(trace.StatusCode.ERROR, exc_info[0].__name__))
        entrypoint = worker_ctx.entrypoint
        if isinstance(entrypoint, EventHandler):
            metrics.EVENTS_PROCESSED.labels(
                worker_ctx.service_name, entrypoint.event_type, "ok" if exc_info is None else "error"
            ).inc()

    def worker_teardown(self, worker_ctx):
        held = worker_ctx.__dict__.pop("_carbon_span", None)
        if held:
            span, token, started = held
            metrics.HANDLER_SECONDS.labels(worker_ctx.service_name, worker_ctx.entrypoint.method_name).observe(
                time.perf_counter() - started
            )
            span.end()
            context.detach(token)
