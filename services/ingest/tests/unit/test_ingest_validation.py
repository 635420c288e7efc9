"""Per-scenario record validation and strict JSON parsing (pure, no servers)."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from ingest import jsonsafe
from ingest.errors import ApiError, RecordError
from ingest.validation import SCENARIOS, validate_record

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
GOOD = {
    "metro_ride": {"distance_km": "12.4", "city": "shenzhen", "entry_station": "S01"},
    "bus_ride": {"distance_km": 7, "city": "beijing", "line": "B52"},
    "bike_ride": {"distance_km": Decimal("2.50"), "city": "shanghai"},
    "walking": {"steps": 8000},
    "utility_bill_payment": {"bill_account": "EL-001", "amount_fen": 12345},
    "e_statement": {"statement_id": "ST202611"},
    "ev_charging": {"kwh": "30.5", "region": "south"},
    "household_electricity": {"kwh": "0", "baseline_kwh": "300", "region": "east", "period_days": 30},
    "green_electricity_office": {"kwh": "12000", "region": "south", "certificate_id": "GEC-2026-11-0001"},
}


def record(scenario, activity, **extra):
    return {
        "record_id": "r-1",
        "customer_ref": "6222000011112222",
        "scenario": scenario,
        "occurred_at": "2026-11-25T08:30:00+08:00",
        "activity": activity,
        **extra,
    }


def rejection(raw) -> tuple[str, str | None]:
    with pytest.raises(RecordError) as err:
        validate_record(raw, NOW)
    return err.value.code, err.value.field


def test_every_scenario_has_a_valid_example():
    assert set(GOOD) == set(SCENARIOS)


@pytest.mark.parametrize("scenario", sorted(GOOD))
def test_valid_records_come_out_as_decimal_strings_in_utc(scenario):
    valid = validate_record(record(scenario, GOOD[scenario]), NOW)
    assert valid.occurred_at == "2026-11-25T00:30:00Z"
    assert all(isinstance(v, str) for v in valid.activity.values())


def test_quantities_are_normalised():
    valid = validate_record(record("bike_ride", {"distance_km": Decimal("2.50"), "city": "shanghai"}), NOW)
    assert valid.activity["distance_km"] == "2.5"
    assert validate_record(record("walking", {"steps": "8000"}), NOW).activity["steps"] == "8000"
    assert validate_record(record("walking", {"steps": Decimal("1E+4")}), NOW).activity["steps"] == "10000"


@pytest.mark.parametrize(
    "activity,code,field",
    [
        ({"distance_km": "500", "city": "shenzhen"}, "out_of_range", "activity.distance_km"),
        ({"distance_km": "100.000001", "city": "shenzhen"}, "out_of_range", "activity.distance_km"),
        ({"distance_km": "0", "city": "shenzhen"}, "out_of_range", "activity.distance_km"),
        ({"distance_km": -1, "city": "shenzhen"}, "out_of_range", "activity.distance_km"),
        ({"distance_km": "NaN", "city": "shenzhen"}, "invalid_value", "activity.distance_km"),
        ({"distance_km": "Infinity", "city": "shenzhen"}, "invalid_value", "activity.distance_km"),
        ({"distance_km": Decimal("Infinity"), "city": "shenzhen"}, "invalid_value", "activity.distance_km"),
        ({"distance_km": "1e2", "city": "shenzhen"}, "invalid_value", "activity.distance_km"),
        ({"distance_km": "1.1234567", "city": "shenzhen"}, "invalid_value", "activity.distance_km"),
        ({"distance_km": True, "city": "shenzhen"}, "invalid_value", "activity.distance_km"),
        ({"distance_km": [1], "city": "shenzhen"}, "invalid_value", "activity.distance_km"),
        ({"city": "shenzhen"}, "missing_field", "activity.distance_km"),
        ({"distance_km": 3, "city": "Shen Zhen"}, "invalid_value", "activity.city"),
        ({"distance_km": 3, "city": "shenzhen", "speed": 4}, "unknown_field", "activity.speed"),
        (
            {"distance_km": 3, "city": "shenzhen", "reduction_g": 4},
            "computed_field_not_allowed",
            "activity.reduction_g",
        ),
    ],
)
def test_bad_metro_activity_is_rejected_with_a_specific_code(activity, code, field):
    assert rejection(record("metro_ride", activity)) == (code, field)


@pytest.mark.parametrize(
    "raw,code",
    [
        (record("walking", {"steps": 100001}), "out_of_range"),
        (record("walking", {"steps": "10.5"}), "invalid_value"),
        (record("household_electricity", {**GOOD["household_electricity"], "period_days": 32}), "out_of_range"),
        (record("ev_charging", {"kwh": "501", "region": "south"}), "out_of_range"),
        (record("teleport", {}), "unknown_scenario"),
        (record("metro_ride", GOOD["metro_ride"], balance=1), "computed_field_not_allowed"),
        (record("metro_ride", GOOD["metro_ride"], factor="1"), "computed_field_not_allowed"),
        (record("metro_ride", GOOD["metro_ride"], extra=1), "unknown_field"),
        ({**record("metro_ride", GOOD["metro_ride"]), "occurred_at": "2026-11-25T12:06:00Z"}, "future_occurred_at"),
        ({**record("metro_ride", GOOD["metro_ride"]), "occurred_at": "2026-01-01T00:00:00Z"}, "stale_occurred_at"),
        ({**record("metro_ride", GOOD["metro_ride"]), "occurred_at": "2026-02-30T00:00:00Z"}, "invalid_value"),
        ({**record("metro_ride", GOOD["metro_ride"]), "occurred_at": 1795595400}, "invalid_value"),
        ({**record("metro_ride", GOOD["metro_ride"]), "record_id": "has space"}, "invalid_value"),
        ({**record("metro_ride", GOOD["metro_ride"]), "customer_ref": "12"}, "invalid_value"),
        ({k: v for k, v in record("metro_ride", GOOD["metro_ride"]).items() if k != "scenario"}, "missing_field"),
        ("not an object", "invalid_value"),
    ],
)
def test_bad_records_are_rejected(raw, code):
    assert rejection(raw)[0] == code


@pytest.mark.parametrize(
    "body,code",
    [
        (b'{"a": 1', "malformed_json"),
        (b'{"a": NaN}', "malformed_json"),
        (b'{"a": -Infinity}', "malformed_json"),
        (b'{"a": "\\u0000"}', "nul_byte"),
        (b'{"a\\u0000": 1}', "nul_byte"),
        (b'{"a": "\xff"}', "invalid_utf8"),
        (b'{"a": "\\udc00"}', "invalid_utf8"),
        (b'{"$set": 1}', "forbidden_key"),
        (b'{"a.b": 1}', "forbidden_key"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (b"[" * 9 + b"]" * 9, "too_deep"),
        (b"[" * 100000, "too_deep"),
    ],
)
def test_strict_json_refuses_with_specific_codes(body, code):
    with pytest.raises(ApiError) as err:
        jsonsafe.parse(body)
    assert err.value.code == code


def test_strict_json_keeps_decimals_exact_and_ignores_brackets_in_strings():
    assert jsonsafe.parse(b'{"a": 0.1, "b": "[[[[[[[[[[[["}') == {"a": Decimal("0.1"), "b": "[[[[[[[[[[[["}
