"""Event payloads in and out (JSON mapping of proto/carbon/events/v1/*.proto) and their ids."""

from typing import Any, Mapping

from carbon_common.gm import sm3_hex

from calc.domain import Calculation, InvalidRecord, Record, Rejection, parse_time, plain
from calc.formulas import FORMULAS

REQUIRED_RECORD_FIELDS = ("record_key", "user_pid", "scenario", "occurred_at")


def reduction_id(record_key: str, revision: int) -> str:
    """SM3(record_key ":" revision): the account credits each id at most once."""
    return sm3_hex(f"{record_key}:{revision}".encode("utf-8"))


def reversal_event_id(reduction_id_: str) -> str:
    return sm3_hex(f"reduction_reversed:{reduction_id_}".encode("utf-8"))


def refusal_event_id(reduction_id_: str) -> str:
    return sm3_hex(f"reduction_reversal_refused:{reduction_id_}".encode("utf-8"))


def rejection_event_id(record_key: str, revision: int = 0) -> str:
    return sm3_hex(f"behaviour_rejected:{record_key}:{revision}".encode("utf-8"))


def record_from_event(data: Mapping[str, Any]) -> Record:
    """BehaviourReceived payload -> domain Record; InvalidRecord if it cannot be read at all."""
    if not isinstance(data, Mapping):
        raise InvalidRecord("record must be an object")
    missing = [f for f in REQUIRED_RECORD_FIELDS if not data.get(f)]
    if missing:
        raise InvalidRecord(f"record lacks {', '.join(missing)}")
    activity = data.get("activity") or {}
    if not isinstance(activity, Mapping):
        raise InvalidRecord("activity must be an object of strings")
    return Record(
        scenario=str(data["scenario"]),
        occurred_at=parse_time(str(data["occurred_at"])),
        activity={str(k): str(v) for k, v in activity.items()},
        user_pid=str(data["user_pid"]),
    )


def _record_identity(data: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(data.get(k, "")) for k in ("record_key", "partner_id", "partner_record_id", "user_pid")}


def reduction_payload(
    data: Mapping[str, Any], calc: Calculation, revision: int = 0, supersedes: str = ""
) -> dict[str, Any]:
    """ReductionCalculated for BehaviourReceived `data`."""
    m = calc.methodology
    return {
        "reduction_id": reduction_id(str(data["record_key"]), revision),
        **_record_identity(data),
        "revision": revision,
        "supersedes": supersedes,
        "consent_id": str(data.get("consent_id", "")),
        "scenario": m.scenario,
        "occurred_at": str(data["occurred_at"]),
        "grams": calc.grams,
        "methodology_id": m.id,
        "methodology_version": m.version,
        "factor_set_id": calc.factor_set_id,
        "factor_set_version": calc.factor_set_version,
        "factors": dict(calc.factors),
        "inputs": dict(calc.inputs),
        "baseline_g": plain(calc.baseline_g),
        "project_g": plain(calc.project_g),
        "caps": [dict(c) for c in calc.caps],
        "dedup_key": calc.dedup_key,
    }


def rejection_payload(data: Mapping[str, Any], rejection: Rejection) -> dict[str, Any]:
    """BehaviourRejected for BehaviourReceived `data`."""
    return {
        **_record_identity(data),
        "scenario": str(data.get("scenario", "")),
        "code": rejection.code,
        "message": rejection.message,
        "methodology_id": rejection.methodology_id,
        "methodology_version": rejection.methodology_version,
    }


def reversal_payload(
    reduction: Mapping[str, Any], corrected_by_version: str, reason: str = "factor_corrected"
) -> dict[str, Any]:
    """ReductionReversed for a stored ReductionCalculated payload."""
    return {
        "reduction_id": reduction["reduction_id"],
        "record_key": reduction["record_key"],
        "user_pid": reduction["user_pid"],
        "scenario": reduction["scenario"],
        "reason": reason,
        "corrected_by_version": corrected_by_version,
    }


def breakdown(calc: Calculation) -> dict[str, Any]:
    """Preview answer: the grams and every step that produced them."""
    m, formula = calc.methodology, FORMULAS[calc.methodology.formula]
    return {
        "eligible": True,
        "grams": calc.grams,
        "methodology": {"id": m.id, "version": m.version, "title": m.document["title"], "source": m.document["source"]},
        "factor_set": {"id": calc.factor_set_id, "version": calc.factor_set_version},
        "formula": {
            "kind": formula.kind,
            "baseline_g": formula.baseline,
            "project_g": formula.project,
            "reduction": "floor(baseline_g − project_g), never negative",
        },
        "factors": dict(calc.factors),
        "inputs": dict(calc.inputs),
        "quantities": {k: plain(v) for k, v in calc.quantities.items()},
        "baseline_g": plain(calc.baseline_g),
        "project_g": plain(calc.project_g),
        "caps": [dict(c) for c in calc.caps],
        "dedup_key": calc.dedup_key,
    }
