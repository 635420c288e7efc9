"""Golden tests: one hand-computed figure per methodology, arithmetic written out.

ER = BE − PE, floored to whole grams. Times are +08:00 (Asia/Shanghai) unless written in Z.
"""

from decimal import Decimal

import pytest

from calc.domain import Calculation, Rejection, calculate
from carbon_dev.calc_fixtures import record


def grams(catalog, scenario, occurred_at, **activity):
    result = calculate(record(scenario, occurred_at, **activity), catalog)
    assert isinstance(result, Calculation), result
    return result


def test_metro_ride(catalog):
    # 12.4 km × 46.7 g/pkm = 579.08 g; PE = 12.4 × 0 = 0 → floor(579.08) = 579
    r = grams(
        catalog,
        "metro_ride",
        "2025-03-01T08:00:00+08:00",
        distance_km="12.4",
        city="shenzhen",
        entry_station="S01",
        exit_station="S09",
    )
    assert r.grams == 579
    assert r.baseline_g == Decimal("579.08") and r.project_g == 0
    assert (r.methodology.id, r.methodology.version) == ("metro_ride", "1")
    assert r.factors == {"baseline_g_per_pkm": "46.7", "project_g_per_pkm": "0"}
    assert r.inputs == {"distance_km": "12.4", "city": "shenzhen", "entry_station": "S01", "exit_station": "S09"}


def test_bus_ride(catalog):
    # 7.5 km × 26.9 g/pkm = 201.75 g → 201
    assert grams(catalog, "bus_ride", "2025-03-01T08:00:00+08:00", distance_km="7.5", city="shenzhen").grams == 201


def test_bike_ride(catalog):
    # 3.2 km × 26.9 g/pkm = 86.08 g → 86
    assert grams(catalog, "bike_ride", "2025-03-01T08:00:00+08:00", distance_km="3.2", city="beijing").grams == 86


def test_walking(catalog):
    # 12,345 steps × 0.02 g/step = 246.90 g → 246 (the 296 g/day cap is the account's to apply)
    r = grams(catalog, "walking", "2025-03-01T22:00:00+08:00", steps="12345")
    assert r.grams == 246
    assert r.caps == ({"period": "day", "max_grams": 296, "max_count": 0, "scope": "user_scenario", "scope_key": ""},)


def test_utility_bill_payment_carries_both_caps(catalog):
    # one payment = 262 g − 0 g = 262
    r = grams(catalog, "utility_bill_payment", "2025-03-01T08:00:00+08:00", bill_account="E-3301", amount_fen="12050")
    assert r.grams == 262
    assert {(c["period"], c["scope"], c["max_count"], c["scope_key"]) for c in r.caps} == {
        ("month", "user_scenario", 10, ""),
        ("month", "bill_account", 1, "E-3301"),
    }


def test_e_statement(catalog):
    # one statement = 5 g − 0 g = 5
    assert grams(catalog, "e_statement", "2025-03-01T08:00:00+08:00", statement_id="ST-2025-03").grams == 5


def test_ev_charging_north_2025_uses_2022_grid_factor(catalog):
    # km = 30 kWh ÷ 0.20 kWh/km = 150 km; BE = 150 × 271.8 g/km = 40,770 g
    # factor set v1 (2025): latest north factor is 2022 = 0.6776 kg/kWh; PE = 30 × 677.6 = 20,328 g
    # ER = 40,770 − 20,328 = 20,442
    r = grams(catalog, "ev_charging", "2025-06-01T20:00:00+08:00", kwh="30", region="north")
    assert r.grams == 20442
    assert (r.factor_set_id, r.factor_set_version) == ("cn_grid_average", "1")
    assert r.factors["grid_kg_per_kwh"] == "0.6776" and r.factors["grid_factor_year"] == "2022"


