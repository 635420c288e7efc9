"""ingest and calc read one scenario contract (carbon_common/scenarios.yml): the same scenarios,
the same fields, and a field added to the contract reaches ingest's validation, calc's
methodologies and the generated doc at once."""

from datetime import datetime, timezone

import pytest

from carbon_common.scenarios import CONTRACT, load_scenarios, scenarios
from ingest import validation
from ingest.errors import RecordError

from calc.cli.docgen import render
from calc.domain import Calculation, Rejection, calculate
from calc.loader import CatalogError, load_catalog
from carbon_dev.calc_fixtures import record

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
METRO = {"distance_km": "12.4", "city": "shenzhen"}


def partner_record(activity: dict) -> dict:
    return {
        "record_id": "r-1",
        "customer_ref": "6222000011112222",
        "scenario": "metro_ride",
        "occurred_at": "2026-11-25T08:30:00+08:00",
        "activity": activity,
    }


def ingest_refusal(activity: dict) -> tuple[str, str]:
    with pytest.raises(RecordError) as err:
        validation.validate_record(partner_record(activity), NOW)
    return err.value.code, err.value.field


@pytest.fixture
def contract_with(tmp_path):
    """A copy of the contract with `line` (YAML) added to metro_ride's fields."""

    def make(line: str):
        text = CONTRACT.read_text(encoding="utf-8")
        anchor = "  metro_ride:\n"
        path = tmp_path / "scenarios.yml"
        path.write_text(text.replace(anchor, anchor + f"    {line}\n"), encoding="utf-8")
        return load_scenarios(path)

    return make


def test_ingest_and_calc_read_the_same_contract(catalog):
    contract = scenarios()
    assert validation.SCENARIOS is contract
    # every scenario calc has a methodology for is in the contract, and the other way round
    assert sorted(contract) == catalog.scenarios
    for m in catalog.methodologies:
        assert m.activity is contract[m.scenario], m.id
        assert m.document["activity"] == {name: spec.document() for name, spec in contract[m.scenario].items()}


def test_every_contract_field_is_documented_per_methodology(catalog):
    text = render(catalog)
    for m in catalog.methodologies:
        section = text.split(f"### `{m.id}` v{m.version}")[1].split("###")[0]
        for name, spec in m.activity.items():
            assert f"| Activity `{name}` | {spec.type}" in section
            assert not spec.numeric or spec.range in section


def test_a_field_added_to_the_contract_reaches_ingest_calc_and_the_doc(contract_with, monkeypatch):
    contract = contract_with('passengers: {type: integer, required: false, range: "(0, 9]", unit: people}')
    assert ingest_refusal({**METRO, "passengers": 2}) == ("unknown_field", "activity.passengers")
    monkeypatch.setattr(validation, "SCENARIOS", contract)
    assert validation.validate_record(partner_record({**METRO, "passengers": 2}), NOW).activity["passengers"] == "2"
    assert ingest_refusal({**METRO, "passengers": 10}) == ("out_of_range", "activity.passengers")

    catalog = load_catalog(contract=contract)
    [metro] = [m for m in catalog.methodologies if m.scenario == "metro_ride"]
    assert metro.activity["passengers"].type == "integer"
    at = "2026-11-25T08:30:00+08:00"
    assert calculate(record("metro_ride", at, **METRO, passengers="2"), catalog).inputs["passengers"] == "2"
    refused = calculate(record("metro_ride", at, **METRO, passengers="two"), catalog)
    assert isinstance(refused, Rejection) and refused.code == "invalid_activity"
    assert "| Activity `passengers` | integer people, optional, accepted (0, 9] |" in render(catalog)


def test_a_required_field_added_to_the_contract_is_required_by_both(contract_with, monkeypatch):
    contract = contract_with("operator: {type: string, required: true, pattern: ident}")
    monkeypatch.setattr(validation, "SCENARIOS", contract)
    assert ingest_refusal(METRO) == ("missing_field", "activity.operator")
    catalog = load_catalog(contract=contract)
    refused = calculate(record("metro_ride", "2026-11-25T08:30:00+08:00", **METRO), catalog)
    assert isinstance(refused, Rejection) and refused.message == "activity.operator is required"
    accepted = calculate(record("metro_ride", "2026-11-25T08:30:00+08:00", **METRO, operator="SZMC"), catalog)
    assert isinstance(accepted, Calculation)


def test_a_contract_without_a_field_a_formula_reads_stops_calc(tmp_path):
    path = tmp_path / "scenarios.yml"
    path.write_text(
        "\n".join(line for line in CONTRACT.read_text().splitlines() if "distance between entry" not in line)
    )
    with pytest.raises(CatalogError, match="metro_ride.v1.yml: formula per_distance needs distance_km"):
        load_catalog(contract=load_scenarios(path))


def test_a_methodology_for_a_scenario_outside_the_contract_is_refused(methodology_dir):
    path = methodology_dir.root / "walking.v1.yml"
    path.write_text(path.read_text().replace("scenario: walking", "scenario: running"))
    with pytest.raises(CatalogError, match="walking.v1.yml: scenario 'running' is not in the scenario contract"):
        methodology_dir.catalog()


def test_a_methodology_declaring_its_own_activity_fields_is_refused(methodology_dir):
    path = methodology_dir.root / "walking.v1.yml"
    path.write_text(path.read_text() + "activity:\n  steps: {type: integer, required: true}\n")
    with pytest.raises(CatalogError, match="walking.v1.yml: activity fields come from the scenario contract"):
        methodology_dir.catalog()
