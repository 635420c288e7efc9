"""Load methodology and factor-set files, validate them against their JSON schemas and the
cross-file rules, and build a Catalog. Any problem stops the load with the file named.

A methodology's activity fields are those of its `scenario:` in the scenario contract
(carbon_common/scenarios.yml), the same that ingest validates partner records against."""

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from carbon_common.scenarios import Contract, scenarios

from calc.catalog import CapSpec, Catalog, DedupSpec, FactorSet, Methodology, Rule, Window, _selectable
from calc.formulas import FORMULAS

PACKAGED_DIR = Path(__file__).parent / "methodologies"
SCHEMA_DIR = PACKAGED_DIR / "schema"
RECORD_FIELDS = ("user_pid",)  # record-level fields a dedup key may use besides activity fields


class CatalogError(ValueError):
    pass


class _StringTimesLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings (the schema checks their format)."""


_StringTimesLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _window(doc: dict, path: Path) -> Window:
    window = Window(_time(doc["effective_from"]), _time(doc["effective_to"]))
    if window.effective_to is not None and window.effective_to <= window.effective_from:
        raise CatalogError(f"{path.name}: effective_to must be after effective_from")
    return window


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _methodology(doc: dict, path: Path, contract: Contract) -> Methodology:
    factor_set = doc.get("factor_set") or {}
    if doc["scenario"] not in contract:
        raise CatalogError(f"{path.name}: scenario {doc['scenario']!r} is not in the scenario contract")
    activity = contract[doc["scenario"]]
    return Methodology(
        id=doc["id"],
        version=doc["version"],
        status=doc["status"],
        supersedes=doc.get("supersedes"),
        scenario=doc["scenario"],
        window=_window(doc, path),
        formula=doc["formula"],
        factor_set_id=factor_set.get("id"),
        factor_basis=factor_set.get("basis"),
        activity=activity,
        parameters={k: Decimal(v["value"]) for k, v in doc["parameters"].items()},
        eligibility={k: Rule(_dec(v.get("min")), _dec(v.get("plausible_max"))) for k, v in doc["eligibility"].items()},
        caps=tuple(
            CapSpec(c["period"], c["scope"], c.get("max_grams", 0), c.get("max_count", 0), c.get("scope_key_field", ""))
            for c in doc["caps"]
        ),
        dedup=DedupSpec(tuple(doc["dedup"]["fields"]), doc["dedup"]["time"]),
        # the file as published, with its scenario's activity fields (get_methodology shows them)
        document={**doc, "activity": {name: spec.document() for name, spec in activity.items()}},
        path=str(path),
    )


def _factor_set(doc: dict, path: Path) -> FactorSet:
    factors = {
        basis: {int(year): {region: Decimal(v) for region, v in regions.items()} for year, regions in years.items()}
        for basis, years in doc["factors"].items()
    }
    return FactorSet(
        id=doc["id"],
        version=doc["version"],
        status=doc["status"],
        supersedes=doc.get("supersedes"),
        window=_window(doc, path),
        factors=factors,
        document=doc,
        path=str(path),
    )


def _check_methodology(m: Methodology) -> None:
    where = f"{m.path and Path(m.path).name}: "
    formula = FORMULAS[m.formula]
    missing = [f for f in formula.inputs if f not in m.activity]
    missing += [p for p in formula.parameters if p not in m.parameters]
    if missing:
        raise CatalogError(where + f"formula {m.formula} needs {', '.join(missing)}")
    if formula.uses_grid != bool(m.factor_set_id):
        raise CatalogError(where + f"formula {m.formula} {'needs' if formula.uses_grid else 'takes no'} factor_set")
    numeric = {k for k, s in m.activity.items() if s.type in ("decimal", "integer")} | set(formula.derived)
    for name in m.eligibility:
        if name not in numeric:
            raise CatalogError(where + f"eligibility rule on unknown quantity {name!r}")
    for cap in m.caps:
        if cap.scope == "bill_account" and cap.scope_key_field not in m.activity:
            raise CatalogError(where + "a bill_account cap needs scope_key_field naming an activity field")
        if not (cap.max_grams or cap.max_count):
            raise CatalogError(where + "a cap needs max_grams or max_count")
    for name in m.dedup.fields:
        if name not in RECORD_FIELDS and not (name in m.activity and m.activity[name].required):
            raise CatalogError(where + f"dedup field {name!r} must be user_pid or a required activity field")
    if (m.status == "corrected") != (m.supersedes is not None):
        raise CatalogError(where + "status corrected goes with supersedes, and only then")


def _check_versions(items: list, group, what: str) -> None:
    """Corrections point at a same-id version with the same window; in-force windows don't overlap."""
    by_key = {(v.id, v.version): v for v in items}
    if len(by_key) != len(items):
        raise CatalogError(f"duplicate {what} id/version")
    for v in items:
        if v.status == "corrected":
            old = by_key.get((v.id, v.supersedes))
            if old is None or old.window != v.window:
                raise CatalogError(
                    f"{Path(v.path).name}: a corrected version must supersede an existing "
                    f"version of {v.id} with the same effective window"
                )
    live = _selectable(items)
    for i, a in enumerate(live):
        for b in live[i + 1 :]:
            if group(a) == group(b) and a.window.overlaps(b.window):
                raise CatalogError(
                    f"{what} {a.id} v{a.version} and {b.id} v{b.version} are both in force "
                    f"at the same time for {group(a)}"
                )


def load_catalog(directory: str | Path | None = None, contract: Contract | None = None) -> Catalog:
    """Load every *.yml under `directory` (default: the packaged methodologies); activity fields
    from `contract` (default: the packaged scenario contract)."""
    root = Path(directory) if directory else PACKAGED_DIR
    contract = scenarios() if contract is None else contract
    validators = {"methodology": _validator("methodology"), "factor_set": _validator("factor_set")}
    methodologies, factor_sets = [], []
    for path in sorted(root.rglob("*.yml")):
        doc: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=_StringTimesLoader)
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind not in validators:
            raise CatalogError(f"{path.name}: kind must be methodology or factor_set")
        if kind == "methodology" and "activity" in doc:
            raise CatalogError(
                f"{path.name}: activity fields come from the scenario contract (carbon_common/scenarios.yml), "
                "not from a methodology file"
            )
        errors = sorted(validators[kind].iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            raise CatalogError(f"{path.name}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}")
        if kind == "methodology":
            methodologies.append(_methodology(doc, path, contract))
        else:
            factor_sets.append(_factor_set(doc, path))
    for m in methodologies:
        _check_methodology(m)
        if m.factor_set_id and not any(f.id == m.factor_set_id and m.factor_basis in f.factors for f in factor_sets):
            raise CatalogError(f"{Path(m.path).name}: factor set {m.factor_set_id}/{m.factor_basis} not found")
    for a in methodologies:
        for b in methodologies:
            if a.id == b.id and (a.scenario, a.dedup) != (b.scenario, b.dedup):
                raise CatalogError(
                    f"versions of {a.id} must share scenario and dedup rule "
                    "(dedup keys must not change on recalculation)"
                )
    _check_versions(methodologies, lambda m: m.scenario, "methodology")
    _check_versions(factor_sets, lambda f: f.id, "factor set")
    if not methodologies:
        raise CatalogError(f"no methodology files under {root}")
    return Catalog(methodologies, factor_sets)
