"""The enterprise methods through the real `python -m account.grpc_server` process on FerretDB:
an enterprise opened with OpenAccount, employees link with their consent (a repeat is a replay),
see their links and unlink; the enterprise's aggregate of the month as the read model built it
(here applied in the test from the ledger's own events; the service's queues do it in
test_enterprise_service.py), with a small group withheld."""

import pytest

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account import ledger
from account.enterprise import links
from account.enterprise.enterprise import Enterprises
from account.enterprise.readmodel import ReadModel, item_of
from account.enterprise.store import EnterpriseStore
from account.outbox import events_for

import test_account_grpc

call = test_account_grpc.call
grpc_process = test_account_grpc.grpc_process


@pytest.fixture
def server(grpc_process):
    return grpc_process(ENTERPRISE_MIN_GROUP="3")


def rpc(address, method, request):
    return call(address, lambda channel: getattr(pb_grpc.AccountServiceStub(channel), method)(request, timeout=10))


def test_open_link_see_unlink_and_the_aggregate(server, ops, repo, make_reduction):
    address = server["grpc"]
    opened = rpc(address, "OpenAccount", pb.OpenAccountRequest(owner_pid="pid-acme", kind="enterprise", alias="Acme"))
    assert opened.account.kind == "enterprise"
    acme = pb.AccountRef(account_id=opened.account.account_id)
    names = [f"pid-e{i}" for i in range(4)]
    for name in names:
        ops.open_account(name)

    def link(name, key):
        return rpc(
            address,
            "LinkEnterprise",
            pb.LinkEnterpriseRequest(
                employee=pb.AccountRef(owner_pid=name),
                enterprise=acme,
                consent_ref=f"app-{name}",
                consented_at="2026-12-01T08:00:00+08:00",
                request_key=key,
            ),
        )

    first = link("pid-e0", "k0")
    assert (first.link.linked, first.replayed, first.link.consent_ref) == (True, False, "app-pid-e0")
    assert first.link.consented_at == "2026-12-01T00:00:00.000000Z"  # as given, in UTC
    again = link("pid-e0", "k0")
    assert again.replayed and again.link.linked_at == first.link.linked_at
    for i, name in enumerate(names[1:], 1):
        link(name, f"k{i}")
    mine = rpc(
        address, "ListEnterpriseLinks", pb.ListEnterpriseLinksRequest(employee=pb.AccountRef(owner_pid="pid-e3"))
    )
    assert [(x.enterprise_account_id, x.linked) for x in mine.links] == [(opened.account.account_id, True)]
    left = rpc(
        address,
        "UnlinkEnterprise",
        pb.UnlinkEnterpriseRequest(
            employee=pb.AccountRef(owner_pid="pid-e3"), enterprise=acme, request_key="bye", reason="left_company"
        ),
    )
    assert (left.link.linked, left.link.unlinked_at > left.link.linked_at, left.link.changes) == (False, True, 2)

    # credits: rides of e0..e3 (e3 after leaving), bike rides of two; the read model applies them
    entries = [ops.credit(make_reduction(user_pid=name, grams=100 + i)) for i, name in enumerate(names)]
    entries += [ops.credit(make_reduction(user_pid=name, grams=30, scenario="bike_ride")) for name in names[:2]]
    enterprises = Enterprises(ops, EnterpriseStore(repo.db), min_group=3)
    items = [item_of(t, p) for e in entries for t, _, p in events_for(e)]
    ReadModel(enterprises).apply([i for i in items if i is not None])
    month = links.period_of(entries[0]["posted_at"])
    view = rpc(address, "GetEnterpriseAggregate", pb.GetEnterpriseAggregateRequest(enterprise=acme, month=month))
    assert (view.month, view.min_group, view.reported_grams, view.withheld_groups) == (month, 3, 303, 1)
    assert [(g.scenario, g.withheld, g.contributors, g.grams) for g in view.groups] == [
        ("bike_ride", True, 0, 0),
        ("metro_ride", False, 3, 100 + 101 + 102),
    ]
    assert ledger.account_id_for("pid-e0") not in str(view)


def test_the_demo_sets_up_once_and_prints_the_view(server, ops, repo, make_reduction):
    """carbon_dev.enterprise_demo, what `make run` can call: idempotent set-up, then the view."""
    from account.enterprise.view import view_lines
    from carbon_dev.enterprise_demo import set_up

    pids = [f"pid-d{i}" for i in range(3)]
    first = call(server["grpc"], lambda ch: set_up(pb_grpc.AccountServiceStub(ch), "pid-demo-ent", pids))
    again = call(server["grpc"], lambda ch: set_up(pb_grpc.AccountServiceStub(ch), "pid-demo-ent", pids))
    assert first == again == ledger.account_id_for("pid-demo-ent")
    assert len(EnterpriseStore(repo.db).links_by_ids([f"{first}:{ledger.account_id_for(p)}:1" for p in pids])) == 0
    entries = [ops.credit(make_reduction(user_pid=p, grams=50)) for p in pids]
    items = [item_of(t, p) for e in entries for t, _, p in events_for(e)]
    ReadModel(Enterprises(ops, EnterpriseStore(repo.db), min_group=3)).apply([i for i in items if i is not None])
    month = links.period_of(entries[0]["posted_at"])
    lines = call(server["grpc"], lambda ch: view_lines(pb_grpc.AccountServiceStub(ch), "pid-demo-ent", month))
    assert any("metro_ride" in line and "3 employees" in line and "150 g" in line for line in lines), lines
    assert "reported 150 g, 0 group(s) withheld" in lines[-1]
