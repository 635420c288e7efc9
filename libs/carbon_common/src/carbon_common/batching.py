"""Batch event handlers: take up to N messages, handle them together, ack them together.

Per-message handling costs one database round trip per write and one broker confirm per
published event; on our stores that caps a service near 50-1,500 records/s (ADR 0004). A
batch handler receives a list of `Delivery` objects, reads what it needs with one `$in` by
`_id`, writes with one `insert_many`, publishes its events with one confirm wait
(`BatchPublisher`) and returns; only then is every message of the batch acknowledged.

No message is dropped (the same rules as `handlers.ReliableEventHandler`):
- the handler raises: the batch is re-run one message at a time, so one bad message cannot
  hold the others back; a single message that fails goes to its retry queue and, after
  MAX_ATTEMPTS, is parked in `<queue>.dlq` (publisher-confirmed) before it is acked;
- the handler marks one delivery `failed`: only that one takes the failure path;
- the process dies mid-batch: nothing was acked, the broker redelivers the batch; handlers
  are idempotent (deterministic ids), so the repeat writes nothing new.

Tracing: each message is processed in its own CONSUMER span, a child of the span that
published it, so a record stays one trace from the HTTP request to the ledger; the span
covers the batch's work and carries the batch size.
"""

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import eventlet
import eventlet.event
from kombu import Connection, Consumer
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from carbon_common import attributes, metrics, topology
from carbon_common.config import setting
from carbon_common.handlers import TEST_ROUTES_KEY, delivery_attempt, park_message
from carbon_common.telemetry import extract_context, tracer

