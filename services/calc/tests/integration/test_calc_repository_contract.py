"""One contract, two implementations: the same assertions against FakeCalcRepository (what the
fast tests use) and the real CalcRepository on FerretDB. What processing and recalculation rely
on: outcomes inserted once per _id with the stored one winning (also within one batch), reads
of reductions by pinned version, first-writer-wins reversals, idempotent locks. If the fake
drifts from the real repository, its case fails here."""

from datetime import timedelta

import pytest

from calc.loader import load_catalog
from calc.processing import outcome_doc, outcome_for
from calc.repository import CalcRepository
from calc_fakes import FakeCalcRepository
from carbon_dev.calc_fixtures import behaviour

EV = dict(scenario="ev_charging", occurred_at="2026-02-01T20:00:00+08:00", kwh="30")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(params=["fake", pytest.param("ferretdb", marks=pytest.mark.integration)])
def repo(request):
    if request.param == "fake":
        return FakeCalcRepository()
    real = CalcRepository(request.getfixturevalue("calc_db"))
    real.ensure_indexes()
    return real


def outcome(catalog, n: int, revision: int = 0, **record) -> dict:
    data = behaviour(n, **record)
    return outcome_doc(data, outcome_for(data, catalog), revision)


def without_time(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "stored_at"}


def test_an_outcome_is_stored_once_per_id_and_the_first_stored_wins(repo, catalog):
    first, other = outcome(catalog, 1), outcome(catalog, 2, distance_km="250", city="shenzhen")  # a rejection
    assert repo.save_outcomes([first, other]) == [(first, True), (other, True)]
    changed = outcome(catalog, 1)
    changed["payload"] = {**changed["payload"], "grams": 1}  # e.g. computed again under another catalog
    [(stored, inserted)] = repo.save_outcomes([changed])
    assert not inserted and without_time(stored) == without_time(first)
    # stored times read back in UTC, to the millisecond
    assert stored["stored_at"].utcoffset() == timedelta(0)
    assert abs(stored["stored_at"] - first["stored_at"]) < timedelta(milliseconds=1)


def test_a_batch_keeps_its_order_and_a_repeat_within_it_gets_the_first(repo, catalog):
    a, b = outcome(catalog, 3), outcome(catalog, 4)
    stored = repo.save_outcomes([a, b, outcome(catalog, 3), a])
    assert [inserted for _, inserted in stored] == [True, True, False, False]
    assert [doc["_id"] for doc, _ in stored] == [a["_id"], b["_id"], a["_id"], a["_id"]]
    assert without_time(stored[2][0]) == without_time(stored[3][0]) == without_time(a)
    assert repo.save_outcomes([]) == []


def test_reductions_are_read_by_pinned_version_in_id_order(repo, catalog):
    metro = [outcome(catalog, n) for n in (5, 6, 7)]
    ev = outcome(catalog, 8, **EV, region="north")
    recalculated = outcome(catalog, 5, revision=1)
    rejected = outcome(catalog, 9, distance_km="250", city="shenzhen")  # names metro_ride v1 too
    repo.save_outcomes([*metro, ev, recalculated, rejected])
    pinned = list(repo.pinned_to("methodology", "metro_ride", "1"))
    expected = sorted([*metro, recalculated], key=lambda d: d["_id"])
    assert [without_time(d) for d in pinned] == [without_time(d) for d in expected]
    assert rejected["kind"] == "rejection" and repo.count_pinned_to("methodology", "metro_ride", "1") == 4
    [grid] = repo.pinned_to("factor_set", "cn_grid_average", "2")
    assert grid["payload"] == ev["payload"] and grid["record"] == ev["record"]
    assert repo.count_pinned_to("factor_set", "cn_grid_average", "2") == 1
    assert list(repo.pinned_to("methodology", "metro_ride", "9")) == []
    assert repo.count_pinned_to("methodology", "ev_charging", "1") == 1


