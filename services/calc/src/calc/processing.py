"""Turning one BehaviourReceived into exactly one stored and published outcome.

Store first, then publish the *stored* document: a redelivered record (or a crash between the
two steps) republishes the same payload under the same deterministic ids, which consumers
dedupe. The outcome of a record never changes on redelivery, even if the catalog did.
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


def publish_outcome(data: Mapping[str, Any], outcome: Calculation | Rejection, repo: CalcRepository,
                    publish: Publish, revision: int = 0, supersedes: str = "") -> dict:
    """Store then publish a calculation or rejection of `data` at `revision`; returns the payload."""
    if isinstance(outcome, Calculation):
        doc, _ = repo.save_reduction(reduction_payload(data, outcome, revision, supersedes), data)
        publish("reduction_calculated", doc["payload"], event_id=doc["_id"])
    else:
        doc, _ = repo.save_rejection(rejection_payload(data, outcome), data, revision)
        publish("behaviour_rejected", doc["payload"], event_id=rejection_event_id(data["record_key"], revision))
    return doc["payload"]


def handle_behaviour(data: Mapping[str, Any], catalog: Catalog, repo: CalcRepository,
                     publish: Publish) -> str:
    """-> "reduction_calculated" | "behaviour_rejected" | "already_reversed" (redelivery)."""
    record_key = data.get("record_key") if isinstance(data, Mapping) else None
    if not record_key:  # not even addressable: let the handler retry, then dead-letter it
        raise InvalidRecord("behaviour_received without record_key")
    stored = repo.reduction(reduction_id(record_key, 0))
    if stored is not None:
        if repo.is_reversed(stored["_id"]):
            return "already_reversed"  # recalculated since; its later revisions were published then
        publish("reduction_calculated", stored["payload"], event_id=stored["_id"])
        return "reduction_calculated"
    rejected = repo.rejection(record_key, 0)
    if rejected is not None:
        publish("behaviour_rejected", rejected["payload"], event_id=rejection_event_id(record_key, 0))
        return "behaviour_rejected"
    outcome = outcome_for(data, catalog)
    publish_outcome(data, outcome, repo, publish)
    return "reduction_calculated" if isinstance(outcome, Calculation) else "behaviour_rejected"
