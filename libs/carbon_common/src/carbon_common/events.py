"""Publishing platform events: validated envelopes, publisher confirms, trace context.

One publisher for every process: Flask/CLI code uses EventPublisher directly; nameko services
inject it with EventDispatcher. A publish returns only once the broker confirmed the message
to disk (persistent) — so callers may acknowledge upstream only after it returns.
"""

import datetime
import socket
import threading
import time
import uuid
from urllib.parse import unquote, urlparse

import amqp
import orjson
from kombu import Connection
from kombu.pools import producers
from nameko.extensions import DependencyProvider
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from carbon_common import attributes, topology
from carbon_common.amqp_frames import PublishFrames
from carbon_common.schemas import check_payload, schema_name
from carbon_common.telemetry import HEADER_PREFIX, extract_context, inject_amqp_headers, tracer


class PublishError(RuntimeError):
    """The broker did not confirm (or could not route) the event: nothing may be acknowledged."""


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_envelope(
    producer: str, event_type: str, data: dict, event_id: str | None = None, emitted_at: str | None = None
) -> dict:
    check_payload(event_type, data)
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "event_type": event_type,
        "schema": schema_name(event_type),
        "producer": producer,
        "emitted_at": emitted_at or utc_now(),
        "data": data,
    }


class EventPublisher:
    """Thread/greenlet safe (kombu producer pool); one per process per broker."""

    def __init__(self, amqp_uri: str, producer: str):
        self.connection = Connection(amqp_uri, transport_options={"confirm_publish": True}, heartbeat=0)
        self.producer = producer
        self.exchange = topology.event_exchange(producer)
        self._declared = False

    def publish(self, event_type: str, data: dict, event_id: str | None = None, traceparent: str | None = None) -> dict:
        """`traceparent`: the W3C context the event continues, when it is published later than
        the work that produced it (an outbox relay passes the one stored with the entry)."""
        envelope = make_envelope(self.producer, event_type, data, event_id)
        self.publish_envelope(envelope, traceparent)
        return envelope

    def publish_envelope(self, envelope: dict, traceparent: str | None = None) -> None:
        name = f"publish {self.exchange.name}"
        parent = extract_context({"traceparent": traceparent}) if traceparent else None
        with tracer().start_as_current_span(
            name,
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "publish",
                "messaging.destination.name": self.exchange.name,
                "messaging.rabbitmq.destination.routing_key": envelope["event_type"],
                "messaging.message.id": envelope["event_id"],
                attributes.EVENT_TYPE: envelope["event_type"],
                attributes.EVENT_ID: envelope["event_id"],
                **attributes.from_payload(envelope["data"]),
            },
        ) as span:
            headers = inject_amqp_headers(topology.partition_headers(envelope["data"]))
            try:
                with producers[self.connection].acquire(block=True, timeout=10) as producer:
                    producer.publish(
                        envelope,
                        exchange=self.exchange,
                        routing_key=envelope["event_type"],
                        serializer="json",
                        delivery_mode=2,
                        mandatory=True,
                        headers=headers,
                        declare=[] if self._declared else [self.exchange],
                        retry=True,
                        retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
                    )
                self._declared = True
            except Exception as exc:  # kombu/amqp raise many types; callers need one
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
                raise PublishError(
                    f"event {envelope['event_type']} {envelope['event_id']} not confirmed: {exc}"
                ) from exc

    def close(self) -> None:
        # kombu keeps one producer pool per broker address for the whole process: closing it
        # here would break every other publisher on that broker, so only our handle goes.
        self.connection.release()


MAX_LINKS = 64


def _batch_span(exchange: str, envelopes: list[dict], traceparents: list[str]):
    """One PRODUCER span per published batch (OTel messaging: a batch publish is one operation),
    linked to the records' spans; each message itself carries its record's context, so the
    consumer continues that record's trace. Per-record producer spans cost ~16% of a consumer's
    CPU in OTLP encoding alone (py-spy, 2026-11-29). One link per distinct parent (the records
    of one request share calc's span), at most MAX_LINKS, and only those are parsed (account's
    records each have their own span: a batch brings ~500)."""
    distinct = list(dict.fromkeys(tp for tp in traceparents if tp))[:MAX_LINKS]
    links = [
        trace.Link(trace.get_current_span(extract_context({"traceparent": tp})).get_span_context()) for tp in distinct
    ]
    return tracer().start_span(
        f"publish {exchange}",
        kind=SpanKind.PRODUCER,
        links=links,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "publish",
            "messaging.destination.name": exchange,
            "messaging.batch.message_count": len(envelopes),
            attributes.EVENT_TYPE: sorted({e["event_type"] for e in envelopes}),
        },
    )


