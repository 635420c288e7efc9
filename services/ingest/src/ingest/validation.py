"""Strict per-scenario validation of one behaviour record (pure, no I/O).

Each scenario's activity fields, their types, bounds and patterns are the scenario contract
(carbon_common/scenarios.yml), which calc's methodologies read too. Bounds are input sanity (a
500 km metro ride is a typo or an attack); the methodology's eligibility rules (caps, minimum
distances) live in calc. Quantities leave as decimal strings.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from carbon_common.clock import iso_z
from carbon_common.scenarios import FieldSpec, scenarios

from ingest.errors import RecordError

MAX_FUTURE_SKEW = timedelta(seconds=300)
MAX_AGE = timedelta(days=90)
MAX_FRACTION_DIGITS = 6

RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
CUSTOMER_REF = re.compile(r"^[0-9A-Za-z]{6,32}$")
IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")

# Values the platform computes itself; a client supplying them is refused outright.
COMPUTED_FIELDS = frozenset(
    {
        "reduction",
        "reduction_g",
        "reduction_grams",
        "factor",
        "emission_factor",
        "factor_set",
        "balance",
        "balance_after",
        "points",
        "amount_g",
        "credited",
        "methodology",
    }
)
RECORD_FIELDS = frozenset({"record_id", "customer_ref", "scenario", "occurred_at", "activity"})


# scenario -> {field: FieldSpec}, in the order the fields are checked: the scenario contract
SCENARIOS = scenarios()


@dataclass(frozen=True)
class ValidRecord:
    record_id: str
    customer_ref: str
    scenario: str
    occurred_at: str  # normalised RFC 3339 UTC, second precision
    activity: dict  # field -> string

    def content(self, user_pid: str) -> dict:
        """What identifies this record's content (customer number replaced by its pseudonym)."""
        return {
            "record_id": self.record_id,
            "user_pid": user_pid,
            "scenario": self.scenario,
            "occurred_at": self.occurred_at,
            "activity": self.activity,
        }


def _decimal_string(field: str, raw, spec: FieldSpec) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str)):
        raise RecordError("invalid_value", f"{field} must be a number or a decimal string", field)
    try:
        value = Decimal(raw) if not isinstance(raw, str) or re.fullmatch(r"-?\d+(\.\d+)?", raw.strip()) else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise RecordError("invalid_value", f"{field} must be a finite decimal number", field)
    if spec.type == "integer" and value != value.to_integral_value():
        raise RecordError("invalid_value", f"{field} must be a whole number", field)
    if value.as_tuple().exponent < -MAX_FRACTION_DIGITS:
        raise RecordError("invalid_value", f"{field} has more than {MAX_FRACTION_DIGITS} decimal places", field)
    too_low = value <= spec.low if spec.low_open else value < spec.low
    if too_low or value > spec.high:
        lower = f"> {spec.low}" if spec.low_open else f">= {spec.low}"
        raise RecordError("out_of_range", f"{field} must be {lower} and <= {spec.high}", field)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _activity(scenario: str, raw) -> dict:
    if not isinstance(raw, dict):
        raise RecordError("invalid_value", "activity must be an object", "activity")
    fields = SCENARIOS[scenario]
    out = {}
    for key in raw:
        if key in COMPUTED_FIELDS:
            raise RecordError("computed_field_not_allowed", f"{key} is computed by the platform", f"activity.{key}")
        if key not in fields:
            raise RecordError("unknown_field", f"{scenario} has no field {key[:40]!r}", f"activity.{key[:40]}")
    for key, spec in fields.items():
        if key not in raw or raw[key] is None:
            if spec.required:
                raise RecordError("missing_field", f"{scenario} needs {key}", f"activity.{key}")
            continue
        if not spec.numeric:
            value = raw[key]
            if not isinstance(value, str) or not spec.pattern.fullmatch(value):
                raise RecordError("invalid_value", f"{key} must match {spec.pattern.pattern}", f"activity.{key}")
            out[key] = value
        else:
            out[key] = _decimal_string(f"activity.{key}", raw[key], spec)
    return out


def parse_occurred_at(raw, now: datetime) -> str:
    if not isinstance(raw, str) or not RFC3339.fullmatch(raw):
        raise RecordError(
            "invalid_value", "occurred_at must be RFC 3339 with a zone, e.g. 2026-11-25T08:30:00Z", "occurred_at"
        )
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        raise RecordError("invalid_value", "occurred_at is not a real date and time", "occurred_at")
    if moment > now + MAX_FUTURE_SKEW:
        raise RecordError("future_occurred_at", "occurred_at lies in the future", "occurred_at")
    if moment < now - MAX_AGE:
        raise RecordError("stale_occurred_at", f"occurred_at is older than {MAX_AGE.days} days", "occurred_at")
    return iso_z(moment, "seconds")


def validate_record(raw, now: datetime) -> ValidRecord:
    if not isinstance(raw, dict):
        raise RecordError("invalid_value", "each record must be an object")
    for key in raw:
        if key in COMPUTED_FIELDS:
            raise RecordError("computed_field_not_allowed", f"{key} is computed by the platform", key)
        if key not in RECORD_FIELDS:
            raise RecordError("unknown_field", f"records have no field {key[:40]!r}", key[:40])
    for key in ("record_id", "customer_ref", "scenario", "occurred_at", "activity"):
        if key not in raw:
            raise RecordError("missing_field", f"{key} is required", key)
    if not isinstance(raw["record_id"], str) or not RECORD_ID.fullmatch(raw["record_id"]):
        raise RecordError("invalid_value", "record_id must be 1-64 of [A-Za-z0-9._:-]", "record_id")
    if not isinstance(raw["customer_ref"], str) or not CUSTOMER_REF.fullmatch(raw["customer_ref"]):
        raise RecordError("invalid_value", "customer_ref must be 6-32 letters or digits", "customer_ref")
    scenario = raw["scenario"]
    if not isinstance(scenario, str) or scenario not in SCENARIOS:
        raise RecordError("unknown_scenario", f"unknown scenario {str(scenario)[:40]!r}", "scenario")
    occurred_at = parse_occurred_at(raw["occurred_at"], now)
    return ValidRecord(
        raw["record_id"], raw["customer_ref"], scenario, occurred_at, _activity(scenario, raw["activity"])
    )