def test_ev_charging_southwest_2026_uses_2023_grid_factor(catalog):
    # BE = 30 ÷ 0.20 × 271.8 = 40,770 g; v2 southwest 2023 = 0.2472 → PE = 30 × 247.2 = 7,416 g
    # ER = 40,770 − 7,416 = 33,354
    r = grams(catalog, "ev_charging", "2026-02-01T20:00:00+08:00", kwh="30", region="southwest")
    assert r.grams == 33354 and r.factors["grid_factor_year"] == "2023"


def test_ev_charging_fractional_result_is_floored(catalog):
    # BE = 12.5 ÷ 0.20 × 271.8 = 62.5 × 271.8 = 16,987.5 g; east 2023 = 0.5500 → PE = 12.5 × 550 = 6,875 g
    # ER = 10,112.5 → 10,112
    assert grams(catalog, "ev_charging", "2026-02-01T20:00:00+08:00", kwh="12.5", region="east").grams == 10112


def test_household_electricity_south(catalog):
    # v2 (2026): south 2023 = 0.4042 kg/kWh = 404.2 g/kWh
    # BE = 100 kWh × 404.2 = 40,420 g; PE = 80 kWh × 404.2 = 32,336 g; ER = 8,084 (= 20 kWh saved × 404.2)
    r = grams(
        catalog,
        "household_electricity",
        "2026-03-01T00:00:00+08:00",
        kwh="80",
        baseline_kwh="100",
        region="south",
        period_days="30",
    )
    assert r.grams == 8084 and r.quantities["saved_kwh"] == Decimal("20")


def test_household_electricity_national_2025(catalog):
    # v1 (2025): national 2022 = 0.5366 → BE = 250 × 536.6 = 134,150; PE = 237.5 × 536.6 = 127,442.5
    # ER = 6,707.5 → 6,707
    assert (
        grams(
            catalog,
            "household_electricity",
            "2025-09-30T23:00:00+08:00",
            kwh="237.5",
            baseline_kwh="250",
            region="national",
            period_days="30",
        ).grams
        == 6707
    )


def test_green_electricity_office_south_2025_uses_2022_grid_factor(catalog):
    # v1 factor set (2025): south 2022 = 0.3869 kg/kWh = 386.9 g/kWh
    # BE = 12,000 kWh × 386.9 = 4,642,800 g; PE = 12,000 × 0 g = 0; ER = 4,642,800 g (4.64 t)
    r = grams(
        catalog,
        "green_electricity_office",
        "2025-06-30T23:00:00+08:00",
        kwh="12000",
        region="south",
        certificate_id="GEC-2025-06-0001",
    )
    assert r.grams == 4642800 and r.project_g == 0
    assert r.factors["grid_kg_per_kwh"] == "0.3869" and r.factors["green_g_per_kwh"] == "0"
    assert r.caps == ({"period": "month", "max_grams": 0, "max_count": 31, "scope": "user_scenario", "scope_key": ""},)


def test_green_electricity_office_east_2026_and_its_eligibility(catalog):
    # v2 (2026): east 2023 = 0.5500 → 2,500.5 kWh × 550 g = 1,375,275 g
    r = grams(
        catalog,
        "green_electricity_office",
        "2026-02-28T00:00:00+08:00",
        kwh="2500.5",
        region="east",
        certificate_id="G1",
    )
    assert r.grams == 1375275
    # under one certificate (1,000 kWh): not a certified quantity
    low = calculate(
        record("green_electricity_office", "2026-02-28T00:00:00+08:00", kwh="999", region="east", certificate_id="G2"),
        catalog,
    )
    assert isinstance(low, Rejection)


def test_green_electricity_office_dedup_ignores_the_enterprise(catalog):
    """One certificate claimed by two enterprises, or reported by two partners: the same key."""
    a = grams(
        catalog,
        "green_electricity_office",
        "2026-02-28T00:00:00+08:00",
        user_pid="a" * 64,
        kwh="5000",
        region="east",
        certificate_id="GEC-9",
    )
    b = grams(
        catalog,
        "green_electricity_office",
        "2026-03-05T09:00:00+08:00",
        user_pid="b" * 64,
        kwh="5000",
        region="east",
        certificate_id="GEC-9",
    )
    assert a.dedup_key == b.dedup_key


