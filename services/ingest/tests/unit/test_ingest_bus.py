"""The Bus's pool of batch publishers: one per concurrent publisher, a retry only for a
connection that went stale while idle (it fails at once), never for a first or slow failure."""

import threading

import pytest

from carbon_common.events import PublishError

ITEMS = [("behaviour_received", {}, "e1", None)]


class FakePublisher:
    instances, gate = [], None  # gate: every publish waits for it (concurrency test)

    def __init__(self, amqp_uri, producer):
        self.calls, self.script = 0, []
        FakePublisher.instances.append(self)

    def publish_many(self, items):
        self.calls += 1
        if self.gate:
            self.gate.wait(5)
        if self.script and self.script.pop(0) == "fail":
            raise PublishError("not confirmed")
        return [{"event_id": i[2]} for i in items]

    def close(self):
        pass


@pytest.fixture
def bus(monkeypatch):
    from ingest import bus as bus_module

    FakePublisher.instances, FakePublisher.gate = [], None
    monkeypatch.setattr(bus_module, "BatchPublisher", FakePublisher)
    return bus_module.Bus("amqp://unused")


def test_a_first_failure_is_not_retried(bus):
    bus._acquire().script = ["fail"]
    bus._idle.append(FakePublisher.instances[0])
    with pytest.raises(PublishError):
        bus.publish_many(ITEMS)
    assert FakePublisher.instances[0].calls == 1


def test_a_connection_gone_stale_is_retried_once(bus):
    assert bus.publish_many(ITEMS) == [{"event_id": "e1"}]
    [publisher] = FakePublisher.instances
    publisher.script = ["fail"]
    assert bus.publish_many(ITEMS) == [{"event_id": "e1"}]
    assert publisher.calls == 3
    publisher.script = ["fail", "fail"]
    with pytest.raises(PublishError):
        bus.publish_many(ITEMS)
    publisher.script = ["fail"]
    with pytest.raises(PublishError):  # the last attempt failed: this connection is new, not stale
        bus.publish_many(ITEMS)


def test_a_slow_failure_is_not_retried(bus, monkeypatch):
    bus.publish_many(ITEMS)
    [publisher] = FakePublisher.instances
    publisher.script = ["fail"]
    monkeypatch.setattr(type(bus), "STALE_FAILURE_SECONDS", -1.0)
    with pytest.raises(PublishError):
        bus.publish_many(ITEMS)
    assert publisher.calls == 2


def test_concurrent_publishes_each_get_a_publisher(bus):
    FakePublisher.gate = gate = threading.Event()
    threads = [threading.Thread(target=bus.publish_many, args=(ITEMS,)) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(500):  # all three are inside publish_many at once
        if sum(p.calls for p in FakePublisher.instances) == 3:
            break
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert len(FakePublisher.instances) == 3 and len(bus._idle) == 3
    bus.publish_many(ITEMS)
    assert len(FakePublisher.instances) == 3  # reused, not grown
