"""Pure calculation: a behaviour record + the catalog -> a Calculation or a Rejection. No I/O.

ER = BE − PE in Decimal, floored to whole grams, never negative. The methodology and factor
set are the versions in force at the record's occurred_at; the result pins both, the factor
values and the inputs used, so any figure can be recomputed and audited.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any, Mapping

from carbon_common.gm import sm3_hex

from calc.catalog import REGIONS, Catalog, GridFactorMissing, Methodology
from calc.formulas import FORMULAS

CHINA_TZ = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST; caps/dedup days are local
_DECIMAL = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,9})?$")
_INTEGER = re.compile(r"^[0-9]{1,12}$")
_TRUNCATE = {"minute": "%Y-%m-%dT%H:%M", "day": "%Y-%m-%d", "month": "%Y-%m", "none": ""}


@dataclass(frozen=True)
class Record:
    """The parts of a BehaviourReceived event the calculation reads."""

    scenario: str
    occurred_at: datetime
    activity: Mapping[str, str]
    user_pid: str = ""


@dataclass(frozen=True)
class Rejection:
    code: str  # machine-readable, e.g. below_minimum, implausible, no_methodology_in_force
    message: str
    methodology_id: str = ""
    methodology_version: str = ""


@dataclass(frozen=True)
class Calculation:
    grams: int
    baseline_g: Decimal
    project_g: Decimal
    methodology: Methodology
    factor_set_id: str
    factor_set_version: str
    factors: dict[str, str]
    inputs: dict[str, str]
    quantities: dict[str, Decimal] = field(default_factory=dict)
    caps: tuple[dict[str, Any], ...] = ()
    dedup_key: str = ""


class InvalidRecord(ValueError):
    """The record itself is malformed (not a business rejection)."""


def parse_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidRecord(f"occurred_at {text!r} is not an RFC 3339 timestamp") from None
    if at.tzinfo is None:
        raise InvalidRecord(f"occurred_at {text!r} has no UTC offset")
    return at


def plain(value: Decimal) -> str:
    """Decimal as a plain string without exponent or trailing zeros ("1359", "46.7")."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _parse_activity(m: Methodology, activity: Mapping[str, str]) -> tuple[dict, dict] | Rejection:
    quantities: dict[str, Decimal] = {}
    inputs: dict[str, str] = {}
    for name, spec in m.activity.items():
        raw = activity.get(name)
        if raw is None or raw == "":
            if spec.required:
                return Rejection("invalid_activity", f"activity.{name} is required", m.id, m.version)
            continue
        raw = str(raw).strip()
        if spec.type == "decimal" and not _DECIMAL.match(raw):
            return Rejection(
                "invalid_activity", f"activity.{name} must be a non-negative decimal string", m.id, m.version
            )
        if spec.type == "integer" and not _INTEGER.match(raw):
            return Rejection("invalid_activity", f"activity.{name} must be a non-negative integer", m.id, m.version)
        if spec.type == "region" and raw not in REGIONS:
            return Rejection(
                "invalid_activity", f"activity.{name} must be one of {', '.join(REGIONS)}", m.id, m.version
            )
        if spec.type in ("decimal", "integer"):
            quantities[name] = Decimal(raw)
        inputs[name] = raw
    return quantities, inputs


def _check_eligibility(m: Methodology, quantities: Mapping[str, Decimal]) -> Rejection | None:
    for name, rule in m.eligibility.items():
        value = quantities[name]
        if rule.min is not None and value < rule.min:
            return Rejection(
                "below_minimum", f"{name} {plain(value)} is below the minimum {plain(rule.min)}", m.id, m.version
            )
        if rule.plausible_max is not None and value > rule.plausible_max:
            return Rejection(
                "implausible",
                f"{name} {plain(value)} is above the plausible maximum {plain(rule.plausible_max)}",
                m.id,
                m.version,
            )
    return None


def dedup_key(m: Methodology, record: Record) -> str:
    """Same real-world behaviour reported by two partners -> same key (see the methodology file)."""
    parts = [record.user_pid if f == "user_pid" else str(record.activity.get(f, "")).strip() for f in m.dedup.fields]
    stamp = record.occurred_at.astimezone(CHINA_TZ).strftime(_TRUNCATE[m.dedup.time])
    return sm3_hex("\x1f".join(["dedup", m.scenario, *parts, stamp]).encode("utf-8"))


def caps_for(m: Methodology, activity: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "period": c.period,
            "max_grams": c.max_grams,
            "max_count": c.max_count,
            "scope": c.scope,
            "scope_key": str(activity.get(c.scope_key_field, "")) if c.scope_key_field else "",
        }
        for c in m.caps
    )


def calculate(record: Record, catalog: Catalog) -> Calculation | Rejection:
    m = catalog.methodology_for(record.scenario, record.occurred_at)
    if m is None:
        code = "no_methodology_in_force" if record.scenario in catalog.scenarios else "unknown_scenario"
        return Rejection(code, f"no {record.scenario} methodology in force at {record.occurred_at.isoformat()}")
    parsed = _parse_activity(m, record.activity)
    if isinstance(parsed, Rejection):
        return parsed
    quantities, inputs = parsed
    formula = FORMULAS[m.formula]
    factors = {name: plain(value) for name, value in m.parameters.items()}
    factor_set_id, factor_set_version, grid = m.id, m.version, None
    if formula.uses_grid:
        fs = catalog.factor_set_for(m.factor_set_id, record.occurred_at)
        if fs is None:
            return Rejection(
                "no_factor_set_in_force",
                f"no {m.factor_set_id} factor set in force at {record.occurred_at.isoformat()}",
                m.id,
                m.version,
            )
        region, year = inputs["region"], record.occurred_at.astimezone(CHINA_TZ).year
        try:
            year_used, grid = fs.grid_factor(m.factor_basis, region, year)
        except GridFactorMissing as exc:
            return Rejection("no_grid_factor", str(exc), m.id, m.version)
        factor_set_id, factor_set_version = fs.id, fs.version
        # Region and basis are pinned by the inputs and the methodology version.
        factors.update({"grid_kg_per_kwh": plain(grid), "grid_factor_year": str(year_used)})
    with localcontext() as ctx:
        ctx.prec = 50
        quantities.update(formula.derive(quantities))
        rejection = _check_eligibility(m, quantities)
        if rejection:
            return rejection
        baseline_g, project_g = formula.emissions(quantities, m.parameters, grid)
        grams = max(0, int((baseline_g - project_g).to_integral_value(rounding=ROUND_FLOOR)))
    if grams == 0:
        return Rejection("no_reduction", "baseline does not exceed project emissions by a whole gram", m.id, m.version)
    return Calculation(
        grams=grams,
        baseline_g=baseline_g,
        project_g=project_g,
        methodology=m,
        factor_set_id=factor_set_id,
        factor_set_version=factor_set_version,
        factors=factors,
        inputs=inputs,
        quantities=quantities,
        caps=caps_for(m, record.activity),
        dedup_key=dedup_key(m, record),
    )
