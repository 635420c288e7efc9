"""Processing and recalculation over FakeCalcRepository (no servers, milliseconds): one outcome
per record, redeliveries, dedup keys, caps, and a corrected factor set reversing and
recalculating each affected, unlocked reduction once. The fake keeps CalcRepository's contract
(tests/integration/test_calc_repository_contract.py)."""

import pytest

from carbon_common.batching import Delivery
from carbon_common.gm import sm3_hex

from calc.processing import handle_behaviours
from calc.recalculation import recalculate
from calc.schemas import refusal_event_id, rejection_event_id, reversal_event_id
from calc_fakes import FakeCalcRepository, FakePublisher
from carbon_dev.calc_fixtures import behaviour

EV = dict(scenario="ev_charging", occurred_at="2026-02-01T20:00:00+08:00")


@pytest.fixture
def repo():
    return FakeCalcRepository()


@pytest.fixture
def publisher():
    return FakePublisher()


def process(records, catalog, repo, publisher) -> dict:
    deliveries = [Delivery({"data": r}, message=None) for r in records]
    counts = handle_behaviours(deliveries, catalog, repo, publisher)
    return counts, deliveries


def rid(record: dict, revision: int = 0) -> str:
    return sm3_hex(f"{record['record_key']}:{revision}".encode())


# processing ------------------------------------------------------------------------------------
def test_each_record_has_one_outcome_stored_and_published(catalog, repo, publisher):
    eligible, too_far, no_key = behaviour(1), behaviour(2, distance_km="250", city="shenzhen"), behaviour(3)
    del no_key["record_key"]
    counts, deliveries = process([eligible, too_far, no_key], catalog, repo, publisher)
    assert counts == {"reduction_calculated": 1, "behaviour_rejected": 1}
    [(kind, reduction, event_id), (kind2, rejection, event_id2)] = publisher.published
    # 12.4 km × 46.7 g/pkm = 579.08 → 579
    assert (kind, reduction["grams"], event_id) == ("reduction_calculated", 579, rid(eligible))
    assert reduction["reduction_id"] == rid(eligible) and reduction["revision"] == 0
    assert (kind2, rejection["code"]) == ("behaviour_rejected", "implausible")
    assert event_id2 == rejection_event_id(too_far["record_key"])
    # not even addressable: only that delivery fails (it retries, then dead-letters)
    assert [d.failed is not None for d in deliveries] == [False, False, True]
    assert repo.count_pinned_to("methodology", "metro_ride", "1") == 1


def test_a_redelivered_record_republishes_the_same_outcome_and_stores_nothing_new(catalog, repo, publisher):
    record = behaviour(4)
    process([record, record], catalog, repo, publisher)  # twice in one batch
    process([record], catalog, repo, publisher)  # and again later
    first, *again = publisher.published
    assert again == [first, first] and first[0] == "reduction_calculated"
    assert repo.count_pinned_to("methodology", "metro_ride", "1") == 1


def test_the_first_stored_outcome_wins_even_if_the_catalog_changed(
    catalog, methodology_dir, publish_grid_correction, repo, publisher
):
    record = behaviour(5, **EV, kwh="30", region="north")
    process([record], catalog, repo, publisher)
    publish_grid_correction(methodology_dir)
    process([record], methodology_dir.catalog(), repo, publisher)
    first, again = publisher.of("reduction_calculated")
    # v2 north 2023 0.6361: 30 ÷ 0.20 × 271.8 − 30 × 636.1 = 40,770 − 19,083 = 21,687
    assert first == again and first["grams"] == 21687 and first["factor_set_version"] == "2"


def test_the_same_trip_from_two_partners_gets_one_dedup_key(catalog, repo, publisher):
    operator = {**behaviour(6), "partner_id": "metro-sz", "occurred_at": "2026-03-02T08:15:07+08:00"}
    unionpay = {
        **behaviour(7, distance_km="12.1", city="shenzhen", entry_station="POS-7781"),
        "partner_id": "unionpay",
        "user_pid": operator["user_pid"],
        "occurred_at": "2026-03-02T00:15:52Z",
    }
    other_rider = {**behaviour(8), "occurred_at": operator["occurred_at"]}
    process([operator, unionpay, other_rider], catalog, repo, publisher)
    a, b, c = publisher.of("reduction_calculated")
    # two reductions (two records), one dedup key: the account credits the trip once
    assert a["reduction_id"] != b["reduction_id"] and a["dedup_key"] == b["dedup_key"] != c["dedup_key"]


def test_reductions_carry_the_methodology_caps_for_the_account(catalog, repo, publisher):
    bill = behaviour(9, scenario="utility_bill_payment", bill_account="pseudonym-of-E1", amount_fen="12345")
    process([behaviour(10), bill], catalog, repo, publisher)
    metro, payment = publisher.of("reduction_calculated")
    assert metro["caps"] == [
        {"period": "day", "max_grams": 0, "max_count": 5, "scope": "user_scenario", "scope_key": ""}
    ]
    assert payment["grams"] == 262 and payment["caps"] == [
        {"period": "month", "max_grams": 0, "max_count": 10, "scope": "user_scenario", "scope_key": ""},
        {"period": "month", "max_grams": 0, "max_count": 1, "scope": "bill_account", "scope_key": "pseudonym-of-E1"},
    ]


