"""Read side of the RPC entrypoints (pure: catalog in, JSON-ready dicts out): previews, the
methodology and factor-set listings and documents."""

from typing import Any, Mapping

from calc.catalog import Catalog
from calc.domain import Calculation, InvalidRecord, Record, parse_time, calculate
from calc.schemas import breakdown


def preview(record: Mapping[str, Any], catalog: Catalog) -> dict[str, Any]:
    """Needs scenario, occurred_at and activity; user_pid only changes the dedup key."""
    if not isinstance(record, Mapping):
        raise InvalidRecord("record must be an object")
    missing = [f for f in ("scenario", "occurred_at") if not record.get(f)]
    if missing:
        raise InvalidRecord(f"record lacks {', '.join(missing)}")
    activity = record.get("activity") or {}
    if not isinstance(activity, Mapping):
        raise InvalidRecord("activity must be an object of strings")
    result = calculate(
        Record(
            str(record["scenario"]),
            parse_time(str(record["occurred_at"])),
            {str(k): str(v) for k, v in activity.items()},
            str(record.get("user_pid", "")),
        ),
        catalog,
    )
    if isinstance(result, Calculation):
        return breakdown(result)
    return {
        "eligible": False,
        "grams": 0,
        "code": result.code,
        "message": result.message,
        "methodology": {"id": result.methodology_id, "version": result.methodology_version},
    }


def _summary(item, catalog: Catalog) -> dict[str, Any]:
    doc = item.document
    return {
        "id": item.id,
        "version": item.version,
        "status": item.status,
        "supersedes": getattr(item, "supersedes", None),
        "superseded": catalog.is_superseded(item),
        "title": doc["title"],
        "issuer": doc["issuer"],
        "effective_from": doc["effective_from"],
        "effective_to": doc["effective_to"],
    }


def methodology_summaries(catalog: Catalog) -> list[dict[str, Any]]:
    return [
        {**_summary(m, catalog), "scenario": m.scenario, "formula": m.formula, "factor_set": m.factor_set_id}
        for m in catalog.methodologies
    ]


def factor_set_summaries(catalog: Catalog) -> list[dict[str, Any]]:
    return [_summary(f, catalog) for f in catalog.factor_sets]


def methodology_document(catalog: Catalog, methodology_id: str, version: str) -> dict | None:
    m = catalog.methodology(methodology_id, version)
    return None if m is None else {**m.document, "superseded": catalog.is_superseded(m)}


def factor_set_document(catalog: Catalog, factor_set_id: str, version: str) -> dict | None:
    f = catalog.factor_set(factor_set_id, version)
    return None if f is None else {**f.document, "superseded": catalog.is_superseded(f)}
