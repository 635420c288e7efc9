"""The scenario contract (scenarios.yml beside this module): the activity fields of each scenario.

One packaged file that ingest validates partner records against and calc takes each
methodology's activity fields from, so the two cannot disagree about a field:

    from carbon_common.scenarios import scenarios
    scenarios()["metro_ride"]["distance_km"]
    # FieldSpec(name='distance_km', type='decimal', required=True, unit='km', low=Decimal('0'),
    #           high=Decimal('100'), low_open=True, ...)

A malformed contract raises ContractError naming the scenario and field.

Each scenario also has a scope (`scopes:` in the file): which kind of account earns from its
records, "individual" (the default) or "enterprise" (docs/enterprise.md):

    scope_of("green_electricity_office")   # "enterprise"
    scope_of("metro_ride")                 # "individual"
"""

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

CONTRACT = Path(__file__).with_name("scenarios.yml")
TYPES = ("decimal", "integer", "string", "region")
NUMERIC = ("decimal", "integer")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_RANGE = re.compile(r"^([(\[])\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?[0-9]+(?:\.[0-9]+)?)\s*\]$")
_KEYS = {"type", "required", "unit", "description", "range", "pattern"}
SCOPES = ("individual", "enterprise")  # a scenario's scope: the account kind that earns from it
DEFAULT_SCOPE = "individual"

# scenario -> field name -> spec, in the contract's order
Contract = Mapping[str, Mapping[str, "FieldSpec"]]


class ContractError(ValueError):
    pass


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str  # decimal | integer | string | region
    required: bool
    unit: str = ""
    description: str = ""
    low: Decimal | None = None  # numbers: the lowest accepted value, excluded when low_open
    high: Decimal | None = None  # numbers: the highest accepted value (included)
    low_open: bool = True
    pattern: re.Pattern | None = None  # strings and regions: what a value must match in full

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC

    @property
    def range(self) -> str:
        """The accepted range as written in the contract, e.g. "(0, 100]"; "" for text."""
        return f"{'(' if self.low_open else '['}{self.low}, {self.high}]" if self.numeric else ""

    def document(self) -> dict[str, Any]:
        """{type, required, unit?, description?}: the field as a methodology document shows it."""
        doc: dict[str, Any] = {"type": self.type, "required": self.required}
        doc.update({k: v for k, v in (("unit", self.unit), ("description", self.description)) if v})
        return doc


def _field(scenario: str, name: str, raw: Any, patterns: Mapping[str, re.Pattern]) -> FieldSpec:
    where = f"{scenario}.{name}"
    if not _IDENTIFIER.match(name) or not isinstance(raw, dict):
        raise ContractError(f"{where}: a field is a lower-case identifier mapped to its spec")
    if set(raw) - _KEYS:
        raise ContractError(f"{where}: unknown keys {sorted(set(raw) - _KEYS)}")
    kind, required = raw.get("type"), raw.get("required")
    if kind not in TYPES or not isinstance(required, bool):
        raise ContractError(f"{where}: needs type ({', '.join(TYPES)}) and required (true or false)")
    for key in ("unit", "description"):
        if not isinstance(raw.get(key, ""), str):
            raise ContractError(f"{where}: {key} must be a string")
    spec = dict(name=name, type=kind, required=required, unit=raw.get("unit", ""))
    spec["description"] = raw.get("description", "")
    if kind in NUMERIC:
        bounds = _RANGE.match(raw.get("range", "")) if isinstance(raw.get("range"), str) else None
        if bounds is None or "pattern" in raw:
            raise ContractError(f'{where}: a {kind} needs a range like "(0, 100]" and no pattern')
        low, high = Decimal(bounds.group(2)), Decimal(bounds.group(3))
        if low >= high:
            raise ContractError(f"{where}: the range is empty")
        return FieldSpec(**spec, low=low, high=high, low_open=bounds.group(1) == "(")
    if raw.get("pattern") not in patterns or "range" in raw:
        raise ContractError(f"{where}: a {kind} needs a pattern, one of {sorted(patterns)}, and no range")
    return FieldSpec(**spec, pattern=patterns[raw["pattern"]])


