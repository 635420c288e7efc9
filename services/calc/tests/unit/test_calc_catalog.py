"""Loading methodology files: schema and cross-file rules, version selection, immutability."""

from decimal import Decimal

import pytest

from calc.domain import calculate
from calc.loader import CatalogError
from carbon_dev.calc_fixtures import record


def test_packaged_catalog_covers_every_scenario(catalog):
    assert catalog.scenarios == sorted(
        [
            "metro_ride",
            "bus_ride",
            "bike_ride",
            "walking",
            "utility_bill_payment",
            "e_statement",
            "ev_charging",
            "household_electricity",
            "green_electricity_office",
        ]
    )


def test_single_secondary_source_values_carry_the_caveat(catalog):
    for m in catalog.methodologies:
        if "CITIC" in m.document["source"]:
            assert "⚠" in m.document["source"], m.id


def test_unquoted_number_is_refused_naming_the_file(methodology_dir):
    path = methodology_dir.root / "bus_ride.v1.yml"
    path.write_text(path.read_text().replace('value: "26.9"', "value: 26.9"))
    with pytest.raises(CatalogError, match=r"bus_ride\.v1\.yml: parameters/baseline_g_per_pkm/value"):
        methodology_dir.catalog()


def test_missing_source_is_refused(methodology_dir):
    path = methodology_dir.root / "walking.v1.yml"
    path.write_text(
        "\n".join(
            line
            for line in path.read_text().splitlines()
            if not line.startswith("source:") and not line.startswith("  Ant Forest walking")
        )
    )
    with pytest.raises(CatalogError, match="walking.v1.yml: .*'source' is a required property"):
        methodology_dir.catalog()


def test_two_versions_in_force_at_once_are_refused(methodology_dir):
    methodology_dir.derive(
        "walking.v1.yml", "walking.v2.yml", version='"2"', effective_from='"2026-01-01T00:00:00+08:00"'
    )
    with pytest.raises(CatalogError, match="both in force"):
        methodology_dir.catalog()


def test_correction_must_keep_the_window(methodology_dir):
    methodology_dir.derive(
        "walking.v1.yml",
        "walking.v1.1.yml",
        version='"1.1"',
        status="corrected",
        supersedes='"1"',
        effective_from='"2023-01-01T00:00:00+08:00"',
    )
    with pytest.raises(CatalogError, match="same effective window"):
        methodology_dir.catalog()


def test_versions_must_share_the_dedup_rule(methodology_dir):
    path = methodology_dir.derive(
        "walking.v1.yml", "walking.v1.1.yml", version='"1.1"', status="corrected", supersedes='"1"'
    )
    path.write_text(path.read_text().replace("time: day", "time: minute"))
    with pytest.raises(CatalogError, match="dedup"):
        methodology_dir.catalog()


def test_dedup_on_optional_field_is_refused(methodology_dir):
    path = methodology_dir.root / "metro_ride.v1.yml"
    path.write_text(path.read_text().replace("fields: [user_pid, city]", "fields: [user_pid, entry_station]"))
    with pytest.raises(CatalogError, match="entry_station"):
        methodology_dir.catalog()


def test_a_corrected_version_replaces_the_old_one_over_its_window(methodology_dir):
    before = calculate(record("walking", "2025-03-01T08:00:00+08:00", steps="10000"), methodology_dir.catalog())
    path = methodology_dir.derive(
        "walking.v1.yml", "walking.v1.1.yml", version='"1.1"', status="corrected", supersedes='"1"'
    )
    path.write_text(path.read_text().replace('value: "0.02"', 'value: "0.0148"'))
    after = calculate(record("walking", "2025-03-01T08:00:00+08:00", steps="10000"), methodology_dir.catalog())
    # 10,000 × 0.02 = 200 before; 10,000 × 0.0148 = 148 after
    assert (before.methodology.version, before.grams) == ("1", 200)
    assert (after.methodology.version, after.grams) == ("1.1", 148)


def test_publishing_a_later_version_changes_nothing_before_it(methodology_dir):
    records = [record("metro_ride", f"2026-0{m}-15T08:00:00+08:00", distance_km="9.9", city="sz") for m in range(1, 10)]
    old = [calculate(r, methodology_dir.catalog()) for r in records]
    methodology_dir.derive("metro_ride.v1.yml", "metro_ride.v1.yml", effective_to='"2026-07-01T00:00:00+08:00"')
    path = methodology_dir.derive(
        "metro_ride.v1.yml",
        "metro_ride.v2.yml",
        version='"2"',
        effective_from='"2026-07-01T00:00:00+08:00"',
        effective_to="null",
    )
    path.write_text(path.read_text().replace('value: "46.7"', 'value: "50"'))
    new = [calculate(r, methodology_dir.catalog()) for r in records]
    assert [(n.methodology.version, n.grams) for n in new[:6]] == [(o.methodology.version, o.grams) for o in old[:6]]
    # 9.9 × 50 = 495 from July on; before, 9.9 × 46.7 = 462.33 → 462
    assert {(n.methodology.version, n.grams) for n in new[6:]} == {("2", 495)}
    assert {o.grams for o in old} == {462}


def test_grid_lookup_by_year_and_region(catalog):
    v2 = catalog.factor_set("cn_grid_average", "2")
    assert v2.grid_factor("average", "north", 2022) == (2022, Decimal("0.6776"))
    assert v2.grid_factor("average", "north", 2023)[1] == Decimal("0.6361")
    assert v2.grid_factor("average", "north", 2031)[0] == 2023  # latest published year
    assert v2.grid_factor("average", "national", 2021)[1] == Decimal("0.5568")
    with pytest.raises(LookupError):
        v2.grid_factor("average", "north", 2021)  # no regional 2021 values in our sources
