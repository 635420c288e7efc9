"""pytest plugin shared by every test suite (loaded by the root conftest).

Real servers only: each test gets a throwaway RabbitMQ vhost (nameko's `rabbit_config`,
created through the management API) with the whole topology declared, and its own FerretDB
/MongoDB database, dropped afterwards. Waiting is polling with a deadline, never sleeping.
"""

import json
import os
import re
import socket
import subprocess
import urllib.parse
import urllib.request
import time
import uuid

import pytest
from pymongo import monitoring
from kombu import Connection, Queue

from carbon_common import topology

TEST_MONGO_URI = os.environ.get("TEST_MONGO_URI", "mongodb://127.0.0.1:27017/?retryWrites=false")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; return it, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_on_port(port: int) -> int:
    """The pid listening on a loopback TCP port (`ss`), 0 when none."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else 0


JAEGER_API = "http://127.0.0.1:16686/api"


def jaeger(path: str, **query):
    """GET from Jaeger's query API: the `data` field, or None while Jaeger does not answer."""
    url = f"{JAEGER_API}/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)["data"]
    except OSError:
        return None


def jaeger_trace(trace_id: str) -> dict | None:
    """One trace (spans + processes) from Jaeger, or None until it is there."""
    data = jaeger(f"traces/{trace_id}")
    return data[0] if data else None


@pytest.fixture(name="wait_until")
def wait_until_fixture():
    return wait_until


@pytest.fixture
def platform_amqp(rabbit_config):
    """rabbit_config with every exchange, queue, binding and DLQ of the platform declared."""
    topology.declare(rabbit_config["AMQP_URI"])
    return rabbit_config


@pytest.fixture
def mongo_database():
    from carbon_common.mongo import client

    created = []

    def make(service: str = "test"):
        name = f"test_{service}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        return client(TEST_MONGO_URI)[name]

    yield make
    for name in created:
        client(TEST_MONGO_URI).drop_database(name)


class FilterRecorder(monitoring.CommandListener):
    """pymongo command listener: the filter of every read, update and delete a client sends,
    so a test can prove a hot path asks FerretDB only for `_id` lookups (docs/adr/0002-insert-only-storage-on-ferretdb.md)."""

    READS = {
        "find": "filter",
        "count": "query",
        "delete": None,
        "update": None,
        "findAndModify": "query",
        "aggregate": None,
        "distinct": "query",
    }

    def __init__(self):
        self.commands: list[tuple[str, str, dict]] = []  # (command, collection, filter)

    def started(self, event):
        name = event.command_name
        if name not in self.READS:
            return
        cmd, coll = event.command, event.command.get(event.command_name)
        if name == "delete":
            self.commands.extend((name, coll, d.get("q", {})) for d in cmd.get("deletes", []))
        elif name == "update":
            self.commands.extend((name, coll, u.get("q", {})) for u in cmd.get("updates", []))
        elif name == "aggregate":
            self.commands.append((name, coll, {"pipeline": cmd.get("pipeline")}))
        else:
            self.commands.append((name, coll, dict(cmd.get(self.READS[name]) or {})))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def clear(self):
        self.commands.clear()

    def not_by_id(self) -> list[tuple[str, str, dict]]:
        """Commands whose filter is anything but {_id: value} or {_id: {$in: [...]}}."""

        def by_id(flt):
            if set(flt) != {"_id"}:
                return False
            value = flt["_id"]
            return not isinstance(value, dict) or set(value) == {"$in"}

        return [c for c in self.commands if not by_id(c[2])]


@pytest.fixture
def recorded_database():
    """(make(service) -> Database on a client that records filters, recorder)."""
    from pymongo import MongoClient

    from carbon_common.mongo import _with_defaults

    recorder = FilterRecorder()
    client = MongoClient(_with_defaults(TEST_MONGO_URI), tz_aware=True, event_listeners=[recorder])
    created = []

    def make(service: str = "test"):
        name = f"test_{service}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        return client[name]

    yield make, recorder
    for name in created:
        client.drop_database(name)
    client.close()


class EventListener:
    """A queue of our own bound to `<source>.events` — what a bank system consuming events does."""

    def __init__(self, amqp_uri: str, source: str, event_type: str):
        self.connection = Connection(amqp_uri)
        self.queue = Queue(
            f"test-listener-{uuid.uuid4().hex[:8]}",
            exchange=topology.event_exchange(source),
            routing_key=event_type,
            durable=False,
            auto_delete=False,
            exclusive=True,
        )
        self.channel = self.connection.channel()
        self.bound = self.queue(self.channel)
        self.bound.declare()
        self.received = []

    def drain(self):
        while True:
            message = self.bound.get(no_ack=True, accept=["json"])
            if message is None:
                return self.received
            self.received.append({"body": message.payload, "headers": dict(message.headers or {})})

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Envelopes received so far once at least `count` arrived (fails after timeout)."""
        wait_until(lambda: len(self.drain()) >= count, timeout, message=f"{count} event(s) on {self.queue.name}")
        return [r["body"] for r in self.received]

    def close(self):
        self.connection.release()


@pytest.fixture
def event_listener(platform_amqp):
    listeners = []

    def make(source: str, event_type: str) -> EventListener:
        listener = EventListener(platform_amqp["AMQP_URI"], source, event_type)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath)
        if "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
        elif "/integration/" in path:
            item.add_marker(pytest.mark.integration)
