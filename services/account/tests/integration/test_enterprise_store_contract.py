"""The fake enterprise store (tests/enterprise_fakes.py) and EnterpriseStore on FerretDB held to the
same assertions, and the enterprise paths on FerretDB asking for `_id` lookups only: linking,
the read model, the aggregate and the scope guard before a credit batch (pymongo command
monitoring, as test_account_hot_path.py does for the crediting path)."""

import pytest

from account import ledger
from account.enterprise import links
from account.enterprise.enterprise import Enterprises
from account.enterprise.readmodel import ReadModel, item_of
from account.enterprise.scope import ScopeGuard
from account.enterprise.store import EnterpriseStore
from account.operations import LedgerOperations
from account.outbox import events_for
from account.repository import Repository
from account.tiers import Tiers
from carbon_dev import payloads

from enterprise_fakes import FakeEnterpriseStore


@pytest.fixture(params=["fake", "ferretdb"])
def store(request, mongo_database):
    if request.param == "fake":
        return FakeEnterpriseStore()
    real = EnterpriseStore(mongo_database("account"))
    real.ensure_indexes()
    return real


def test_inserts_are_unique_and_reads_are_by_id(store):
    doc = {"_id": "ent:emp:0", "action": "link", "at": "t"}
    assert store.insert_link(doc) is True
    assert store.insert_link({**doc, "at": "other"}) is False
    assert store.links_by_ids(["ent:emp:0", "ent:emp:1", "ent:emp:0"]) == {"ent:emp:0": doc}
    assert store.insert_request({"_id": "r1", "action": "link"}) is True
    assert store.insert_request({"_id": "r1", "action": "unlink"}) is False
    assert store.get_request("r1")["action"] == "link" and store.get_request("r2") is None
    assert store.insert_member({"_id": "emp:0", "enterprise_id": "ent"}) is True
    assert store.insert_member({"_id": "emp:0", "enterprise_id": "other"}) is False
    assert store.members_by_ids(["emp:0", "emp:1"]) == {"emp:0": {"_id": "emp:0", "enterprise_id": "ent"}}
    slots = [{"_id": f"ent:2026-12:{n}", "contributions": [{"entry_id": str(n)}]} for n in range(3)]
    assert store.insert_slots(slots[:2]) == set()
    assert store.insert_slots([slots[1], slots[2], slots[0]]) == {0, 2}
    assert sorted(store.slots_by_ids([s["_id"] for s in slots])) == [s["_id"] for s in slots]
    assert store.slots_by_ids([slots[1]["_id"]])[slots[1]["_id"]]["contributions"] == [{"entry_id": "1"}]
    assert store.slot_ids_among([slots[0]["_id"], "ent:2026-12:9"]) == {slots[0]["_id"]}
    store.insert_contributions([{"_id": "e1", "parts": [1]}])
    store.insert_contributions([{"_id": "e1", "parts": [2]}, {"_id": "e2", "parts": [3]}])  # the first stays
    assert {k: v["parts"] for k, v in store.contributions_by_ids(["e1", "e2", "e3"]).items()} == {
        "e1": [1],
        "e2": [3],
    }
    key = store.pseudonym_key()
    assert len(key) == 32 and store.pseudonym_key() == key


def test_many_ids_are_read_in_chunks(store):
    ids = [f"ent:2026-12:{n}" for n in range(6000)]
    store.insert_slots([{"_id": i, "contributions": []} for i in ids[:5500]])
    assert len(store.slots_by_ids(ids)) == 5500


def test_enterprise_paths_ask_for_id_lookups_only(recorded_database):
    make, recorder = recorded_database
    repo = Repository(make("account"))
    repo.ensure_indexes()
    ops = LedgerOperations(repo, Tiers("seedling:0,sprout:1000"))
    store = EnterpriseStore(repo.db)
    enterprises = Enterprises(ops, store, min_group=2)
    acme = ops.open_account("pid-acme", "enterprise")["_id"]
    employees = [ops.open_account(f"pid-e{i}")["_id"] for i in range(3)]
    recorder.clear()
    for n, employee in enumerate(employees):
        enterprises.link(employee, acme, f"k{n}", f"consent-{n}", "2026-12-01T00:00:00.000000Z")
    enterprises.unlink(employees[2], acme, "k-off")
    enterprises.links_of(employees[0])
    # a credit batch: the scope guard, then the ledger as always
    guard = ScopeGuard(ops)
    batch = [payloads.reduction(f"pid-e{i % 3}", 9000 + i, 50) for i in range(12)]
    batch += [payloads.reduction("pid-acme", 9100, 4000, scenario="green_electricity_office")]
    batch += [payloads.reduction("pid-e0", 9101, 4000, scenario="green_electricity_office")]
    screened = guard.screen(batch)
    entries, _ = ops.credit_many([batch[i] for i in screened.kept])
    assert [e["code"] for _, e in screened.declined] == ["scope_mismatch"]
    # the read model and the aggregate
    readmodel = ReadModel(enterprises)
    items = [item_of(t, p) for e in entries for t, _, p in events_for(e)]
    readmodel.apply([i for i in items if i is not None])
    readmodel.apply([i for i in items if i is not None])  # redelivered
    month = links.period_of(entries[0]["posted_at"])
    view = enterprises.aggregate(acme, month)
    assert recorder.not_by_id() == []
    assert view["groups"] == [
        {"scenario": "metro_ride", "withheld": False, "contributors": 2, "grams": 400, "reversed_grams": 0}
    ]
    assert ledger.account_id_for("pid-acme") == acme