def _read(path: str | Path) -> dict:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    allowed = {"patterns", "scenarios", "scopes", "not_for_exchange"}
    if not isinstance(doc, dict) or not {"patterns", "scenarios"} <= set(doc) <= allowed:
        raise ContractError(
            f"{Path(path).name}: needs `patterns:` and `scenarios:` (optionally `scopes:`, `not_for_exchange:`)"
        )
    return doc


def load_scenarios(path: str | Path = CONTRACT) -> Contract:
    """Read and check a contract file: scenario -> field name -> FieldSpec, in the file's order
    (read-only mappings: every reader shares them)."""
    doc = _read(path)
    try:
        patterns = {name: re.compile(text) for name, text in doc["patterns"].items()}
    except (AttributeError, TypeError, re.error) as exc:
        raise ContractError(f"{Path(path).name}: patterns: {exc}") from None
    if not isinstance(doc["scenarios"], dict) or not doc["scenarios"]:
        raise ContractError(f"{Path(path).name}: scenarios: a mapping of scenario -> fields")
    contract = {}
    for scenario, fields in doc["scenarios"].items():
        if not _IDENTIFIER.match(str(scenario)) or not isinstance(fields, dict) or not fields:
            raise ContractError(f"{scenario}: a scenario is a lower-case identifier with at least one field")
        contract[scenario] = MappingProxyType({n: _field(scenario, n, raw, patterns) for n, raw in fields.items()})
    _scopes(doc, contract, Path(path).name)
    _not_for_exchange(doc, contract, Path(path).name)
    return MappingProxyType(contract)


def _not_for_exchange(doc: dict, contract: Mapping[str, Any], name: str) -> Mapping[str, str]:
    raw = doc.get("not_for_exchange") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
        raise ContractError(f"{name}: not_for_exchange: a mapping of scenario -> why (text)")
    unknown = sorted(set(raw) - set(contract))
    if unknown:
        raise ContractError(f"{name}: not_for_exchange: {unknown[0]} is not a scenario of the contract")
    return MappingProxyType(dict(raw))


def _scopes(doc: dict, contract: Mapping[str, Any], name: str) -> Mapping[str, str]:
    raw = doc.get("scopes") or {}
    if not isinstance(raw, dict):
        raise ContractError(f"{name}: scopes: a mapping of scenario -> {' | '.join(SCOPES)}")
    for scenario, scope in raw.items():
        if scenario not in contract:
            raise ContractError(f"{name}: scopes: {scenario} is not a scenario of the contract")
        if scope not in SCOPES:
            raise ContractError(f"{name}: scopes: {scenario} must be one of {', '.join(SCOPES)}")
    return MappingProxyType({s: raw.get(s, DEFAULT_SCOPE) for s in contract})


def load_scopes(path: str | Path = CONTRACT) -> Mapping[str, str]:
    """scenario -> its scope ("individual" unless the file's `scopes:` says "enterprise")."""
    doc = _read(path)
    return _scopes(doc, load_scenarios(path), Path(path).name)


@cache
def scenarios() -> Contract:
    """The packaged contract, read once per process."""
    return load_scenarios()


@cache
def scopes() -> Mapping[str, str]:
    """The packaged contract's scope of every scenario, read once per process."""
    return load_scopes()


@cache
def not_for_exchange() -> Mapping[str, str]:
    """Scenarios of the packaged contract whose reductions never go to the exchange -> why."""
    return _not_for_exchange(_read(CONTRACT), scenarios(), Path(CONTRACT).name)


def scope_of(scenario: str) -> str:
    """The scope of a scenario of the packaged contract; "individual" for one it does not know
    (calc publishes reductions of contract scenarios only)."""
    return scopes().get(scenario, DEFAULT_SCOPE)
