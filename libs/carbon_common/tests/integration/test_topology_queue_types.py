"""Queue type (classic | quorum) and the bounded `carbon.unrouted`, on the real broker."""

import json
import urllib.parse
import urllib.request

import pytest
from kombu import Connection

from carbon_common import topology
from carbon_common.events import EventPublisher

API = "http://127.0.0.1:15672/api"
AUTH = "Basic Z3Vlc3Q6Z3Vlc3Q="  # guest:guest on the loopback-only test broker


def queues_of(amqp_uri: str) -> dict[str, dict]:
    vhost = urllib.parse.quote(urllib.parse.urlparse(amqp_uri).path[1:], safe="")
    request = urllib.request.Request(f"{API}/queues/{vhost}", headers={"authorization": AUTH})
    with urllib.request.urlopen(request, timeout=10) as response:
        return {q["name"]: q for q in json.load(response)}


def test_quorum_topology_is_declared_idempotently_and_a_type_switch_is_refused(rabbit_config, monkeypatch):
    uri = rabbit_config["AMQP_URI"]
    monkeypatch.setenv("CARBON_QUEUE_TYPE", "quorum")
    names = topology.declare(uri)
    assert topology.declare(uri) == names  # idempotent
    queues = queues_of(uri)
    platform = [n for n in names if n in queues]
    assert platform and {queues[n]["type"] for n in platform} == {"quorum"}
    monkeypatch.setenv("CARBON_QUEUE_TYPE", "classic")
    with pytest.raises(topology.TopologyMismatch, match="carbon.unrouted|evt-"):
        topology.declare(uri)
    assert {q["type"] for n, q in queues_of(uri).items() if n in platform} == {"quorum"}  # nothing changed


def test_an_unknown_queue_type_is_refused(monkeypatch):
    monkeypatch.setenv("CARBON_QUEUE_TYPE", "mirrored")
    with pytest.raises(ValueError, match="classic, quorum"):
        topology.queue_type()


def test_unrouted_events_are_bounded(rabbit_config, monkeypatch):
    uri = rabbit_config["AMQP_URI"]
    monkeypatch.setenv("CARBON_UNROUTED_MAX_LENGTH", "3")
    topology.declare(uri, routes=())
    publisher = EventPublisher(uri, "account")
    for n in range(5):  # account_opened: no queue is bound for it in this vhost
        publisher.publish("account_opened", {"entry": {"entry_id": f"e{n}", "account_id": "a", "seq": 1}})
    publisher.close()
    with Connection(uri) as conn:
        _, depth, _ = conn.channel().queue_declare(topology.UNROUTED_QUEUE, passive=True)
    assert depth == 3  # the oldest were dropped, the newest kept


def test_a_sharded_route_keeps_each_account_on_one_shard(rabbit_config, monkeypatch):
    """reduction_calculated reaches account through a consistent-hash exchange on the
    `carbon-partition` header: every event of one account lands in the same shard queue."""
    from carbon_common.events import BatchPublisher

    monkeypatch.setenv("CARBON_SHARDS", "4")
    monkeypatch.setenv("CARBON_QUEUE_TYPE", "classic")  # reads with basic.get, which quorum + SAC refuses
    uri = rabbit_config["AMQP_URI"]
    route = topology.SHARDED_ROUTES[0]
    topology.declare(uri, routes=(route,))
    publisher = BatchPublisher(uri, "calc")
    owners = [f"pid-{n}" for n in range(40)]
    data = {
        "reduction_id": "r",
        "record_key": "k",
        "scenario": "metro_ride",
        "occurred_at": "2026-11-28T00:00:00Z",
        "grams": 1,
    }
    publisher.publish_many(
        [
            ("reduction_calculated", {**data, "user_pid": owner}, f"{owner}-{i}", "")
            for i in range(3)
            for owner in owners
        ]
    )
    publisher.close()
    found: dict[str, set[int]] = {}
    with Connection(uri) as conn:
        channel = conn.channel()
        for shard, queue in enumerate(topology.consumed_queues(route)):
            while (message := queue(channel).get(no_ack=True, accept=["json"])) is not None:
                found.setdefault(message.payload["data"]["user_pid"], set()).add(shard)
                assert "pid-" not in str(message.headers)  # the header is a hash, not the pseudonym
    assert sorted(found) == sorted(owners)
    assert all(len(shards) == 1 for shards in found.values())  # one account, one shard
    assert len({next(iter(s)) for s in found.values()}) > 1  # and the accounts are spread


def test_a_retired_route_stops_filling_and_goes_once_empty(rabbit_config):
    """An upgraded broker still has the queues of a retired route (the enterprise read model's
    per-record queues): declare unbinds them so nothing more piles up, deletes the empty ones,
    and leaves one still holding messages, named, for an operator."""
    uri = rabbit_config["AMQP_URI"]
    credited, debited = topology.RETIRED_ROUTES
    topology.declare(uri, routes=(credited, debited), retired=())  # as the release before declared them
    publisher = EventPublisher(uri, "account")
    publisher.publish("account_credited", {"entry": {"entry_id": "e1", "account_id": "a", "seq": 2}})
    names = topology.declare(uri, routes=())
    assert f"retired {credited.queue_name}: not empty, left unbound: {credited.queue_name}" in names
    publisher.publish("account_credited", {"entry": {"entry_id": "e2", "account_id": "a", "seq": 3}})
    publisher.close()
    with Connection(uri) as conn:
        _, depth, _ = conn.channel().queue_declare(credited.queue_name, passive=True)
    assert depth == 1  # the old message stays; the new one never came
    queues = queues_of(uri)
    assert debited.queue_name not in queues and credited.queue_name + ".retry" not in queues
    assert topology.declare(uri, routes=()) == topology.declare(uri, routes=())  # idempotent
