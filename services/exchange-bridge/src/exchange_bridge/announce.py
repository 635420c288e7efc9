"""The bridge's events (proto/carbon/events/v1/exchange.proto): one per stored transition,
published under a span that starts a new trace and links to the traces of the records the
batch carries (docs/telemetry.md: a batch has many parents; a link keeps each record's trace
whole). At most MAX_LINKS distinct traces are linked, as carbon_common's batch publishes do.

A transition's event is published after the transition is stored, then marked in `published`
(event id); a crash in between publishes it again on the next pass, under the same event id
(consumers dedupe on event_id, docs/events.md rule 2).
"""

from opentelemetry import context as otel_context
from opentelemetry import trace

from carbon_common import attributes
from carbon_common.clock import utc_now_iso
from carbon_common.events import MAX_LINKS
from carbon_common.telemetry import extract_context, tracer

from exchange_bridge import metrics, rules


def batch_ref(batch_doc: dict) -> dict:
    batch = batch_doc["batch"]
    return {
        "batch_id": batch["batch_id"],
        "methodology_id": batch["methodology_id"],
        "methodology_version": batch["methodology_version"],
        "vintage": batch["vintage"],
        "attempt": batch.get("attempt", 1),
        "record_count": batch["record_count"],
        "quantity_grams": batch["quantity_grams"],
    }


def reduction_ids(batch_doc: dict) -> list[str]:
    return sorted(leaf["reduction_id"] for leaf in batch_doc["leaves"])


def _first_last(batch: dict, transition: dict) -> tuple[str, str]:
    if not transition.get("units"):
        return "", ""
    return rules.serial_of(batch, transition["start"]), rules.serial_of(batch, transition["end"])


def lifecycle_events(batch_doc: dict, state: str, transition: dict, slot: dict) -> list[tuple[str, str, dict]]:
    """[(event_type, event_id, payload)] of one lifecycle transition."""
    batch, ref = batch_doc["batch"], batch_ref(batch_doc)
    event_id = rules.transition_id(batch["batch_id"], state)
    at = transition["at"]
    if state == "formed":
        payload = {
            "batch": ref,
            "carried_in_grams": batch["carried_in_grams"],
            "carried_from": batch["carried_from"],
            "merkle_root": batch["merkle_root"],
            "consent_root": batch["consent_root"],
            "period": batch["period"],
            "formed_at": at,
            "retry_of": slot.get("retry_of", ""),
        }
    elif state in ("submitted", "verified"):
        payload = {"batch": ref, f"{state}_at": at}
    elif state == "rejected":
        payload = {"batch": ref, "code": transition["code"], "reason": transition["reason"], "rejected_at": at}
    elif state == "issued":
        payload = {
            "batch": ref,
            "units": transition["units"],
            "serial_block": transition["serial"],
            "serial_first": transition["start"],
            "serial_last": transition["end"],
            "carried_in_grams": batch["carried_in_grams"],
            "carried_from": batch["carried_from"],
            "carried_out_grams": transition["carried_out_grams"],
            "issued_at": at,
            "record_id": transition["record_id"],
        }
        first, last = _first_last(batch, transition)
        registered = {
            "batch_id": batch["batch_id"],
            "reduction_ids": reduction_ids(batch_doc),
            "grams": batch["quantity_grams"],
            "serial_start": first,
            "serial_end": last,
            "registered_at": at,
            "entry_ids": sorted(batch_doc["transfer_entry_ids"]),
            "merkle_root": batch["merkle_root"],
            "record_count": batch["record_count"],
            "period": batch["period"],
            "methodology_id": batch["methodology_id"],
            "methodology_version": batch["methodology_version"],
            "vintage": batch["vintage"],
            "units": transition["units"],
            "carried_in_grams": batch["carried_in_grams"],
            "carried_from": batch["carried_from"],
            "carried_out_grams": transition["carried_out_grams"],
            "consent_root": batch["consent_root"],
            "serial_block": transition["serial"],
            "serial_first": transition["start"],
            "serial_last": transition["end"],
            "attempt": batch.get("attempt", 1),
        }
        return [
            ("exchange_batch_issued", event_id, payload),
            ("exchange_batch_registered", batch["batch_id"], registered),
        ]
    elif state == "released":
        payload = {
            "batch": ref,
            "reduction_ids": reduction_ids(batch_doc),
            "code": transition["code"],
            "released_at": at,
            "next_batch_id": transition["next_batch_id"],
        }
    elif state == "written_off":
        payload = {
            "batch": ref,
            "reduction_ids": reduction_ids(batch_doc),
            "grams": transition["grams"],
            "code": transition["code"],
            "written_off_at": at,
            "first_batch_id": transition["first_batch_id"],
        }
    else:
        raise ValueError(f"no event for state {state}")
    return [(f"exchange_batch_{state}", event_id, payload)]


def unit_event(batch_doc: dict, transition: dict) -> tuple[str, str, dict]:
    """(event_type, event_id, payload) of a transfer, retirement or cancellation."""
    state = transition["state"]
    moved = {
        "batch": batch_ref(batch_doc),
        "request_key": transition["request_key"],
        "record_id": transition["record_id"],
        "units": transition["units"],
        "serial_block": transition["serial"],
        "serial_first": transition["start"],
        "serial_last": transition["end"],
        "from_holder": transition["from_holder"],
        "to_holder": transition["to_holder"],
        "at": transition["at"],
    }
    payload = {"units": moved}
    if state == "retired":
        payload.update(beneficiary=transition["beneficiary"], reason=transition["reason"])
    elif state == "cancelled":
        payload["reason"] = transition["reason"]
    return f"exchange_batch_{state}", transition["_id"], payload


def linked_span(name: str, traceparents, span_attributes: dict):
    """A span in a new trace, linked to up to MAX_LINKS distinct record traces."""
    distinct = list(dict.fromkeys(tp for tp in traceparents if tp))[:MAX_LINKS]
    links = []
    for tp in distinct:
        span_context = trace.get_current_span(extract_context({"traceparent": tp})).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    return tracer().start_as_current_span(name, context=otel_context.Context(), links=links, attributes=span_attributes)


class Announcer:
    """Publishes events through `dispatch(event_type, payload, event_id=…)` (nameko's
    EventDispatcher, or a fake) and marks each one published."""

    def __init__(self, dispatch, repo):
        self.dispatch, self.repo = dispatch, repo

    def publish(self, batch_doc: dict, events: list[tuple[str, str, dict]], skip: set[str] = frozenset()) -> int:
        sent = 0
        for event_type, event_id, payload in events:
            if event_id in skip:
                continue
            span_attributes = {
                attributes.BATCH_ID: batch_doc["_id"],
                attributes.EVENT_TYPE: event_type,
                attributes.EVENT_ID: event_id,
                attributes.GRAMS: batch_doc["batch"]["quantity_grams"],
            }
            with linked_span(f"exchange_bridge {event_type}", batch_doc.get("traceparents", []), span_attributes):
                self.dispatch(event_type, payload, event_id=event_id)
            self.repo.mark_published(event_id, utc_now_iso())
            metrics.EVENTS.labels(event_type).inc()
            sent += 1
        return sent
