"""Turning one BehaviourReceived into exactly one stored and published outcome.

Store first, then publish the *stored* document: a redelivered record (or a crash between the
two steps) republishes the same payload under the same deterministic ids, which consumers
dedupe. The outcome of a record never changes on redelivery, even if the catalog did: the
first stored outcome (reduction or rejection) wins.
"""

from typing import Any, Callable, Mapping

from opentelemetry import trace

from carbon_common import attributes
from carbon_common.telemetry import tracer

from calc.catalog import Catalog
from calc.domain import Calculation, InvalidRecord, Rejection, calculate
from calc.repository import CalcRepository
from calc.schemas import record_from_event, reduction_id, reduction_payload, rejection_event_id, rejection_payload

# (event_type, data, event_id) -> envelope; carbon_common's EventPublisher.publish / EventDispatcher
Publish = Callable[..., Any]


def outcome_for(data: Mapping[str, Any], catalog: Catalog) -> Calculation | Rejection:
    try:
        return calculate(record_from_event(data), catalog)
    except InvalidRecord as exc:
        return Rejection("invalid_record", str(exc))


def outcome_doc(
    data: Mapping[str, Any], outcome: Calculation | Rejection, revision: int = 0, supersedes: str = ""
) -> dict:
    """The document to store; its id is the reduction_id of (record_key, revision)."""
    outcome_id = reduction_id(data["record_key"], revision)
    if isinstance(outcome, Calculation):
        return CalcRepository.outcome_doc(
            outcome_id, "reduction", reduction_payload(data, outcome, revision, supersedes), data, revision
        )
    return CalcRepository.outcome_doc(outcome_id, "rejection", rejection_payload(data, outcome), data, revision)


def store_outcome(
    data: Mapping[str, Any],
    outcome: Calculation | Rejection,
    repo: CalcRepository,
    revision: int = 0,
    supersedes: str = "",
) -> tuple[dict, bool]:
    """-> (stored document, inserted now)."""
    return repo.save_outcomes([outcome_doc(data, outcome, revision, supersedes)])[0]


def event_of(doc: Mapping[str, Any]) -> tuple[str, dict, str]:
    """(event_type, payload, event_id) announcing a stored outcome."""
    if doc["kind"] == "reduction":
        return "reduction_calculated", doc["payload"], doc["_id"]
    return "behaviour_rejected", doc["payload"], rejection_event_id(doc["record_key"], doc["revision"])


def publish_stored(doc: Mapping[str, Any], publish: Publish) -> None:
    event_type, payload, event_id = event_of(doc)
    publish(event_type, payload, event_id=event_id)


def trace_rejection(delivery, payload: Mapping[str, Any]) -> None:
    """A span of its own for a rejected record, under the request's processing span (shared by
    the request's records): the SRE finds it by `carbon.record.key` and reads the code."""
    span = tracer().start_span(
        "reject record",
        context=trace.set_span_in_context(delivery.span) if delivery.span is not None else None,
        attributes={**attributes.from_payload(payload), attributes.REJECTION_CODE: str(payload.get("code", ""))},
    )
    span.end()


def handle_behaviours(deliveries, catalog: Catalog, repo: CalcRepository, publisher) -> dict:
    """A batch of BehaviourReceived deliveries: one insert_many of their outcomes, one `$in`
    for those stored before, one confirm wait for all events. -> counts per outcome."""
    work = []
    for d in deliveries:
        if not isinstance(d.data, Mapping) or not d.data.get("record_key"):
            # Not even addressable: this one retries and then dead-letters.
            d.failed = InvalidRecord("behaviour_received without record_key")
            continue
        work.append((d, outcome_doc(d.data, outcome_for(d.data, catalog))))
    stored = repo.save_outcomes([doc for _, doc in work])
    repeats = [doc["_id"] for (doc, inserted) in stored if not inserted and doc["kind"] == "reduction"]
    reversed_ids = repo.reversed_among(repeats)
    counts: dict[str, int] = {}
    events = []
    for (d, _), (doc, _) in zip(work, stored):
        if doc["_id"] in reversed_ids:  # recalculated since; later revisions were published then
            counts["already_reversed"] = counts.get("already_reversed", 0) + 1
            continue
        event_type, payload, event_id = event_of(doc)
        if event_type == "behaviour_rejected":
            trace_rejection(d, payload)
        events.append((event_type, payload, event_id, d.traceparent))
        counts[event_type] = counts.get(event_type, 0) + 1
    publisher.publish_many(events)
    return counts
