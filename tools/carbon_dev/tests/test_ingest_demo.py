"""The demo generator stays inside the scenario contract: ingest's validator accepts every record
it means to be good and refuses the few it spoils on purpose (no servers)."""

import random
from datetime import datetime, timedelta

import pytest

from carbon_common.scenarios import scenarios, scope_of
from carbon_dev import ingest_demo
from ingest.errors import RecordError
from ingest.validation import validate_record

DAY = datetime(2026, 11, 24, tzinfo=ingest_demo.CST)
NOW = DAY + timedelta(days=1, hours=1)


def as_partner_sends(scenario: str, activity: dict) -> dict:
    return {
        "record_id": "demo-1",
        "customer_ref": "6222000000000001",
        "scenario": scenario,
        "occurred_at": "2026-11-24T08:00:00+08:00",
        "activity": activity,
    }


INDIVIDUAL = sorted(s for s in scenarios() if scope_of(s) == "individual")


def test_the_demo_sends_every_individual_scenario_of_the_contract():
    """The demo's customers are people: an enterprise-scope scenario (green_electricity_office)
    earns only for enterprise accounts, so the demo day has none."""
    assert set(ingest_demo.WEIGHTS) == set(INDIVIDUAL)
    assert sorted(s for _, allowed in ingest_demo.PARTNERS.values() for s in allowed) == INDIVIDUAL
    assert {s for s, _ in ingest_demo.NUMBERS} <= set(INDIVIDUAL)


@pytest.mark.parametrize("scenario", INDIVIDUAL)
def test_every_generated_activity_is_valid_for_ingest(scenario):
    rng = random.Random(scenario)
    for _ in range(300):
        activity = ingest_demo._activity(rng, scenario, "6222000000000042")
        assert list(activity) == list(scenarios()[scenario])  # every field, optional ones too
        validate_record(as_partner_sends(scenario, activity), NOW)


def test_a_demo_day_is_valid_but_for_the_records_spoiled_on_purpose():
    plan = ingest_demo.day_of_records(ingest_demo.customers(20), 3000, DAY)
    refused = []
    for record in (r for records in plan.values() for r in records):
        try:
            validate_record(record, NOW)
        except RecordError as err:
            refused.append(err.code)
    assert 0 < len(refused) < 3000 * 0.03
    assert set(refused) <= {"out_of_range", "computed_field_not_allowed"}


def test_a_demo_day_happens_after_the_consents_it_relies_on():
    """ingest refuses a record from before its consent (outside_consent): the day is moved into
    the minutes after the last grant, in order, and stays acceptable (at most 300 s ahead)."""
    start = datetime(2026, 11, 25, 3, 0, 5, tzinfo=ingest_demo.CST)
    plan = ingest_demo.after_consent(ingest_demo.day_of_records(ingest_demo.customers(20), 500, DAY), DAY, start)
    for records in plan.values():
        times = [datetime.fromisoformat(r["occurred_at"].replace("Z", "+00:00")) for r in records]
        assert times == sorted(times)
        assert all(start <= t < start + ingest_demo.CONSENTED_SPAN for t in times)
        for record in records:
            try:
                validate_record(record, start)
            except RecordError as err:
                assert err.code in {"out_of_range", "computed_field_not_allowed"}


def test_the_programme_households_make_whole_tonnes_of_one_group_honestly():
    """`make run`'s exchange step needs one methodology and vintage with 3 t or more (carbon_dev.
    bridge_demo: whatever the bridge's timer does, one batch issues 2 units or more, with a
    remainder): the households' readings are valid records that calc's own methodology turns into
    tens of kilograms each, for households that are not the day's customers."""
    from calc import domain
    from calc.loader import load_catalog

    at = datetime(2026, 12, 7, 10, 0, tzinfo=ingest_demo.CST)
    homes = ingest_demo.households()
    assert not set(homes) & set(ingest_demo.customers(50))
    readings = ingest_demo.household_readings(homes, at)
    again = ingest_demo.household_readings(homes, at + timedelta(days=1))  # the same month: the same readings
    assert [(r["record_id"], r["activity"]) for r in again] == [(r["record_id"], r["activity"]) for r in readings]
    assert len({r["record_id"] for r in readings}) == len(homes) == ingest_demo.HOUSEHOLDS
    catalog, total = load_catalog(), 0
    for record in readings:
        validate_record(record, at)
        result = domain.calculate(
            domain.Record(record["scenario"], at, {k: str(v) for k, v in record["activity"].items()}, "pid"), catalog
        )
        assert isinstance(result, domain.Calculation), result
        assert result.methodology.id == "household_electricity" and 40_000 < result.grams < 100_000
        total += result.grams
    units, remainder = divmod(total, 1_000_000)
    assert units >= 3 and remainder > 0, total
