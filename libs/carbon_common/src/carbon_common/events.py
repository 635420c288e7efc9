"""Publishing platform events: validated envelopes, publisher confirms, trace context.

One publisher for every process: Flask/CLI code uses EventPublisher directly; nameko services
inject it with EventDispatcher. A publish returns only once the broker confirmed the message
to disk (persistent) — so callers may acknowledge upstream only after it returns.
"""
import datetime
import uuid

from kombu import Connection
from kombu.pools import producers
from nameko.extensions import DependencyProvider
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from carbon_common import attributes, topology
from carbon_common.schemas import schema_name, validate_payload
from carbon_common.telemetry import extract_context, inject_amqp_headers, tracer


class PublishError(RuntimeError):
    """The broker did not confirm (or could not route) the event: nothing may be acknowledged."""


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_envelope(producer: str, event_type: str, data: dict, event_id: str | None = None) -> dict:
    validate_payload(event_type, data)
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "event_type": event_type,
        "schema": schema_name(event_type),
        "producer": producer,
        "emitted_at": utc_now(),
        "data": data,
    }


class EventPublisher:
    """Thread/greenlet safe (kombu producer pool); one per process per broker."""

    def __init__(self, amqp_uri: str, producer: str):
        self.connection = Connection(amqp_uri, transport_options={"confirm_publish": True}, heartbeat=0)
        self.producer = producer
        self.exchange = topology.event_exchange(producer)
        self._declared = False

    def publish(self, event_type: str, data: dict, event_id: str | None = None,
                traceparent: str | None = None) -> dict:
        """`traceparent`: the W3C context the event continues, when it is published later than
        the work that produced it (an outbox relay passes the one stored with the entry)."""
        envelope = make_envelope(self.producer, event_type, data, event_id)
        self.publish_envelope(envelope, traceparent)
        return envelope

    def publish_envelope(self, envelope: dict, traceparent: str | None = None) -> None:
        name = f"publish {self.exchange.name}"
        parent = extract_context({"traceparent": traceparent}) if traceparent else None
        with tracer().start_as_current_span(name, context=parent, kind=SpanKind.PRODUCER, attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "publish",
            "messaging.destination.name": self.exchange.name,
            "messaging.rabbitmq.destination.routing_key": envelope["event_type"],
            "messaging.message.id": envelope["event_id"],
            attributes.EVENT_TYPE: envelope["event_type"],
            attributes.EVENT_ID: envelope["event_id"],
            **attributes.from_payload(envelope["data"]),
        }) as span:
            headers = inject_amqp_headers({})
            try:
                with producers[self.connection].acquire(block=True, timeout=10) as producer:
                    producer.publish(
                        envelope, exchange=self.exchange, routing_key=envelope["event_type"],
                        serializer="json", delivery_mode=2, mandatory=True, headers=headers,
                        declare=[] if self._declared else [self.exchange],
                        retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
                    )
                self._declared = True
            except Exception as exc:  # kombu/amqp raise many types; callers need one
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
                raise PublishError(f"event {envelope['event_type']} {envelope['event_id']} not confirmed: {exc}") from exc

    def close(self) -> None:
        # kombu keeps one producer pool per broker address for the whole process: closing it
        # here would break every other publisher on that broker, so only our handle goes.
        self.connection.release()


class EventDispatcher(DependencyProvider):
    """nameko dependency: `self.dispatch(event_type, data, event_id=...)` -> envelope.

    Headers are built at call time (unlike nameko 2.x's EventDispatcher, which fixes them
    before the worker span exists), so events are children of the span that emits them.
    """

    def setup(self):
        self.publisher = EventPublisher(self.container.config["AMQP_URI"], self.container.service_name)

    def stop(self):
        self.publisher.close()

    def get_dependency(self, worker_ctx):
        return self.publisher.publish
