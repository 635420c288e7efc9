"""Outbox relay: every ledger entry's events are published at least once, with stable ids.

An entry is inserted `published: false` and an outbox marker `{_id: entry_id}` is added right
after. The relay reads the markers, loads each entry (so no event is ever sent for an entry
that does not exist), publishes its events (publisher-confirmed), then marks the entry
published and drops the marker. A crash in between only means a repeat: consumers dedupe on
event_id. The sweep re-queues entries still unpublished whose marker was never written.
A redemption's transfer to the bank pool is completed before its debit is announced.
"""
import logging

from account import ledger
from account.metrics import EVENTS_RELAYED

log = logging.getLogger(__name__)

REDUCTION_FIELDS = ("reduction_id", "record_key", "partner_id", "scenario", "occurred_at", "methodology_id",
                    "methodology_version", "factor_set_id", "factor_set_version")


def entry_ref(entry: dict) -> dict:
    return {"entry_id": entry["_id"], "account_id": entry["account_id"], "owner_pid": entry["owner_pid"],
            "account_kind": entry["account_kind"], "seq": entry["seq"], "posted_at": entry["posted_at"]}


def _pick(entry: dict, fields) -> dict:
    return {k: entry[k] for k in fields if entry.get(k) not in (None, "")}


def _capped(entry: dict) -> dict:
    cap = entry.get("cap") or {}
    return {"entry": entry_ref(entry), **_pick(entry, ("reduction_id", "record_key", "scenario", "occurred_at")),
            "requested_grams": entry.get("requested_grams", 0), "credited_grams": entry["grams"],
            "cap_period": cap.get("period", ""), "cap_scope": cap.get("scope", ""),
            "cap_max_grams": cap.get("max_grams", 0), "cap_max_count": cap.get("max_count", 0)}


def events_for(entry: dict) -> list[tuple[str, str, dict]]:
    """(event_type, event_id, payload) for one entry; the first event's id is the entry id."""
    kind, ref, eid = entry["type"], entry_ref(entry), entry["_id"]
    events = []
    if kind == ledger.OPENED:
        events.append(("account_opened", eid, {"entry": ref}))
    elif kind == ledger.STATUS_CHANGED:
        events.append(("account_status_changed", eid, {"entry": ref, "status": entry["status"],
                       "previous_status": entry.get("previous_status", ""), "reason": entry.get("code", "")}))
    elif kind == ledger.CREDIT:
        events.append(("account_credited", eid, {
            "entry": ref, "grams": entry["grams"], "balance_after": entry["balance_after"], "reason": "reduction",
            **_pick(entry, REDUCTION_FIELDS), "requested_grams": entry.get("requested_grams", entry["grams"]),
            "capped_grams": entry.get("capped_grams", 0)}))
        if entry.get("capped_grams"):
            events.append(("reduction_capped", f"{eid}:capped", _capped(entry)))
    elif kind == ledger.CAPPED:
        events.append(("reduction_capped", eid, _capped(entry)))
    elif kind == ledger.DECLINED:
        events.append(("reduction_declined", eid, {
            "entry": ref, **_pick(entry, ("reduction_id", "record_key", "scenario", "duplicate_of_record_key")),
            "code": entry["code"], "message": entry["code"].replace("_", " ")}))
    elif kind == ledger.REVERSAL and entry.get("reverses_entry_id"):
        events.append(("account_debited", eid, {
            "entry": ref, "grams": -entry["grams"], "balance_after": entry["balance_after"], "reason": "reversal",
            "reduction_id": entry["reduction_id"], "reversal_reason": entry.get("reason", ""),
            "shortfall_grams": entry.get("shortfall_grams", 0)}))
    elif kind == ledger.REDEMPTION:
        events.append(("account_debited", eid, {
            "entry": ref, "grams": -entry["grams"], "balance_after": entry["balance_after"], "reason": "redemption",
            "request_key": entry["request_key"], "reward_id": entry.get("reward_id", "")}))
    elif kind == ledger.REDEMPTION_TRANSFER:
        events.append(("account_credited", eid, {
            "entry": ref, "grams": entry["grams"], "balance_after": entry["balance_after"],
            "reason": "redemption_transfer", "source_entry_id": entry["source_entry_id"],
            "source_account_id": entry["source_account_id"]}))
    if entry.get("previous_tier") and entry.get("tier_after") != entry["previous_tier"]:
        events.append(("tier_changed", f"{eid}:tier", {
            "entry": ref, "previous_tier": entry["previous_tier"], "tier": entry["tier_after"],
            "trailing_12m_grams": entry.get("trailing_12m_after", 0)}))
    return events


class Relay:
    def __init__(self, repository, operations, publish):
        """publish(event_type, data, event_id=...) must raise unless the broker confirmed."""
        self.repo = repository
        self.operations = operations
        self.publish = publish

    def relay_once(self, limit: int = 200) -> int:
        published = 0
        for entry_id, traceparent in self.repo.pending_outbox(limit):
            entry = self.repo.get_entry(entry_id)
            if entry is None:  # cannot happen (the marker follows the entry); never announce it
                log.error("outbox marker without entry", extra={"entry_id": entry_id})
                continue
            if entry["type"] == ledger.REDEMPTION:
                self.operations.transfer_to_pool(entry)
            for event_type, event_id, data in events_for(entry):
                self.publish(event_type, data, event_id=event_id, traceparent=traceparent or None)
                EVENTS_RELAYED.labels(event_type).inc()
                published += 1
            self.repo.mark_published(entry_id)
        return published

    def sweep_once(self, limit: int = 500) -> int:
        """Re-queue entries whose outbox marker was lost (writer died after its insert)."""
        missing = self.repo.unpublished_entry_ids(limit)
        for entry_id in missing:
            entry = self.repo.get_entry(entry_id)
            if entry is not None:
                self.repo.add_outbox(entry_id, entry["account_id"])
        return len(missing)
