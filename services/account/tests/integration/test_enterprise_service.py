"""Enterprise accounts in the account nameko service on the real broker and FerretDB: calc's
reductions credited with enterprise scope enforced (an enterprise earns from its green
electricity, an individual's such record is declined scope_mismatch, an enterprise-scope record
for an owner without an account is parked, never opened as an individual's), and the aggregate
built by the service's own read-model queues from its account events: the linked employees'
credits per scenario, a reversal subtracted, an unlinked employee's credits left out, a group
of two riders withheld."""

import pytest
from kombu import Connection

from carbon_common import topology
from carbon_common.events import EventPublisher
from carbon_dev import payloads
from carbon_dev.testing import TEST_MONGO_URI, free_port, wait_until
from nameko.testing.services import entrypoint_hook

from account import ledger
from account.enterprise import links
from account.enterprise.enterprise import Enterprises
from account.enterprise.store import EnterpriseStore
from account.outbox import event_items
from account.service import AccountService

CONSENTED = "2026-12-01T00:00:00.000000Z"


@pytest.fixture
def service(container_factory, platform_amqp, repo):
    config = dict(
        platform_amqp,
        MONGO_URI=TEST_MONGO_URI,
        MONGO_DATABASE=repo.db.name,
        WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
        ENTERPRISE_MIN_GROUP="3",
        max_workers=4,
    )
    container = container_factory(AccountService, config)
    container.start()
    return container


@pytest.fixture
def calc(platform_amqp):
    publisher = EventPublisher(platform_amqp["AMQP_URI"], "calc")
    yield publisher
    publisher.close()


def dlq_depth(amqp_uri: str) -> int:
    route = topology.find_route("calc", "reduction_calculated", "account", "handle_reduction_calculated")
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(route.queue_name + ".dlq", passive=True).message_count


def test_the_aggregate_follows_linked_credits_and_enterprise_scope_holds(
    service, calc, ops, repo, platform_amqp, make_reduction, event_listener
):
    declined = event_listener("account", "reduction_declined")
    enterprises = Enterprises(ops, EnterpriseStore(repo.db), min_group=3)
    acme = ops.open_account("pid-acme", "enterprise")["_id"]
    staff = [ops.open_account(f"pid-s{i}")["_id"] for i in range(5)]
    for i, employee in enumerate(staff):
        enterprises.link(employee, acme, f"link-{i}", f"consent-{i}", CONSENTED)
    ops.open_account("pid-outsider")
    enterprises.unlink(staff[4], acme, "unlink-4")  # s4 left before any ride

    rides = [make_reduction(user_pid=f"pid-s{i}", grams=100 + i) for i in range(5)]
    rides += [make_reduction(user_pid="pid-outsider", grams=999)]
    rides += [make_reduction(user_pid=f"pid-s{i}", grams=40, scenario="bike_ride") for i in range(2)]
    office = make_reduction(user_pid="pid-acme", grams=4_642_800, scenario="green_electricity_office")
    by_person = make_reduction(user_pid="pid-s0", grams=9_000, scenario="green_electricity_office")
    nobody = make_reduction(user_pid="pid-unopened-firm", grams=5_000, scenario="green_electricity_office")
    for red in [*rides, office, by_person, nobody]:
        calc.publish("reduction_calculated", red, event_id=red["reduction_id"])

    month = links.period_of(ledger.utc_now_iso())

    def groups():
        return {g["scenario"]: g for g in enterprises.aggregate(acme, month)["groups"]}

    wait_until(
        lambda: groups().get("metro_ride", {}).get("grams") == 100 + 101 + 102 + 103,
        timeout=60,
        message="the linked employees' rides in the enterprise's aggregate",
    )
    assert groups()["metro_ride"]["contributors"] == 4
    wait_until(lambda: "bike_ride" in groups(), timeout=30, message="the bike rides handled")
    assert groups()["bike_ride"] == {
        "scenario": "bike_ride",
        "withheld": True,
        "contributors": 0,
        "grams": 0,
        "reversed_grams": 0,
    }

    # enterprise scope: the enterprise earned from its office's green power, the person did not
    wait_until(lambda: ops.appender.head(acme)["balance"] == 4_642_800, timeout=30, message="acme credited")
    [refusal] = [e for e in declined.wait(1, timeout=30) if e["data"]["reduction_id"] == by_person["reduction_id"]]
    assert refusal["data"]["code"] == "scope_mismatch"
    assert "green_electricity_office" not in groups()  # the enterprise's own credit is no employee's
    # no account for the unopened firm: the record is parked, nothing opened as an individual's
    wait_until(lambda: dlq_depth(platform_amqp["AMQP_URI"]) == 1, timeout=60, message="parked in the DLQ")
    assert repo.get_account(ledger.account_id_for("pid-unopened-firm")) is None

    # a reversal of s0's ride is subtracted where the ride counted
    calc.publish(
        "reduction_reversed",
        {
            "reduction_id": rides[0]["reduction_id"],
            "record_key": rides[0]["record_key"],
            "user_pid": "pid-s0",
            "scenario": "metro_ride",
            "reason": "factor_corrected",
        },
        event_id="rev-" + rides[0]["reduction_id"],
    )
    wait_until(
        lambda: groups()["metro_ride"]["reversed_grams"] == 100,
        timeout=60,
        message="the reversal subtracted",
    )
    assert (groups()["metro_ride"]["grams"], groups()["metro_ride"]["contributors"]) == (101 + 102 + 103, 3)


