"""The partner API document describes each scenario's activity exactly as the one scenario
contract (carbon_common/scenarios.yml) defines it: same scenarios, same fields, same required
ones. The document is written by hand for partners; this keeps it from drifting."""

from pathlib import Path

import yaml

import ingest
from carbon_common.scenarios import scenarios

DOCUMENT = Path(ingest.__file__).parent / "openapi.yaml"


def schema_name(scenario: str) -> str:
    return "".join(part.capitalize() for part in scenario.split("_"))


def test_every_scenario_of_the_contract_is_documented_with_its_fields():
    schemas = yaml.safe_load(DOCUMENT.read_text())["components"]["schemas"]
    contract = scenarios()
    assert set(schemas["Scenario"]["enum"]) == set(contract)
    listed = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["Record"]["properties"]["activity"]["oneOf"]}
    assert listed == {schema_name(s) for s in contract}
    for scenario, fields in contract.items():
        documented = schemas[schema_name(scenario)]
        assert set(documented["properties"]) == set(fields), scenario
        assert set(documented["required"]) == {n for n, f in fields.items() if f.required}, scenario