# recalculation ----------------------------------------------------------------------------------
def test_a_corrected_factor_reverses_and_recalculates_each_unlocked_reduction_once(
    methodology_dir, publish_grid_correction, repo, publisher
):
    records = [
        behaviour(20, **EV, kwh="30", region="north"),
        behaviour(21, **EV, kwh="30", region="north"),
        behaviour(22, **EV, kwh="30", region="north"),  # registered at the exchange: locked
        behaviour(23, **EV, kwh="30", region="south"),  # a region the correction does not touch
        behaviour(24),  # metro: another methodology
    ]
    process(records, methodology_dir.catalog(), repo, publisher)
    first = {p["record_key"]: p for p in publisher.of("reduction_calculated")}
    locked = first[records[2]["record_key"]]["reduction_id"]
    assert repo.lock([locked, locked], "B-7") == 1
    publish_grid_correction(methodology_dir)
    catalog = methodology_dir.catalog()
    publisher.published.clear()

    lines = []
    [progress] = recalculate(catalog, repo, publisher.publish, report=lines.append)
    affected = [first[records[i]["record_key"]] for i in (0, 1, 3)]
    # the locked one: refused, said so in an event, with what the correction would have given
    refusals = [p for p in publisher.published if p[0] == "reduction_reversal_refused"]
    assert [(r["reduction_id"], r["code"], r["batch_id"]) for _, r, _ in refusals] == [
        (locked, "locked_at_exchange", "B-7")
    ]
    assert refusals[0][1]["original_grams"] > 0 and refusals[0][1]["corrected_by_version"] == "2.1"
    assert refusals[0][2] == refusal_event_id(locked)
    # per affected reduction, in _id order: its reversal, then the new reduction that supersedes it
    rest = [p for p in publisher.published if p[0] != "reduction_reversal_refused"]
    pairs = list(zip(rest[::2], rest[1::2]))
    assert len(rest) == 6
    for (rev_type, reversal, rev_id), (new_type, new, new_id) in pairs:
        assert (rev_type, new_type) == ("reduction_reversed", "reduction_calculated")
        assert rev_id == reversal_event_id(reversal["reduction_id"]) and new["supersedes"] == reversal["reduction_id"]
        assert (reversal["reason"], reversal["corrected_by_version"]) == ("factor_corrected", "2.1")
        assert (new["revision"], new["factor_set_version"], new_id) == (1, "2.1", new["reduction_id"])
    assert sorted(r["reduction_id"] for (_, r, _), _ in pairs) == sorted(a["reduction_id"] for a in affected)
    # north corrected: 40,770 − 30 × 640.0 = 21,570; south unchanged: 40,770 − 30 × 404.2 = 28,644
    assert {new["record_key"]: new["grams"] for _, (_, new, _) in pairs} == {
        records[0]["record_key"]: 21570,
        records[1]["record_key"]: 21570,
        records[3]["record_key"]: 28644,
    }
    assert (progress.total, progress.recalculated, progress.refused_locked) == (4, 3, 1)
    assert sorted(progress.reductions) == sorted(rid(records[i], 1) for i in (0, 1, 3))
    assert "3 recalculated" in lines[-1] and "1 refused (locked at the exchange)" in lines[-1]

    # run again: nothing new
    publisher.published.clear()
    [again] = recalculate(catalog, repo, publisher.publish, report=lines.append)
    assert publisher.published == [] and (again.recalculated, again.skipped_done, again.refused_locked) == (0, 4, 0)

    # a late redelivery of a recalculated record publishes nothing: its revision 0 is reversed
    counts, _ = process([records[0]], catalog, repo, publisher)
    assert (counts, publisher.published) == ({"already_reversed": 1}, [])


def test_a_correction_that_makes_a_record_ineligible_publishes_a_rejection(methodology_dir, repo, publisher):
    record = behaviour(30, scenario="walking", occurred_at="2025-03-01T22:00:00+08:00", steps="800")
    process([record], methodology_dir.catalog(), repo, publisher)
    path = methodology_dir.derive(
        "walking.v1.yml", "walking.v1.1.yml", version='"1.1"', status="corrected", supersedes='"1"'
    )
    path.write_text(path.read_text().replace('min: "500"', 'min: "1000"'))
    publisher.published.clear()
    [progress] = recalculate(methodology_dir.catalog(), repo, publisher.publish, report=lambda _: None)
    [(t1, reversal, _), (t2, rejection, event_id)] = publisher.published
    assert (t1, t2, rejection["code"]) == ("reduction_reversed", "behaviour_rejected", "below_minimum")
    assert event_id == rejection_event_id(record["record_key"], 1) and reversal["reduction_id"] == rid(record)
    assert (progress.recalculated, progress.now_rejected) == (0, 1)


def test_a_crash_before_the_reversal_is_stored_repeats_the_same_events(
    methodology_dir, publish_grid_correction, repo, publisher, monkeypatch
):
    record = behaviour(40, **EV, kwh="30", region="north")
    process([record], methodology_dir.catalog(), repo, publisher)
    publish_grid_correction(methodology_dir)
    catalog = methodology_dir.catalog()
    publisher.published.clear()

    def store_lost(payload):
        raise ConnectionError("store lost")

    monkeypatch.setattr(repo, "save_reversal", store_lost)
    with pytest.raises(ConnectionError):
        recalculate(catalog, repo, publisher.publish, report=lambda _: None)
    monkeypatch.undo()
    crashed = list(publisher.published)
    publisher.published.clear()
    [progress] = recalculate(catalog, repo, publisher.publish, report=lambda _: None)
    # consumers dedupe by event id: the repeat is the same two events
    assert publisher.published == crashed and len(crashed) == 2 and progress.recalculated == 1
