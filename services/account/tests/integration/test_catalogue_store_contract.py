"""FakeCatalogueStore (the unit tests' stand-in) and CatalogueStore on FerretDB held to the same
assertions: unique `_id`s, deletes conditional on the holder's attempt, the first decision wins,
the markers' queries. So the fake cannot drift from the real store unnoticed."""

from datetime import datetime, timezone

import pytest

from account.catalogue.store import CatalogueStore

from catalogue_fakes import FakeCatalogueStore

T0 = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["fake", "ferretdb"])
def store(request, mongo_database):
    if request.param == "fake":
        return FakeCatalogueStore()
    real = CatalogueStore(mongo_database("catalogue"))
    real.ensure_indexes()
    return real


def test_versions_and_heads(store):
    assert store.insert_head("tea") and not store.insert_head("tea")
    assert store.insert_version({"_id": "tea:1", "item_id": "tea", "version": 1})
    assert not store.insert_version({"_id": "tea:1", "item_id": "tea", "version": 1, "other": True})
    store.raise_heads({"tea": 1})
    store.raise_heads({"tea": 0})  # never lowered
    assert store.head_hints(["tea", "coffee"]) == {"tea": 1}
    store.insert_head("coffee")
    store.insert_head("bread")
    assert store.list_heads() == ["bread", "coffee", "tea"]
    assert store.list_heads(after="bread", limit=1) == ["coffee"]
    assert set(store.versions_by_ids(["tea:1", "tea:2"])) == {"tea:1"}
    assert store.version("tea:1")["version"] == 1 and store.version("tea:2") is None


def test_claims_are_unique_and_only_their_attempt_removes_them(store):
    claim = {"_id": "tea:s1:1", "attempt": "a", "redemption": "r1", "item_id": "tea", "at": T0}
    assert store.insert_claim(claim)
    assert not store.insert_claim({**claim, "attempt": "b"})
    assert store.insert_claims([{**claim, "attempt": "b"}, {**claim, "_id": "tea:s1:2", "attempt": "b"}]) == {0}
    assert store.held(["tea:s1:1", "tea:s1:2", "tea:s1:3"]) == {"tea:s1:1", "tea:s1:2"}
    assert store.delete_claims(["tea:s1:1", "tea:s1:2"], "b") == 1  # only b's
    assert store.claims_by_ids(["tea:s1:1"])["tea:s1:1"]["attempt"] == "a"
    assert store.delete_claims(["tea:s1:1"], "a") == 1 and store.held(["tea:s1:1"]) == set()


def test_redemptions_decisions_and_open_markers(store):
    assert store.insert_redemption({"_id": "r1", "attempt": "a", "title": "Tea", "item_id": "tea"})
    assert not store.insert_redemption({"_id": "r1", "attempt": "b", "title": "Tea", "item_id": "tea"})
    assert store.redemptions_by_ids(["r1"], {"title": 1})["r1"] == {"_id": "r1", "title": "Tea"}
    store.delete_redemption("r1", "b")  # not its attempt: stays
    assert store.get_redemption("r1")["attempt"] == "a"
    store.delete_redemption("r1", "a")
    assert store.get_redemption("r1") is None

    first, ours = store.decide({"_id": "r1:report", "outcome": "confirmed"})
    again, ours_again = store.decide({"_id": "r1:report", "outcome": "failed"})
    assert (first["outcome"], ours, again["outcome"], ours_again) == ("confirmed", True, "confirmed", False)
    store.record_closed({"_id": "r1:closed", "fate": "settled"})
    store.record_closed({"_id": "r1:closed", "fate": "refunded"})  # the first fate stays
    assert store.fulfilment_docs(["r1:closed"])["r1:closed"]["fate"] == "settled"

    for rid, fulfil_by in (("r1", "2026-12-07T05:00:00.000000Z"), ("r2", "2026-12-07T06:00:00.000000Z")):
        store.add_open({"_id": rid, "fulfil_by": fulfil_by, "announced": False, "created_at": T0})
    store.add_open({"_id": "r1", "fulfil_by": "2099", "announced": False, "created_at": T0})  # same marker
    assert sorted(m["_id"] for m in store.unannounced(10)) == ["r1", "r2"]
    store.mark_announced(["r1"])
    assert [m["_id"] for m in store.unannounced(10)] == ["r2"]
    assert [m["_id"] for m in store.due("2026-12-07T05:30:00.000000Z", 10)] == ["r1"]
    store.drop_open(["r1", "r2"])
    assert store.unannounced(10) == [] and store.due("2100", 10) == []


def test_concurrent_claims_share_inserts_and_each_slot_has_one_holder(store):
    """50 threads, two per slot: each slot is held once, and each caller is told exactly which
    of its own documents lost (the real store inserts concurrent callers' claims together)."""
    import threading

    results, barrier = {}, threading.Barrier(50)

    def claim(n):
        docs = [{"_id": f"tea:s1:{n // 2}", "attempt": f"a{n}", "redemption": f"r{n}", "item_id": "tea", "at": T0}]
        docs.append({**docs[0], "_id": f"tea:c{n}:day:1"})  # a limit slot of its own: always free
        barrier.wait()
        results[n] = store.insert_claims(docs)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for slot in range(25):
        assert sorted([results[2 * slot], results[2 * slot + 1]], key=len) == [set(), {0}]
    held = store.claims_by_ids([f"tea:s1:{slot}" for slot in range(25)])
    assert all(held[f"tea:s1:{n // 2}"]["attempt"] == f"a{n}" for n in range(50) if results[n] == set())
    assert store.held(f"tea:c{n}:day:1" for n in range(50)) == {f"tea:c{n}:day:1" for n in range(50)}