log = logging.getLogger(__name__)
HEADER_PREFIX = "nameko."
STANDBY_AFTER = 5.0
BATCH_SIZE = metrics.Histogram(
    "carbon_batch_size",
    "Messages handled per batch",
    ["service", "queue"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)


@dataclass
class Delivery:
    """One message of a batch. Set `failed` to send just this one down the retry path."""

    envelope: Any
    message: Any = field(repr=False)
    span: Any = field(repr=False, default=None)
    failed: BaseException | None = None

    @property
    def data(self) -> dict:
        return self.envelope.get("data", {}) if isinstance(self.envelope, dict) else {}

    @property
    def traceparent(self) -> str:
        """The W3C context of this message's processing span (pass it to what it publishes)."""
        carrier = {}
        if self.span is not None:
            propagate.inject(carrier, context=trace.set_span_in_context(self.span))
        return carrier.get("traceparent", "")


class BatchEventHandler(Entrypoint):
    """`@batch_event_handler(source, event_type, max_batch=500, max_wait=0.05)`.

    The decorated method gets `list[Delivery]`. Queue, retry queue and DLQ are those of the
    route in `topology.ROUTES` (declared before traffic).
    """

    def __init__(self, source_service, event_type, max_batch=500, max_wait=0.05, **kwargs):
        self.source_service, self.event_type = source_service, event_type
        self.max_batch, self.max_wait = max_batch, max_wait
        self._stopping = False
        self._thread = None
        super().__init__(**kwargs)

    def setup(self):
        config = self.container.config
        self.route = topology.find_route(
            self.source_service,
            self.event_type,
            self.container.service_name,
            self.method_name,
            extra=config.get(TEST_ROUTES_KEY, ()),
        )
        self.queues = topology.consumed_queues(self.route)
        self.queue = self.queues[0]
        self.amqp_uri = config["AMQP_URI"]
        preferred = setting("CARBON_PREFERRED_SHARDS", "", config)
        wanted = {int(k) for k in preferred.split(",") if k.strip()} if preferred else set(range(len(self.queues)))
        # Shard queues are single-active-consumer: the first subscriber of a shard writes it,
        # later ones stand by and take over if it dies. Subscribing to our preferred shards
        # first, and to the rest STANDBY_AFTER later, spreads the shards over replicas.
        self.first = [q for k, q in enumerate(self.queues) if k in wanted] or self.queues
        self.later = [q for q in self.queues if q not in self.first]

    def start(self):
        """Returns once the consumer is registered (as nameko's own consumers do), so work
        published after the container started is consumed."""
        self._consuming = eventlet.event.Event()
        self._thread = self.container.spawn_managed_thread(self._run, identifier=f"batch:{self.route.queue_name}")
        with eventlet.Timeout(30, False):
            self._consuming.wait()

    def stop(self):
        self._stopping = True
        if self._thread is not None:
            self._thread.wait()

    def kill(self):
        self._stopping = True
        if self._thread is not None:
            self._thread.kill()

    # consuming ----------------------------------------------------------------
    def _run(self):
        while not self._stopping:
            try:
                self._consume()
            except Exception as exc:  # noqa: BLE001 - broker gone: reconnect, nothing was acked
                if self._stopping:
                    return
                log.warning("batch consumer reconnecting", extra={"queue": self.route.queue_name, "error": repr(exc)})
                eventlet.sleep(1.0)

    def _consume(self):
        pending: list = []
        with Connection(self.amqp_uri, heartbeat=30) as conn:
            channel = conn.channel()
            # For the channel (all shards together). Two batches' worth: the next batch streams
            # in while this one is handled, instead of after its ack.
            channel.basic_qos(0, 2 * self.max_batch, True)
            collect = [lambda body, message: pending.append((body, message))]
            Consumer(channel, queues=self.first, accept=["json"], callbacks=collect).consume()
            standby = Consumer(channel, queues=self.later, accept=["json"], callbacks=collect) if self.later else None
            standby_at = time.monotonic() + STANDBY_AFTER
            if not self._consuming.ready():
                self._consuming.send(True)
            first_at = None
            while not self._stopping:
                if standby is not None and time.monotonic() >= standby_at:
                    standby.consume()
                    standby = None
                if pending and first_at is None:  # deliveries can arrive while a consumer registers
                    first_at = time.monotonic()
                wait = 1.0 if not pending else max(first_at + self.max_wait - time.monotonic(), 0.001)
                try:
                    conn.drain_events(timeout=wait)
                except socket.timeout:
                    conn.heartbeat_check()
                if pending and first_at is None:
                    first_at = time.monotonic()
                if pending and (len(pending) >= self.max_batch or time.monotonic() >= first_at + self.max_wait):
                    batch, pending[:] = list(pending), []
                    first_at = None
                    if not self._handle(batch):
                        return  # container being killed: leave the batch unacked

    def _handle(self, batch) -> bool:
        deliveries = [Delivery(body, message) for body, message in batch]
        BATCH_SIZE.labels(self.container.service_name, self.route.queue_name).observe(len(deliveries))
        for d in deliveries:
            d.span = self._start_span(d, len(deliveries))
        started = time.perf_counter()
        try:
            error = self._run_worker(deliveries)
        except ContainerBeingKilled:
            for d in deliveries:
                d.span.end()
            return False
        metrics.HANDLER_SECONDS.labels(self.container.service_name, self.method_name).observe(
            time.perf_counter() - started
        )
        if error is not None and len(deliveries) > 1:
            log.warning(
                "batch failed; handling its messages one by one",
                extra={"queue": self.route.queue_name, "size": len(deliveries), "error": repr(error)},
            )
            for d in deliveries:
                d.span.end()
            return all(self._handle([(d.envelope, d.message)]) for d in deliveries)
        for d in deliveries:
            d.failed = d.failed or error
        if len(deliveries) > 1 and all(d.failed is None for d in deliveries):
            self._ack_all(deliveries)
            return True
        for d in deliveries:
            self._settle(d)
        return True

    def _ack_all(self, deliveries) -> None:
        """One `basic.ack multiple` for a batch that succeeded whole (one frame instead of up to
        500, for us and the broker). Safe: every message delivered on this channel before the
        batch's last one is in the batch or was settled by an earlier batch; later ones, still
        unread, have higher delivery tags."""
        last = max(deliveries, key=lambda d: d.message.delivery_tag).message
        last.channel.basic_ack(last.delivery_tag, multiple=True)
        metrics.EVENTS_PROCESSED.labels(self.container.service_name, self.event_type, "ok").inc(len(deliveries))
        for d in deliveries:
            d.span.end()

    def _run_worker(self, deliveries):
        done = eventlet.event.Event()
        self.container.spawn_worker(
            self,
            (deliveries,),
            {},
            handle_result=lambda ctx, result, exc_info: done.send(exc_info) or (result, exc_info),
        )
        exc_info = done.wait()
        return exc_info[1] if exc_info else None

    def _start_span(self, delivery: Delivery, size: int):
        headers = delivery.message.headers or {}
        carrier = {k[len(HEADER_PREFIX) :]: v for k, v in headers.items() if k.startswith(HEADER_PREFIX)}
        attrs = {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": f"{self.source_service}.events",
            "messaging.rabbitmq.destination.routing_key": self.event_type,
            "messaging.consumer.group.name": self.route.queue_name,
            "messaging.batch.message_count": size,
            attributes.EVENT_TYPE: self.event_type,
            attributes.DELIVERY_ATTEMPT: delivery_attempt(delivery.message),
        }
        if isinstance(delivery.envelope, dict) and "event_id" in delivery.envelope:
            attrs["messaging.message.id"] = attrs[attributes.EVENT_ID] = delivery.envelope["event_id"]
            attrs.update(attributes.from_payload(delivery.envelope.get("data")))
        return tracer().start_span(
            f"process {self.route.queue_name}",
            context=extract_context(carrier),
            kind=SpanKind.CONSUMER,
            attributes=attrs,
        )

    def _settle(self, d: Delivery) -> None:
        service = self.container.service_name
        if d.failed is None:
            d.message.ack()
            metrics.EVENTS_PROCESSED.labels(service, self.event_type, "ok").inc()
            d.span.end()
            return
        d.span.record_exception(d.failed)
        d.span.set_status(trace.Status(trace.StatusCode.ERROR, type(d.failed).__name__))
        d.span.end()
        metrics.EVENTS_PROCESSED.labels(service, self.event_type, "error").inc()
        attempt = delivery_attempt(d.message)
        if attempt < topology.MAX_ATTEMPTS:
            log.warning(
                "handler failed, will retry",
                extra={"queue": self.route.queue_name, "attempt": attempt, "error": repr(d.failed)},
            )
            d.message.reject(requeue=False)
            return
        try:
            park_message(self.amqp_uri, self.route, d.message, d.failed)
        except Exception:  # noqa: BLE001 - broker trouble: redelivery rather than loss
            log.exception("could not park message; requeueing", extra={"queue": self.route.queue_name})
            d.message.requeue()
            return
        log.error(
            "handler failed %d times, dead-lettered",
            attempt,
            extra={"queue": self.route.queue_name, "dlq": self.route.queue_name + ".dlq", "error": repr(d.failed)},
        )
        d.message.ack()


def in_span(delivery: Delivery):
    """`with in_span(d):` — work (and pymongo/publish spans) for one record under its span."""
    return trace.use_span(delivery.span, end_on_exit=False)


batch_event_handler = BatchEventHandler.decorator