def test_events_an_upgrade_left_in_the_retired_queues_reach_the_aggregate(service, ops, repo, platform_amqp):
    """Credits the release before this one published to the read model's own queue, never consumed
    before the upgrade unbound it: the service's drain applies them, once, rejects a message that
    is no event in the queue's DLQ, and deletes what is left empty."""
    uri = platform_amqp["AMQP_URI"]
    enterprises = Enterprises(ops, EnterpriseStore(repo.db), min_group=3)
    acme = ops.open_account("pid-acme-2", "enterprise")["_id"]
    staff = [ops.open_account(f"pid-r{i}")["_id"] for i in range(3)]
    for i, employee in enumerate(staff):
        enterprises.link(employee, acme, f"link-r{i}", f"consent-r{i}", CONSENTED)
    # the ledger credits, as the old release posted them; their events as it published them
    entries, _ = ops.credit_many([payloads.reduction(f"pid-r{i}", 1, 200 + i, scenario="metro_ride") for i in range(3)])
    topology.declare(uri, routes=topology.RETIRED_ROUTES, retired=())  # the old release's queues
    publisher = EventPublisher(uri, "account")
    for entry in entries:
        for event_type, data, event_id, _ in event_items(entry):
            publisher.publish(event_type, data, event_id=event_id)
    publisher.close()
    with Connection(uri) as conn:  # what is no event at all: its old consumer dead-lettered it
        conn.default_channel.basic_publish(
            conn.default_channel.prepare_message(b"not json", content_type="application/json"),
            routing_key=topology.RETIRED_ROUTES[0].queue_name,
        )
    topology.declare(uri)  # the upgrade's topology Job: unbound, left (not empty)
    month = links.period_of(ledger.utc_now_iso())
    assert enterprises.aggregate(acme, month)["groups"] == []  # the new queue never saw them

    with entrypoint_hook(service, "drain_retired_queues") as drain:
        done = drain()
        again = drain()
    (metro,) = enterprises.aggregate(acme, month)["groups"]
    assert (metro["scenario"], metro["grams"], metro["contributors"]) == ("metro_ride", 200 + 201 + 202, 3)
    credited = topology.RETIRED_ROUTES[0].queue_name
    assert done["drained"] == {credited: 4} and done["parked"] == 1
    assert done["left"] == [f"retired {credited}: not empty, left unbound: {credited}.dlq"]  # for an operator
    assert again == {"drained": {}, "parked": 0, "left": []}  # the queue is gone: nothing more to do
    with Connection(uri) as conn:
        assert conn.default_channel.queue_declare(credited + ".dlq", passive=True).message_count == 1
    names = queue_names(uri)
    assert credited not in names and topology.RETIRED_ROUTES[1].queue_name not in names


def queue_names(uri: str) -> set[str]:
    """The broker's queues that exist, of the retired routes (passive declares)."""
    from amqp.exceptions import NotFound

    found = set()
    with Connection(uri) as conn:
        for route in topology.RETIRED_ROUTES:
            for name in (route.queue_name, route.queue_name + ".retry", route.queue_name + ".dlq"):
                channel = conn.channel()
                try:
                    channel.queue_declare(name, passive=True)
                    found.add(name)
                except NotFound:
                    continue
                finally:
                    if channel.is_open:
                        channel.close()
    return found