def test_a_reduction_is_reversed_once(repo, catalog):
    doc = outcome(catalog, 10)
    payload = {"reduction_id": doc["_id"], "record_key": doc["record_key"], "corrected_by_version": "1.1"}
    assert not repo.is_reversed(doc["_id"]) and repo.reversed_among([doc["_id"]]) == set()
    saved, inserted = repo.save_reversal(payload)
    assert inserted and saved["_id"] == doc["_id"] and saved["payload"] == payload
    again, inserted = repo.save_reversal({**payload, "corrected_by_version": "1.2"})
    assert not inserted and again["payload"] == payload
    assert repo.is_reversed(doc["_id"])
    assert repo.reversed_among([doc["_id"], "other", doc["_id"]]) == {doc["_id"]}
    assert repo.reversed_among([]) == set()


def test_locks_are_idempotent_and_counted_once(repo):
    assert repo.lock(["r1", "r2", "r1"], "B-1") == 2
    assert repo.lock(["r2", "r3"], "B-2") == 1
    assert repo.lock([], "B-3") == 0
    assert [repo.is_locked(r) for r in ("r1", "r2", "r3", "r4")] == [True, True, True, False]
    # the first batch that locked a reduction is the one a refusal names
    assert [(repo.lock_of(r) or {}).get("batch_id") for r in ("r1", "r2", "r3", "r4")] == ["B-1", "B-1", "B-2", None]


def test_a_forgotten_person_s_outcomes_and_reversals_no_longer_name_them(repo, catalog):
    mine = [outcome(catalog, 11), outcome(catalog, 12, distance_km="250", city="shenzhen")]  # a rejection too
    mine += [outcome(catalog, 11, revision=1)]
    for doc in mine:
        for part in (doc["payload"], doc["record"]):
            part["user_pid"] = "f" * 64
    other = outcome(catalog, 13)
    repo.save_outcomes([*mine, other])
    repo.save_reversal({"reduction_id": mine[0]["_id"], "user_pid": "f" * 64, "corrected_by_version": "1.1"})
    repo.save_reversal({"reduction_id": other["_id"], "user_pid": other["payload"]["user_pid"]})
    assert repo.forgotten_among(["f" * 64, "", "e" * 64]) == set()

    assert repo.forget_person("f" * 64, "2026-11-25T08:00:00Z") == {"new": True, "outcomes": 3, "reversals": 1}
    assert repo.forgotten_among(["f" * 64, "e" * 64]) == {"f" * 64}
    stored = {doc["_id"]: doc for doc, _ in repo.save_outcomes([*mine, other])}  # read back
    for doc in mine:
        kept = stored[doc["_id"]]
        assert kept["payload"]["user_pid"] == kept["record"]["user_pid"] == "" and kept["forgotten"] is True
        assert kept["payload"].get("dedup_key", "") == ""
        assert kept["payload"].get("grams") == doc["payload"].get("grams")  # pseudonymous amounts stay
        assert kept["record"]["activity"] == doc["record"]["activity"]
    assert without_time(stored[other["_id"]]) == without_time(other)
    # a forgotten person's reductions are never recalculated
    assert [d["_id"] for d in repo.pinned_to("methodology", "metro_ride", "1")] == [other["_id"]]
    assert repo.count_pinned_to("methodology", "metro_ride", "1") == 1
    # a repeat finds nothing left to rewrite
    assert repo.forget_person("f" * 64, "2026-11-26T00:00:00Z") == {"new": False, "outcomes": 0, "reversals": 0}


def test_outcomes_a_batch_stored_are_rewritten_by_id(repo, catalog):
    doc = outcome(catalog, 14)
    repo.save_outcomes([doc])
    assert repo.scrub_outcomes_by_ids([doc["_id"], "missing"]) == 1
    [(kept, _)] = repo.save_outcomes([doc])
    assert kept["record"]["user_pid"] == "" and kept["forgotten"] is True