class BatchPublisher:
    """Publishes many events and waits once for the broker's confirms of all of them.

    Confirming each message synchronously caps a publisher near 1,500 msgs/s; one wait per
    batch runs at the broker's raw persistent rate (docs/adr/0004-batch-consumers-and-id-only-hot-paths.md). `publish_many`
    returns only when every message is confirmed and routed, else raises PublishError (then
    acknowledge nothing upstream: a repeat is deduped by event_id downstream).
    One AMQP connection per instance, shared under a lock (threads or green threads).
    """

    CONFIRM_TIMEOUT = 30.0

    def __init__(self, amqp_uri: str, producer: str):
        self.amqp_uri = amqp_uri
        self.producer = producer
        self.exchange = topology.event_exchange(producer).name
        self._lock = threading.Lock()
        self._conn = self._channel = None
        self._next_tag = 1  # the broker numbers a channel's publishes 1, 2, … after confirm_select
        self._pending: set[int] = set()
        self._nacked = 0
        self._returned = []

    def _connect(self):
        url = urlparse(self.amqp_uri)
        vhost = unquote(url.path[1:]) if url.path not in ("", "/") else "/"
        conn = amqp.Connection(
            host=f"{url.hostname or 'localhost'}:{url.port or 5672}",
            userid=unquote(url.username or "guest"),
            password=unquote(url.password or "guest"),
            virtual_host=vhost,
            heartbeat=0,
            connect_timeout=10,
            ssl=url.scheme == "amqps",
        )
        conn.connect()
        try:
            channel = conn.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            channel.exchange_declare(self.exchange, "topic", durable=True, auto_delete=False, passive=True)
        except Exception:
            conn.collect()  # not kept: close it here, or every failed attempt leaks a connection
            raise
        self._conn, self._channel, self._next_tag = conn, channel, 1
        self._frames = PublishFrames(channel.channel_id, conn.frame_max, self.exchange)

    def _settle(self, delivery_tag, multiple) -> int:
        done = {t for t in self._pending if t <= delivery_tag} if multiple else {delivery_tag} & self._pending
        self._pending -= done
        return len(done)

    def _on_ack(self, delivery_tag, multiple):
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag, multiple):
        self._nacked += self._settle(delivery_tag, multiple)

    def _on_return(self, *args):
        self._returned.append(args)

    def _drop(self):
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.collect()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def publish_many(self, items) -> list[dict]:
        """items: (event_type, data, event_id, traceparent) tuples -> their envelopes, confirmed."""
        now = utc_now()  # one batch, one moment
        envelopes = [make_envelope(self.producer, t, d, i, now) for t, d, i, _ in items]
        if not envelopes:
            return []
        traceparents = [tp for *_, tp in items]
        span = _batch_span(self.exchange, envelopes, traceparents)
        with self._lock:
            try:
                if self._conn is None:
                    self._connect()
                self._returned.clear()
                self._nacked = 0
                self._pending = set(range(self._next_tag, self._next_tag + len(envelopes)))
                self._next_tag += len(envelopes)
                own = inject_amqp_headers({}, trace.set_span_in_context(span))
                frames = []
                for envelope, tp in zip(envelopes, traceparents):
                    # the record's own context, as given (extracting and re-injecting it yields the same text)
                    headers = topology.partition_headers(envelope["data"])
                    headers.update({HEADER_PREFIX + "traceparent": tp} if tp else own)
                    body = orjson.dumps(envelope)  # payloads are proto-checked: str, int, lists, maps
                    frames.append(self._frames.publish(envelope["event_type"], body, headers))
                self._conn.transport.write(b"".join(frames))  # one syscall for the batch
                deadline = time.monotonic() + self.CONFIRM_TIMEOUT
                while self._pending:
                    if time.monotonic() > deadline:
                        raise PublishError(f"{len(self._pending)} confirm(s) not received in time")
                    try:
                        self._conn.drain_events(timeout=1.0)
                    except socket.timeout:
                        continue
                if self._nacked or self._returned:
                    raise PublishError(f"{self._nacked} nacked, {len(self._returned)} unroutable")
            except Exception as exc:
                self._drop()
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
                if isinstance(exc, PublishError):
                    raise
                raise PublishError(f"{len(envelopes)} event(s) not confirmed: {exc}") from exc
            finally:
                span.end()
        return envelopes

    def close(self) -> None:
        with self._lock:
            self._drop()


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


class PublisherPool:
    """`publish_many` on an idle BatchPublisher (one more is opened when all are busy): batches
    handled side by side wait for their confirms side by side, not one after another behind
    one publisher's lock. As many connections as batches were ever in flight at once."""

    def __init__(self, amqp_uri: str, producer: str):
        self.amqp_uri, self.producer = amqp_uri, producer
        self._lock = threading.Lock()
        self._idle: list[BatchPublisher] = []
        self._all: list[BatchPublisher] = []

    def publish_many(self, items) -> list[dict]:
        with self._lock:
            if self._idle:
                publisher = self._idle.pop()
            else:
                publisher = BatchPublisher(self.amqp_uri, self.producer)
                self._all.append(publisher)
        try:
            return publisher.publish_many(items)
        finally:
            with self._lock:
                self._idle.append(publisher)

    def close(self) -> None:
        with self._lock:
            publishers, self._all, self._idle = self._all, [], []
        for publisher in publishers:
            publisher.close()


class BatchDispatcher(DependencyProvider):
    """nameko dependency: `self.publisher.publish_many([(type, data, event_id, traceparent), …])`."""

    def setup(self):
        self.publisher = PublisherPool(self.container.config["AMQP_URI"], self.container.service_name)

    def stop(self):
        self.publisher.close()

    def get_dependency(self, worker_ctx):
        return self.publisher
