"""The same real-world behaviour reported by two partners gets one dedup key."""

from calc.domain import calculate
from carbon_dev.calc_fixtures import record

ALICE, BOB = "a" * 64, "b" * 64


def key(catalog, scenario, at, user=ALICE, **activity):
    return calculate(record(scenario, at, user, **activity), catalog).dedup_key


def test_metro_trip_from_operator_and_payment_network_is_one(catalog):
    operator = key(
        catalog,
        "metro_ride",
        "2025-03-01T08:15:07+08:00",
        distance_km="12.4",
        city="sz",
        entry_station="S01",
        exit_station="S09",
    )
    unionpay = key(
        catalog, "metro_ride", "2025-03-01T00:15:52Z", distance_km="12.1", city="sz", entry_station="POS-7781"
    )
    assert operator == unionpay


def test_metro_trips_in_different_minutes_cities_or_users_differ(catalog):
    base = dict(distance_km="5", city="sz")
    keys = {
        key(catalog, "metro_ride", "2025-03-01T08:15:00+08:00", **base),
        key(catalog, "metro_ride", "2025-03-01T08:16:00+08:00", **base),
        key(catalog, "metro_ride", "2025-03-01T08:15:00+08:00", distance_km="5", city="bj"),
        key(catalog, "metro_ride", "2025-03-01T08:15:00+08:00", user=BOB, **base),
    }
    assert len(keys) == 4


def test_walking_is_one_per_user_and_local_day(catalog):
    # 23:30 UTC on 28 Feb is 07:30 on 1 Mar in Shanghai: same local day as the wearable's report
    phone = key(catalog, "walking", "2025-02-28T23:30:00Z", steps="9000")
    wearable = key(catalog, "walking", "2025-03-01T21:00:00+08:00", steps="9400")
    next_day = key(catalog, "walking", "2025-03-02T07:00:00+08:00", steps="9400")
    assert phone == wearable != next_day


def test_bill_payment_is_one_per_bill_account_and_month_whoever_pays(catalog):
    bank = key(catalog, "utility_bill_payment", "2025-03-03T10:00:00+08:00", bill_account="E-1")
    utility = key(catalog, "utility_bill_payment", "2025-03-04T09:00:00+08:00", user=BOB, bill_account="E-1")
    other = key(catalog, "utility_bill_payment", "2025-03-04T09:00:00+08:00", bill_account="E-2")
    assert bank == utility != other


def test_dedup_key_reveals_no_identifier(catalog):
    k = key(catalog, "utility_bill_payment", "2025-03-03T10:00:00+08:00", bill_account="E-33010012")
    assert len(k) == 64 and "E-33010012" not in k
