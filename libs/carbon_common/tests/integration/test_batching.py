"""Batch consumers against a real RabbitMQ: every message handled once and acknowledged only
after its batch; one bad message takes the retry/DLQ path alone."""

import threading

import pytest
from kombu import Connection
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from carbon_common import attributes, batching, topology
from carbon_common.batching import batch_event_handler
from carbon_common.events import BatchPublisher
from carbon_common.handlers import TEST_ROUTES_KEY
from carbon_dev.testing import wait_until

ROUTE = topology.Route("ingest", "consent_revoked", "batch_probe", "handle")


class BatchProbe:
    name = "batch_probe"
    seen: list = []
    batch_sizes: list = []
    poison: set = set()  # consent ids the handler marks failed
    raise_once = {"left": 0}  # whole batches that raise before touching anything
    lock = threading.Lock()

    @batch_event_handler("ingest", "consent_revoked", max_batch=50)
    def handle(self, deliveries):
        if BatchProbe.raise_once["left"] > 0 and len(deliveries) > 1:
            BatchProbe.raise_once["left"] -= 1
            raise RuntimeError("store unavailable")
        with BatchProbe.lock:
            BatchProbe.batch_sizes.append(len(deliveries))
            for d in deliveries:
                if d.data["consent_id"] in BatchProbe.poison:
                    d.failed = ValueError("poison")
                else:
                    BatchProbe.seen.append(d.data["consent_id"])


@pytest.fixture
def probe_config(rabbit_config):
    topology.declare(rabbit_config["AMQP_URI"], routes=topology.ROUTES + (ROUTE,))
    BatchProbe.seen, BatchProbe.batch_sizes, BatchProbe.poison = [], [], set()
    BatchProbe.raise_once["left"] = 0
    return dict(rabbit_config, **{TEST_ROUTES_KEY: (ROUTE,)})


class GroupedProbe:
    """The same route, one processing span per publishing span (as calc)."""

    name = "batch_probe"
    traceparents: list = []

    @batch_event_handler("ingest", "consent_revoked", max_batch=50, span_per="parent")
    def handle(self, deliveries):
        with BatchProbe.lock:
            for d in deliveries:
                BatchProbe.seen.append(d.data["consent_id"])
                GroupedProbe.traceparents.append(d.traceparent)


def publish(uri: str, ids, traceparent: str = "") -> None:
    items = [
        (
            "consent_revoked",
            {
                "consent_id": i,
                "user_pid": "cd" * 32,
                "partner_id": "p1",
                "scenarios": ["metro_ride"],
                "revoked_at": "2026-11-25T10:00:00Z",
            },
            None,
            traceparent,
        )
        for i in ids
    ]
    publisher = BatchPublisher(uri, "ingest")
    try:
        publisher.publish_many(items)
    finally:
        publisher.close()


def messages_in(uri: str, queue: str) -> int:
    with Connection(uri) as conn:
        return conn.default_channel.queue_declare(queue=queue, passive=True).message_count


def test_a_backlog_is_handled_in_batches_each_message_once_and_all_acknowledged(container_factory, probe_config):
    uri = probe_config["AMQP_URI"]
    ids = [f"c{i:04d}" for i in range(400)]
    publish(uri, ids)  # a backlog before the consumer starts
    container = container_factory(BatchProbe, probe_config)
    container.start()
    wait_until(lambda: len(BatchProbe.seen) >= len(ids), timeout=30, message="the backlog handled")
    container.stop()  # unacknowledged messages would now be ready again
    assert sorted(BatchProbe.seen) == ids
    assert max(BatchProbe.batch_sizes) == 50 and len(BatchProbe.batch_sizes) < len(ids)
    assert messages_in(uri, ROUTE.queue_name) == 0


