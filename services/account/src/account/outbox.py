"""Outbox relay: every ledger entry's events are published at least once, with stable ids.

Entries made by a single append (RPC, reversals) get an outbox marker `{_id: entry_id}`
*before* the entry is inserted. The relay reads the markers (a small collection: only what
is in flight), loads each entry (so no event is ever sent for an entry that does not exist),
publishes its events with one confirm wait, then drops the marker. A crash in between only
means a repeat: consumers dedupe on event_id. A marker whose entry never appeared (the
operation was refused or its process died before the insert) is dropped after ABANDON_AFTER.
The writer wakes the relay; it also looks every few seconds for markers of other processes
(the gRPC server). Batch-credited entries carry no marker: the batch publishes their events
before acking its messages. A redemption's transfer to the bank pool is completed before its
debit is announced.
"""

import logging
from datetime import timedelta

from carbon_common.clock import utc_now

from account import feed, ledger
from account.metrics import EVENTS_RELAYED

log = logging.getLogger(__name__)

REDUCTION_FIELDS = (
    "reduction_id",
    "record_key",
    "partner_id",
    *ledger.PROVENANCE_FIELDS,
)


def entry_ref(entry: dict) -> dict:
    return {
        "entry_id": entry["_id"],
        "account_id": entry["account_id"],
        "owner_pid": entry["owner_pid"],
        "account_kind": entry["account_kind"],
        "seq": entry["seq"],
        "posted_at": entry["posted_at"],
    }


def _pick(entry: dict, fields) -> dict:
    return {k: entry[k] for k in fields if entry.get(k) not in (None, "")}


def _capped(entry: dict) -> dict:
    cap = entry.get("cap") or {}
    return {
        "entry": entry_ref(entry),
        **_pick(entry, ("reduction_id", "record_key", "scenario", "occurred_at")),
        "requested_grams": entry.get("requested_grams", 0),
        "credited_grams": entry["grams"],
        "cap_period": cap.get("period", ""),
        "cap_scope": cap.get("scope", ""),
        "cap_max_grams": cap.get("max_grams", 0),
        "cap_max_count": cap.get("max_count", 0),
    }


def _moved(event_type: str, entry: dict, reason: str, **fields) -> tuple[str, str, dict]:
    """An account_credited / account_debited event: grams signed by direction, the balance after."""
    grams = entry["grams"] if event_type == "account_credited" else -entry["grams"]
    payload = {"entry": entry_ref(entry), "grams": grams, "balance_after": entry["balance_after"], "reason": reason}
    return event_type, entry["_id"], {**payload, **fields}


def events_for(entry: dict) -> list[tuple[str, str, dict]]:
    """(event_type, event_id, payload) for one entry; the first event's id is the entry id."""
    kind, ref, eid = entry["type"], entry_ref(entry), entry["_id"]
    events = []
    if kind == ledger.OPENED:
        events.append(("account_opened", eid, {"entry": ref}))
    elif kind == ledger.STATUS_CHANGED:
        events.append(
            (
                "account_status_changed",
                eid,
                {
                    "entry": ref,
                    "status": entry["status"],
                    "previous_status": entry.get("previous_status", ""),
                    "reason": entry.get("code", ""),
                },
            )
        )
    elif kind == ledger.CREDIT:
        events.append(
            _moved(
                "account_credited",
                entry,
                "reduction",
                **_pick(entry, REDUCTION_FIELDS),
                requested_grams=entry.get("requested_grams", entry["grams"]),
                capped_grams=entry.get("capped_grams", 0),
            )
        )
        if entry.get("capped_grams"):
            events.append(("reduction_capped", f"{eid}:capped", _capped(entry)))
    elif kind == ledger.CAPPED:
        events.append(("reduction_capped", eid, _capped(entry)))
    elif kind == ledger.DECLINED:
        events.append(
            (
                "reduction_declined",
                eid,
                {
                    "entry": ref,
                    **_pick(entry, ("reduction_id", "record_key", "scenario", "duplicate_of_record_key")),
                    "code": entry["code"],
                    "message": entry["code"].replace("_", " "),
                },
            )
        )
    elif kind == ledger.REVERSAL and entry.get("reverses_entry_id"):
        events.append(
            _moved(
                "account_debited",
                entry,
                "reversal",
                reduction_id=entry["reduction_id"],
                reversal_reason=entry.get("reason", ""),
                shortfall_grams=entry.get("shortfall_grams", 0),
            )
        )
    elif kind == ledger.REDEMPTION:
        events.append(
            _moved(
                "account_debited",
                entry,
                "redemption",
                request_key=entry["request_key"],
                reward_id=entry.get("reward_id", ""),
            )
        )
    elif kind == ledger.REFUND:
        events.append(_moved("account_credited", entry, "refund", source_entry_id=entry["refunded_entry_id"]))
    elif kind == ledger.REDEMPTION_TRANSFER:
        events.append(
            _moved(
                "account_credited",
                entry,
                "redemption_transfer",
                source_entry_id=entry["source_entry_id"],
                source_account_id=entry["source_account_id"],
            )
        )
    if entry.get("previous_tier") and entry.get("tier_after") != entry["previous_tier"]:
        events.append(
            (
                "tier_changed",
                f"{eid}:tier",
                {
                    "entry": ref,
                    "previous_tier": entry["previous_tier"],
                    "tier": entry["tier_after"],
                    "trailing_12m_grams": entry.get("trailing_12m_after", 0),
                },
            )
        )
    return events


ABANDON_AFTER = timedelta(minutes=10)


def event_items(entry: dict, traceparent: str = "") -> list[tuple[str, dict, str, str]]:
    """(event_type, payload, event_id, traceparent) for BatchPublisher.publish_many."""
    return [(event_type, data, event_id, traceparent) for event_type, event_id, data in events_for(entry)]


class Relay:
    def __init__(self, repository, operations, publisher):
        """publisher.publish_many(items) must raise unless the broker confirmed every event."""
        self.repo = repository
        self.operations = operations
        self.publisher = publisher

    def relay_once(self, limit: int = 500) -> int:
        markers = self.repo.pending_outbox(limit)
        if not markers:
            return 0
        entries = self.repo.entries_by_ids([m["_id"] for m in markers])
        items, done, now = [], [], utc_now()
        redemptions = []
        for marker in markers:
            entry = entries.get(marker["_id"])
            if entry is None:  # not (yet) inserted: its writer is still at it, or gave up
                if now - marker.get("created_at", now) > ABANDON_AFTER:
                    self.repo.drop_outbox([marker["_id"]])
                continue
            if entry["type"] == ledger.REDEMPTION:
                redemptions.append(entry)
            items.extend(event_items(entry, marker.get("traceparent") or ""))
            done.append(entry["_id"])
        # Settlement rides on the relay: redemptions due at once reach the pool here, in one
        # batch over the pool's shards (their transfers' markers are relayed on the next pass).
        self.operations.settle_redemptions(redemptions)
        items = feed.with_entries_posted(items)
        self.publisher.publish_many(items)
        for item in items:
            EVENTS_RELAYED.labels(item[0]).inc()
        self.repo.drop_outbox(done)
        return len(items)

    def settle_due_once(self) -> int:
        """Settle pending redemptions whose settlement window has passed (their transfers'
        outbox markers are relayed next) -> how many transfers."""
        return len(self.operations.settle_due())
