"""The scenario contract's loader: typed field specs, refusal of a malformed contract, and the
file shipped in the wheel that images install (not only in an editable checkout)."""

import re
import shutil
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from carbon_common.scenarios import (
    CONTRACT,
    ContractError,
    FieldSpec,
    load_scenarios,
    load_scopes,
    scenarios,
    scope_of,
)

LIB = Path(__file__).resolve().parents[1]


def write(tmp_path, fields: str, patterns: str = '  ident: "^[a-z]+$"') -> Path:
    path = tmp_path / "scenarios.yml"
    path.write_text(f"patterns:\n{patterns}\nscenarios:\n  walk:\n{fields}\n", encoding="utf-8")
    return path


def test_fields_come_typed_in_the_contract_order():
    metro = scenarios()["metro_ride"]
    assert list(metro) == ["distance_km", "entry_station", "exit_station", "city"]
    assert metro["distance_km"] == FieldSpec(
        "distance_km",
        "decimal",
        True,
        unit="km",
        description="in-network distance between entry and exit station",
        low=Decimal(0),
        high=Decimal(100),
        low_open=True,
    )
    assert metro["distance_km"].range == "(0, 100]" and metro["distance_km"].numeric
    assert metro["city"].pattern == re.compile("^[a-z][a-z0-9_-]{1,31}$") and metro["city"].range == ""
    assert scenarios()["household_electricity"]["kwh"].range == "[0, 100000]"
    assert metro["entry_station"].document() == {"type": "string", "required": False}
    assert scenarios() is scenarios()  # read once


def test_the_contract_is_read_only():
    with pytest.raises(TypeError):
        scenarios()["teleport"] = {}
    with pytest.raises(TypeError):
        scenarios()["walking"]["speed"] = None


@pytest.mark.parametrize(
    "fields,message",
    [
        ('    steps: {type: integer, required: true, range: "0-100"}', r"walk\.steps: a integer needs a range"),
        ("    steps: {type: integer, required: true}", r"walk\.steps: a integer needs a range"),
        ('    steps: {type: integer, required: true, range: "(5, 5]"}', r"walk\.steps: the range is empty"),
        ("    name: {type: string, required: true, pattern: nope}", r"walk\.name: a string needs a pattern"),
        ('    name: {type: string, required: true, pattern: ident, range: "(0, 1]"}', r"walk\.name: a string"),
        ("    name: {type: text, required: true, pattern: ident}", r"walk\.name: needs type"),
        ("    name: {type: string, required: yes please, pattern: ident}", r"walk\.name: needs type"),
        ("    name: {type: string, required: true, pattern: ident, max: 3}", r"walk\.name: unknown keys \['max'\]"),
        ("    Name: {type: string, required: true, pattern: ident}", r"walk\.Name: a field is a lower-case"),
    ],
)
def test_a_malformed_field_is_refused_naming_it(tmp_path, fields, message):
    with pytest.raises(ContractError, match=message):
        load_scenarios(write(tmp_path, fields))


def test_a_bad_pattern_is_refused(tmp_path):
    with pytest.raises(ContractError, match="patterns"):
        load_scenarios(write(tmp_path, "    name: {type: string, required: true, pattern: ident}", '  ident: "(["'))


def test_every_scenario_has_a_scope_individual_unless_listed():
    assert scope_of("green_electricity_office") == "enterprise"
    assert scope_of("metro_ride") == scope_of("household_electricity") == "individual"
    assert scope_of("teleport") == "individual"  # not a contract scenario: nothing is credited from it anyway


FIELD = '    steps: {type: integer, required: true, range: "(0, 9]"}'


@pytest.mark.parametrize(
    "scopes,message",
    [
        ("scopes:\n  run: enterprise\n", "run is not a scenario"),
        ("scopes:\n  walk: household\n", "walk must be one of individual, enterprise"),
        ("scopes: [walk]\n", "a mapping of scenario"),
        ("extra: {}\n", "needs `patterns:` and `scenarios:`"),
    ],
)
def test_a_bad_scope_is_refused(tmp_path, scopes, message):
    path = write(tmp_path, FIELD)
    path.write_text(path.read_text() + scopes, encoding="utf-8")
    with pytest.raises(ContractError, match=message):
        load_scenarios(path)


def test_scopes_read_from_a_file(tmp_path):
    path = write(tmp_path, FIELD)
    assert dict(load_scopes(path)) == {"walk": "individual"}
    path.write_text(path.read_text() + "scopes:\n  walk: enterprise\n", encoding="utf-8")
    assert dict(load_scopes(path)) == {"walk": "enterprise"}


def test_the_contract_ships_in_the_wheel(tmp_path):
    """deploy/docker/Dockerfile installs libs/carbon_common as a wheel, not editable (built
    from a copy, as the image build context has one, so nothing is written into the checkout)."""
    ignore = shutil.ignore_patterns("tests", "__pycache__", "*.egg-info", "build", "dist")
    source = shutil.copytree(LIB, tmp_path / "carbon_common", ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["-w", str(tmp_path / "wheels"), str(source)],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "wheels").glob("carbon_common-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        assert whl.read("carbon_common/scenarios.yml") == CONTRACT.read_bytes()