def test_a_message_marked_failed_alone_is_retried_then_dead_lettered(container_factory, probe_config):
    uri = probe_config["AMQP_URI"]
    ids = [f"c{i:04d}" for i in range(120)]
    BatchProbe.poison = {"c0042"}
    publish(uri, ids)
    container = container_factory(BatchProbe, probe_config)
    container.start()
    wait_until(
        lambda: messages_in(uri, ROUTE.queue_name + ".dlq") == 1, timeout=30, message="the poison message parked"
    )
    container.stop()
    assert sorted(BatchProbe.seen) == [i for i in ids if i != "c0042"]  # the others once each
    assert messages_in(uri, ROUTE.queue_name) == 0


def test_a_body_that_is_not_json_is_parked_and_the_rest_handled(container_factory, probe_config):
    """A message no handler can read must neither stop the consumer nor be lost: it takes the
    retry path, is parked in the DLQ, and the batch around it is handled."""
    uri = probe_config["AMQP_URI"]
    ids = [f"c{i:04d}" for i in range(60)]
    publish(uri, ids[:30])
    with Connection(uri) as conn:
        producer = conn.Producer()
        exchange = topology.event_exchange(ROUTE.source)
        producer.publish(b"{not json", exchange=exchange, routing_key=ROUTE.event_type, content_type="application/json")
    publish(uri, ids[30:])
    container = container_factory(BatchProbe, probe_config)
    container.start()
    wait_until(
        lambda: messages_in(uri, ROUTE.queue_name + ".dlq") == 1, timeout=30, message="the unreadable message parked"
    )
    wait_until(lambda: len(BatchProbe.seen) >= len(ids), timeout=30, message="the others handled")
    container.stop()
    assert sorted(BatchProbe.seen) == ids
    assert messages_in(uri, ROUTE.queue_name) == 0


def test_a_batch_that_raises_is_handled_again_message_by_message(container_factory, probe_config):
    uri = probe_config["AMQP_URI"]
    ids = [f"c{i:04d}" for i in range(100)]
    BatchProbe.raise_once["left"] = 1
    publish(uri, ids)
    container = container_factory(BatchProbe, probe_config)
    container.start()
    wait_until(lambda: len(BatchProbe.seen) >= len(ids), timeout=30, message="every message handled")
    container.stop()
    assert sorted(BatchProbe.seen) == ids
    assert BatchProbe.raise_once["left"] == 0 and 1 in BatchProbe.batch_sizes  # the re-run was one by one
    assert messages_in(uri, ROUTE.queue_name) == 0


def test_messages_of_one_publishing_span_share_one_processing_span(container_factory, probe_config, monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(batching, "tracer", lambda: provider.get_tracer("test"))
    uri = probe_config["AMQP_URI"]
    parents = {f"{n:032x}": f"{n:016x}" for n in (0xA1, 0xB2, 0xC3)}  # trace id -> publishing span id
    for n, (trace_id, span_id) in enumerate(parents.items()):
        publish(uri, [f"r{n}-{i:02d}" for i in range(20)], f"00-{trace_id}-{span_id}-01")
    GroupedProbe.traceparents = []
    container = container_factory(GroupedProbe, probe_config)
    container.start()
    wait_until(lambda: len(BatchProbe.seen) >= 60, timeout=30, message="60 messages handled")
    container.stop()

    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("process ")]
    # one span per publishing span and batch (two consumer loops may split a parent's messages)
    assert 3 <= len(spans) <= 6
    assert {(format(s.context.trace_id, "032x"), format(s.parent.span_id, "016x")) for s in spans} == set(
        parents.items()
    )
    assert sum(s.attributes["messaging.batch.message_count"] for s in spans) == 60
    shared = [s for s in spans if s.attributes["messaging.batch.message_count"] > 1]
    assert shared and all(attributes.EVENT_ID not in s.attributes for s in shared)  # no one record's id
    # what a handler publishes continues its message's trace, under the shared span
    by_span = {format(s.context.span_id, "016x"): format(s.context.trace_id, "032x") for s in spans}
    assert len(GroupedProbe.traceparents) == 60
    assert all(by_span[tp.split("-")[2]] == tp.split("-")[1] for tp in GroupedProbe.traceparents)
