"""The messaging foundation against a real RabbitMQ: RPC, events, topology, retries, DLQ."""

import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from carbon_common import topology
from carbon_common.events import EventDispatcher, EventPublisher, PublisherPool, PublishError
from carbon_common.handlers import TEST_ROUTES_KEY, event_handler
from carbon_common.schemas import InvalidEvent
from carbon_dev.testing import wait_until

ROUTE = topology.Route("ingest", "personal_data_deleted", "wiring_probe", "handle")
FLAKY = topology.Route("ingest", "consent_revoked", "wiring_probe", "handle_flaky")
PAYLOAD = {"user_pid": "ab" * 32, "requested_at": "2026-11-25T10:00:00Z"}


class WiringProbe:
    name = "wiring_probe"
    dispatch = EventDispatcher()
    seen = []
    failures = {"left": 0}

    @rpc
    def echo(self, value):
        return {"echo": value}

    @rpc
    def emit(self, user_pid):
        return self.dispatch("personal_data_deleted", {"user_pid": user_pid, "requested_at": "2026-11-25T10:00:00Z"})

    @event_handler("ingest", "personal_data_deleted")
    def handle(self, envelope):
        WiringProbe.seen.append(envelope)

    @event_handler("ingest", "consent_revoked")
    def handle_flaky(self, envelope):
        if WiringProbe.failures["left"] != 0:
            WiringProbe.failures["left"] -= 1
            raise RuntimeError("downstream unavailable")
        WiringProbe.seen.append(envelope)


@pytest.fixture
def probe_config(rabbit_config):
    topology.declare(rabbit_config["AMQP_URI"], routes=topology.ROUTES + (ROUTE, FLAKY))
    WiringProbe.seen = []
    return dict(rabbit_config, **{TEST_ROUTES_KEY: (ROUTE, FLAKY)})


def revoked(consent_id):
    return {
        "consent_id": consent_id,
        "user_pid": "cd" * 32,
        "partner_id": "p1",
        "scenarios": ["metro_ride"],
        "revoked_at": "2026-11-25T10:00:00Z",
    }


def test_rpc_round_trip(container_factory, probe_config):
    container_factory(WiringProbe, probe_config).start()
    with ServiceRpcProxy("wiring_probe", probe_config) as proxy:
        assert proxy.echo("金") == {"echo": "金"}


def test_event_published_before_any_consumer_is_delivered_once_it_starts(container_factory, probe_config):
    # The topology exists before traffic: the handler's queue holds the event until it runs.
    publisher = EventPublisher(probe_config["AMQP_URI"], "ingest")
    envelope = publisher.publish("personal_data_deleted", PAYLOAD, event_id="evt-before-consumer")
    container = container_factory(WiringProbe, probe_config)
    with entrypoint_waiter(container, "handle", timeout=10):
        container.start()
    assert [e["event_id"] for e in WiringProbe.seen] == [envelope["event_id"]]
    assert WiringProbe.seen[0]["data"] == PAYLOAD


def test_event_dispatched_by_a_service_reaches_a_bank_consumer(container_factory, probe_config, event_listener):
    listener = event_listener("wiring_probe", "personal_data_deleted")
    container_factory(WiringProbe, probe_config).start()
    with ServiceRpcProxy("wiring_probe", probe_config) as proxy:
        sent = proxy.emit("ef" * 32)
    [received] = listener.wait(1)
    assert received == sent
    assert received["schema"] == "carbon.events.v1.PersonalDataDeleted"


def test_event_nobody_consumes_is_kept_in_unrouted_queue(probe_config):
    from kombu import Connection, Queue

    EventPublisher(probe_config["AMQP_URI"], "account").publish("personal_data_deleted", PAYLOAD, event_id="orphan")
    with Connection(probe_config["AMQP_URI"]) as conn:
        unrouted = Queue(topology.UNROUTED_QUEUE)(conn.default_channel)
        message = wait_until(lambda: unrouted.get(no_ack=True, accept=["json"]), timeout=10)
        assert message.payload["event_id"] == "orphan"


def test_invalid_payload_is_refused_before_publishing(probe_config, event_listener):
    listener = event_listener("ingest", "personal_data_deleted")
    with pytest.raises(InvalidEvent):
        EventPublisher(probe_config["AMQP_URI"], "ingest").publish("personal_data_deleted", {"user_pid": 42})
    with pytest.raises(InvalidEvent):
        EventPublisher(probe_config["AMQP_URI"], "ingest").publish("no_such_event", {})
    assert listener.drain() == []


def test_batches_published_side_by_side_wait_for_their_confirms_side_by_side(probe_config, event_listener):
    import eventlet

    listener = event_listener("ingest", "personal_data_deleted")
    pool = PublisherPool(probe_config["AMQP_URI"], "ingest")
    batches = [
        [("personal_data_deleted", {"user_pid": f"{b}{i}" * 32}, f"e{b}{i}", "") for i in range(5)] for b in "ab"
    ]
    try:
        results = [t.wait() for t in [eventlet.spawn(pool.publish_many, batch) for batch in batches]]
        assert len(pool._all) == 2  # the second batch did not queue behind the first's confirms
        pool.publish_many([("personal_data_deleted", {"user_pid": "c" * 64}, "ec", "")])
        assert len(pool._all) == 2  # an idle publisher is reused
    finally:
        pool.close()
    assert [len(r) for r in results] == [5, 5]
    assert sorted(e["event_id"] for e in listener.wait(11)) == sorted(
        [f"e{b}{i}" for b in "ab" for i in range(5)] + ["ec"]
    )


def test_publish_to_unreachable_broker_raises():
    publisher = EventPublisher("pyamqp://guest:guest@127.0.0.1:1//", "ingest")
    with pytest.raises(PublishError):
        publisher.publish("personal_data_deleted", PAYLOAD)


def test_failing_handler_is_retried_then_succeeds(container_factory, probe_config):
    WiringProbe.failures["left"] = 2
    container_factory(WiringProbe, probe_config).start()
    EventPublisher(probe_config["AMQP_URI"], "ingest").publish("consent_revoked", revoked("c-retry"))
    wait_until(lambda: WiringProbe.seen, timeout=15, message="handler to succeed on its third attempt")
    assert WiringProbe.failures["left"] == 0
    assert [e["data"]["consent_id"] for e in WiringProbe.seen] == ["c-retry"]


def test_handler_that_keeps_failing_dead_letters_and_replays(container_factory, probe_config):
    WiringProbe.failures["left"] = -1  # fail forever
    container = container_factory(WiringProbe, probe_config)
    container.start()
    EventPublisher(probe_config["AMQP_URI"], "ingest").publish("consent_revoked", revoked("c-dlq"))
    dlq = FLAKY.queue_name + ".dlq"
    uri = probe_config["AMQP_URI"]

    def parked():
        from kombu import Connection

        with Connection(uri) as conn:
            return conn.default_channel.queue_declare(queue=dlq, passive=True).message_count

    wait_until(lambda: parked() == 1, timeout=20, message="message parked in the DLQ")
    assert WiringProbe.seen == []
    # The operator fixes the cause and replays: the message is processed, the DLQ is empty.
    WiringProbe.failures["left"] = 0
    assert topology.replay_dlq(uri, FLAKY.queue_name) == 1
    wait_until(lambda: WiringProbe.seen, timeout=10, message="replayed message handled")
    assert WiringProbe.seen[0]["data"]["consent_id"] == "c-dlq"
    assert parked() == 0
