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

Concurrency: `consumers` loops per handler (CARBON_BATCH_CONSUMERS, default 2), each with its
own connection, channel and prefetch, handle batches side by side in one process: while one
waits for the database or the broker's confirms, another seals. Shard queues are split between
the loops (each shard still has one consumer here, single-active across processes), so two
concurrent batches never hold the same account.

Tracing: each message is processed in a CONSUMER span, a child of the span that published
it, so a record stays one trace from the HTTP request to the ledger; the span covers the
batch's work and carries the batch size. `span_per="message"` (account: the span names the
ledger entry) gives every message its own span; `span_per="parent"` (calc) one span per
publishing span in the batch (ingest publishes a request's records under one span), so the
records of one partner request share one processing span: ~100 times fewer spans to build
and export, the same trace tree.
"""

import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import eventlet
import eventlet.event
import orjson
from kombu import Connection, Consumer
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from carbon_common import amqp_frames, attributes, metrics, topology
from carbon_common.config import float_setting, int_setting, setting
from carbon_common.handlers import TEST_ROUTES_KEY, delivery_attempt, park_message
from carbon_common.telemetry import HEADER_PREFIX, extract_context, tracer

log = logging.getLogger(__name__)
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
    _traceparent: str | None = field(repr=False, default=None)

    @property
    def data(self) -> dict:
        return self.envelope.get("data", {}) if isinstance(self.envelope, dict) else {}

    @property
    def traceparent(self) -> str:
        """The W3C context of this message's processing span (pass it to what it publishes)."""
        if self._traceparent is None:
            carrier = {}
            if self.span is not None:
                propagate.inject(carrier, context=trace.set_span_in_context(self.span))
            self._traceparent = carrier.get("traceparent", "")
        return self._traceparent


def assign_queues(queues: list, preferred: set[int], loops: int) -> list[tuple[list, list]]:
    """(queues consumed at once, queues subscribed STANDBY_AFTER later) for each consumer loop.

    Shard queues are single-active-consumer: the first subscriber of a shard writes it, later
    ones stand by and take over if it dies. Subscribing to our preferred shards first and to
    the rest later spreads the shards over replicas. Within a process, each shard goes to one
    loop only, so two batches handled at once never hold the same account; a single queue is
    shared by every loop (the broker spreads its messages).
    """
    loops = max(loops, 1)
    first = [q for k, q in enumerate(queues) if k in preferred] or list(queues)
    later = [q for q in queues if q not in first]
    if len(queues) == 1:
        return [(first, [])] * loops
    assigned = [(first[k::loops], later[k::loops]) for k in range(loops)]
    return [(f, lt) for f, lt in assigned if f or lt]


class BatchEventHandler(Entrypoint):
    """`@batch_event_handler(source, event_type, max_batch=500, max_wait=0.05)`.

    The decorated method gets `list[Delivery]`. Queue, retry queue and DLQ are those of the
    route in `topology.ROUTES` (declared before traffic).
    """

    def __init__(
        self, source_service, event_type, max_batch=500, max_wait=0.05, consumers=None, span_per="message", **kwargs
    ):
        if span_per not in ("message", "parent"):
            raise ValueError(f"span_per must be 'message' or 'parent', not {span_per!r}")
        self.source_service, self.event_type = source_service, event_type
        self.max_batch, self.max_wait = max_batch, max_wait
        self.span_per = span_per
        self.consumers = consumers
        self._stopping = False
        self._threads = []
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
        count = self.consumers or int_setting("CARBON_BATCH_CONSUMERS", 2, config)
        self.max_wait = float_setting("CARBON_BATCH_MAX_WAIT_MS", self.max_wait * 1000, config) / 1000
        self.loops = assign_queues(self.queues, wanted, count)

    def start(self):
        """Returns once every loop's consumer is registered (as nameko's own consumers do), so
        work published after the container started is consumed."""
        ready = []
        for k, (first, later) in enumerate(self.loops):
            registered = eventlet.event.Event()
            ready.append(registered)
            self._threads.append(
                self.container.spawn_managed_thread(
                    lambda f=first, lt=later, r=registered: self._run(f, lt, r),
                    identifier=f"batch:{self.route.queue_name}:{k}",
                )
            )
        with eventlet.Timeout(30, False):
            for registered in ready:
                registered.wait()

    def stop(self):
        self._stopping = True
        for thread in self._threads:
            thread.wait()

    def kill(self):
        self._stopping = True
        for thread in self._threads:
            thread.kill()

    # consuming ----------------------------------------------------------------
    def _run(self, first, later, registered):
        while not self._stopping:
            try:
                self._consume(first, later, registered)
            except Exception as exc:  # noqa: BLE001 - broker gone: reconnect, nothing was acked
                if self._stopping:
                    return
                log.warning("batch consumer reconnecting", extra={"queue": self.route.queue_name, "error": repr(exc)})
                eventlet.sleep(1.0)

    def _consume(self, first, later, registered):
        pending: list = []
        with Connection(self.amqp_uri, heartbeat=30) as conn:
            channel = conn.channel()
            amqp_frames.buffer_reads(conn.connection)  # many frames per recv
            # For the channel (all shards together). Two batches' worth: the next batch streams
            # in while this one is handled, instead of after its ack.
            channel.basic_qos(0, 2 * self.max_batch, True)
            collect = pending.append  # raw messages: decoded in _handle (see _delivery)
            if first:
                Consumer(channel, queues=first, on_message=collect).consume()
            standby = Consumer(channel, queues=later, on_message=collect) if later else None
            standby_at = time.monotonic() + STANDBY_AFTER
            if not registered.ready():
                registered.send(True)
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
        deliveries = [_delivery(message) for message in batch]
        BATCH_SIZE.labels(self.container.service_name, self.route.queue_name).observe(len(deliveries))
        self._start_spans(deliveries)
        undecodable = [d for d in deliveries if d.failed is not None]
        if undecodable:  # settled first: the batch's ack (multiple) must not cover them
            for d in undecodable:
                self._settle(d)
            deliveries = [d for d in deliveries if d.failed is None]
            _end_spans([d for d in undecodable if all(d.span is not kept.span for kept in deliveries)])
            if not deliveries:
                return True
        started = time.perf_counter()
        try:
            error = self._run_worker(deliveries)
        except ContainerBeingKilled:
            _end_spans(deliveries)
            return False
        metrics.HANDLER_SECONDS.labels(self.container.service_name, self.method_name).observe(
            time.perf_counter() - started
        )
        if error is not None and len(deliveries) > 1:
            log.warning(
                "batch failed; handling its messages one by one",
                extra={"queue": self.route.queue_name, "size": len(deliveries), "error": repr(error)},
            )
            _end_spans(deliveries)
            return all(self._handle([d.message]) for d in deliveries)
        for d in deliveries:
            d.failed = d.failed or error
        if len(deliveries) > 1 and all(d.failed is None for d in deliveries):
            self._ack_all(deliveries)
            return True
        for d in deliveries:
            self._settle(d)
        _end_spans(deliveries)
        return True

    def _ack_all(self, deliveries) -> None:
        """One `basic.ack multiple` for a batch that succeeded whole (one frame instead of up to
        500, for us and the broker). Safe: every message delivered on this channel before the
        batch's last one is in the batch or was settled by an earlier batch; later ones, still
        unread, have higher delivery tags."""
        last = max(deliveries, key=lambda d: d.message.delivery_tag).message
        last.channel.basic_ack(last.delivery_tag, multiple=True)
        metrics.EVENTS_PROCESSED.labels(self.container.service_name, self.event_type, "ok").inc(len(deliveries))
        _end_spans(deliveries)

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

    def _start_spans(self, deliveries: list[Delivery]) -> None:
        contexts: dict[tuple, Any] = {}  # carrier -> parent context: messages of one request share it

        def parent(key: tuple):
            if key not in contexts:
                contexts[key] = extract_context(dict(key))
            return contexts[key]

        if self.span_per == "message":
            for d in deliveries:
                d.span = self._start_span(d, len(deliveries), parent(tuple(sorted(_carrier(d).items()))))
            return
        groups: dict[tuple, list[Delivery]] = {}
        for d in deliveries:
            groups.setdefault(tuple(sorted(_carrier(d).items())), []).append(d)
        for key, members in groups.items():
            attempt = max(delivery_attempt(d.message) for d in members)
            span = self._start_span(
                members[0], len(members), parent(key), per_message=len(members) == 1, attempt=attempt
            )
            for d in members:
                d.span = span

    def _start_span(self, delivery: Delivery, size: int, context, per_message: bool = True, attempt=None):
        attempt = attempt or delivery_attempt(delivery.message)
        attrs = {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": f"{self.source_service}.events",
            "messaging.rabbitmq.destination.routing_key": self.event_type,
            "messaging.consumer.group.name": self.route.queue_name,
            "messaging.batch.message_count": size,
            attributes.EVENT_TYPE: self.event_type,
            attributes.DELIVERY_ATTEMPT: attempt,
        }
        if per_message and isinstance(delivery.envelope, dict) and "event_id" in delivery.envelope:
            attrs["messaging.message.id"] = attrs[attributes.EVENT_ID] = delivery.envelope["event_id"]
            attrs.update(attributes.from_payload(delivery.envelope.get("data")))
        return tracer().start_span(
            f"process {self.route.queue_name}", context=context, kind=SpanKind.CONSUMER, attributes=attrs
        )

    def _settle(self, d: Delivery) -> None:
        service = self.container.service_name
        if d.failed is None:
            d.message.ack()
            metrics.EVENTS_PROCESSED.labels(service, self.event_type, "ok").inc()
            return
        d.span.record_exception(d.failed)
        d.span.set_status(trace.Status(trace.StatusCode.ERROR, type(d.failed).__name__))
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


def _delivery(message) -> Delivery:
    """The message with its JSON envelope, decoded here (orjson: ~2.5x cheaper than kombu's
    decode). A body that is not JSON cannot be handled: it is marked failed, so it takes the
    retry path and is parked in the DLQ instead of stopping the consumer."""
    try:
        if message.content_type not in ("application/json", "", None):
            raise ValueError(f"content type {message.content_type!r} is not application/json")
        return Delivery(orjson.loads(message.body), message)
    except ValueError as exc:  # orjson.JSONDecodeError is one
        return Delivery({}, message, failed=exc)


def _carrier(delivery: Delivery) -> dict:
    headers = delivery.message.headers or {}
    return {k[len(HEADER_PREFIX) :]: v for k, v in headers.items() if k.startswith(HEADER_PREFIX)}


def _end_spans(deliveries) -> None:
    """Each distinct span once (messages of one parent share theirs)."""
    for span in {id(d.span): d.span for d in deliveries if d.span is not None}.values():
        span.end()


def in_span(delivery: Delivery):
    """`with in_span(d):` — work (and pymongo/publish spans) for one record under its span."""
    return trace.use_span(delivery.span, end_on_exit=False)


batch_event_handler = BatchEventHandler.decorator
