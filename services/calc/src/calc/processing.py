"""Turning one BehaviourReceived into exactly one stored and published outcome.

Store first, then publish the *stored* document: a redelivered record (or a crash between the
two steps) republishes the same payload under the same deterministic ids, which consumers
dedupe. The outcome of a record never changes on redelivery, even if the catalog did: the
first stored outcome (reduction or rejection) wins.
"""
from typing import Any, Callable, Mapping

from calc.catalog import Catalog
from calc.domain import Calculation, InvalidRecord, Rejection, calculate
from calc.repository import CalcRepository
from calc.schemas import (record_from_event, reduction_id, reduction_payload, rejection_event_id,
                          rejection_payload)

# (event_type, data, event_id) -> envelope; carbon_common's EventPublisher.publish / EventDispatcher
Publish = Callable[..., Any]


def outcome_for(data: Mapping[str, Any], catalog: Catalog) -> Calculation | Rejection:
    try:
        return calculate(record_from_event(data), catalog)
    except InvalidRecord as exc:
        return Rejection("invalid_record", str(exc))


def store_outcome(data: Mapping[str, Any], outcome: Calculation | Rejection, repo: CalcRepository,
                  revision: int = 0, supersedes: str = "") -> tuple[dict, bool]:
    """-> (stored document, inserted now). The id is the reduction_id of (record_key, revision)."""
    outcome_id = reduction_id(data["record_key"], revision)
    if isinstance(outcome, Calculation):
        return repo.save_outcome(outcome_id, "reduction", reduction_payload(data, outcome, revision, supersedes),
                                 data, revision)
    return repo.save_outcome(outcome_id, "rejection", rejection_payload(data, outcome), data, revision)


def publish_stored(doc: Mapping[str, Any], publish: Publish) -> None:
    if doc["kind"] == "reduction":
        publish("reduction_calculated", doc["payload"], event_id=doc["_id"])
    else:
        publish("behaviour_rejected", doc["payload"], event_id=rejection_event_id(doc["record_key"], doc["revision"]))


def handle_behaviour(data: Mapping[str, Any], catalog: Catalog, repo: CalcRepository,
                     publish: Publish) -> str:
    """-> "reduction_calculated" | "behaviour_rejected" | "already_reversed" (late redelivery)."""
    if not isinstance(data, Mapping) or not data.get("record_key"):
        # Not even addressable: raise, so the handler retries and then dead-letters it.
        raise InvalidRecord("behaviour_received without record_key")
    doc, inserted = store_outcome(data, outcome_for(data, catalog), repo)
    if not inserted and doc["kind"] == "reduction" and repo.is_reversed(doc["_id"]):
        return "already_reversed"  # recalculated since; later revisions were published then
    publish_stored(doc, publish)
    return "reduction_calculated" if doc["kind"] == "reduction" else "behaviour_rejected"