# Version boundaries: a record one second before and at/after an effective-from.


def test_grid_factor_set_boundary_one_second_either_side(catalog):
    # v1 ends / v2 starts at 2026-01-01T00:00:00+08:00 = 2025-12-31T16:00:00Z
    # before: north 2022 0.6776 → 40,770 − 20,328 = 20,442; after: north 2023 0.6361 → 40,770 − 19,083 = 21,687
    before = grams(catalog, "ev_charging", "2025-12-31T15:59:59Z", kwh="30", region="north")
    after = grams(catalog, "ev_charging", "2025-12-31T16:00:00Z", kwh="30", region="north")
    assert (before.factor_set_version, before.grams) == ("1", 20442)
    assert (after.factor_set_version, after.grams) == ("2", 21687)


def test_methodology_effective_from_boundary_one_second_either_side(catalog):
    # metro v1 is in force from 2022-01-01T00:00:00+08:00 (= 2021-12-31T16:00:00Z)
    before = calculate(record("metro_ride", "2021-12-31T23:59:59+08:00", distance_km="10", city="sz"), catalog)
    after = calculate(record("metro_ride", "2022-01-01T00:00:00+08:00", distance_km="10", city="sz"), catalog)
    assert isinstance(before, Rejection) and before.code == "no_methodology_in_force"
    assert after.grams == 467  # 10 × 46.7 = 467.0


def test_ev_charging_before_any_methodology_is_rejected_not_dropped(catalog):
    r = calculate(record("ev_charging", "2024-12-31T23:59:59+08:00", kwh="30", region="north"), catalog)
    assert isinstance(r, Rejection) and r.code == "no_methodology_in_force"


@pytest.mark.parametrize(
    "scenario, activity, code",
    [
        ("metro_ride", {"distance_km": "0.4", "city": "sz"}, "below_minimum"),
        ("metro_ride", {"distance_km": "100.1", "city": "sz"}, "implausible"),
        ("metro_ride", {"distance_km": "1e3", "city": "sz"}, "invalid_activity"),
        ("metro_ride", {"distance_km": "-5", "city": "sz"}, "invalid_activity"),
        ("metro_ride", {"distance_km": "NaN", "city": "sz"}, "invalid_activity"),
        ("metro_ride", {"distance_km": "5"}, "invalid_activity"),
        ("walking", {"steps": "499"}, "below_minimum"),
        ("walking", {"steps": "1200.5"}, "invalid_activity"),
        ("ev_charging", {"kwh": "30", "region": "mars"}, "invalid_activity"),
        (
            "household_electricity",
            {"kwh": "100", "baseline_kwh": "100.5", "region": "east", "period_days": "7"},
            "below_minimum",
        ),
        (
            "household_electricity",
            {"kwh": "120", "baseline_kwh": "100", "region": "east", "period_days": "7"},
            "below_minimum",
        ),
        (
            "household_electricity",
            {"kwh": "80", "baseline_kwh": "100", "region": "east", "period_days": "45"},
            "implausible",
        ),
        ("teleport", {}, "unknown_scenario"),
    ],
)
def test_ineligible_records_are_rejected_with_a_reason(catalog, scenario, activity, code):
    r = calculate(record(scenario, "2026-03-01T08:00:00+08:00", **activity), catalog)
    assert isinstance(r, Rejection) and r.code == code and r.message


def test_metro_at_plausible_maximum_still_counts(catalog):
    # 100 km × 46.7 = 4,670
    assert grams(catalog, "metro_ride", "2025-03-01T08:00:00+08:00", distance_km="100", city="sz").grams == 4670
