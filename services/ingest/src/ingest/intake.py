"""Intake of one signed batch: validate, gate on consent, store receipts, publish, one outcome per record.

Durability: a relay hint listing the batch's record keys is stored first, then the receipts,
each carrying the hint's id (pending while that hint exists); the batch's events are published
with a publisher confirm, and only then is the hint deleted (the receipts are published) and
each record acknowledged. No per-record "published" document is written. A record whose publish
failed answers 503; it is republished (same event id) by the relay (`ingest.relay`) after a
grace period, or earlier by a replay of the partner.

Cost per request, whatever its size: every read is an `_id` lookup (`$in` for the batch), every
write one bulk insert or delete, and the batch's events go out with one confirm wait.
"""

import logging
from datetime import datetime

from carbon_common import gm, telemetry

from ingest import domain
from ingest.domain import ACCEPTED, DUPLICATE, REJECTED, UNAVAILABLE, Outcome
from ingest.errors import ApiError, RecordError
from ingest.validation import validate_record

log = logging.getLogger(__name__)


def precheck(document, max_batch: int) -> None:
    """Shape and size of a batch, checked before any signature math."""
    if not isinstance(document, dict) or set(document) != {"records"} or not isinstance(document["records"], list):
        raise ApiError("invalid_request", 'the body must be {"records": [...]}')
    count = len(document["records"])
    if count == 0:
        raise ApiError("invalid_request", "records is empty")
    if count > max_batch:
        raise ApiError("batch_too_large", f"at most {max_batch} records per request", limit=max_batch)


def validate_batch(raw_records, allowed_scenarios, now):
    """Each record checked on its own (validation.py), once per batch, and in the partner's
    scenarios: ([Outcome of each invalid record], [(index, ValidRecord)])."""
    outcomes, valid, seen = [], [], set()
    for index, raw in enumerate(raw_records):
        record_id = raw.get("record_id") if isinstance(raw, dict) and isinstance(raw.get("record_id"), str) else None
        try:
            record = validate_record(raw, now)
            if record.record_id in seen:
                raise RecordError("duplicate_in_batch", "this record_id appears earlier in the batch", "record_id")
            seen.add(record.record_id)
            if record.scenario not in allowed_scenarios:
                raise RecordError("scenario_not_allowed", f"partner may not send {record.scenario}", "scenario")
            valid.append((index, record))
        except RecordError as err:
            outcomes.append(Outcome(index, record_id, REJECTED, err.code, err.message, err.field))
    return outcomes, valid


CONSENT_REFUSALS = {
    "consent_required": ("no active consent of this customer for this partner and scenario", None),
    "outside_consent": (
        "occurred_at lies outside the customer's consent for this partner and scenario "
        "(before it was granted, or at or after its expiry): the record can never count",
        "occurred_at",
    ),
}


def gate_on_consent(valid, pids: dict, consents, now):
    """Valid records whose customer has an active consent for this scenario whose validity
    holds the record's occurred_at (`pids`: customer number -> user_pid; `consents`: the
    partner's live consents of those customers):
    ([Outcome of each refused record], [(index, record, user_pid, consent)])."""
    by_user = {}
    for consent in consents:
        by_user.setdefault(consent["user_pid"], []).append(consent)
    refused, passed = [], []
    for index, record in valid:
        user_pid = pids[record.customer_ref]
        occurred_at = datetime.fromisoformat(record.occurred_at.replace("Z", "+00:00"))
        consent, code = domain.consent_for_record(by_user.get(user_pid, []), record.scenario, occurred_at, now)
        if consent is None:
            message, field = CONSENT_REFUSALS[code]
            refused.append(Outcome(index, record.record_id, REJECTED, code, message, field))
        else:
            passed.append((index, record, user_pid, consent))
    return refused, passed


class Intake:
    def __init__(self, repo, bus, settings, metrics):
        self.repo, self.bus, self.settings, self.metrics = repo, bus, settings, metrics

    def handle(self, caller) -> list:
        """[Outcome] of each record of the caller's batch, in order."""
        outcomes, candidates = self._candidates(caller)
        if not candidates:  # every record refused: nothing stored, the nonce stays unused
            return self._counted(outcomes)
        caller.consume_nonce()
        keys = [c["receipt"]["_id"] for c in candidates]
        # The relay's hint goes first: a receipt never exists without one until it is published.
        hint = self.repo.note_unpublished(keys, caller.now, telemetry.current_traceparent())
        stored = self.repo.store_receipts([c["receipt"] for c in candidates], hint)
        same = [
            r
            for (r, new), c in zip(stored, candidates)
            if not new and r["content_hash"] == c["receipt"]["content_hash"]
        ]
        pending, live = self.repo.pending_among(same)
        to_publish = []
        for cand, (receipt, new) in zip(candidates, stored):
            if new:
                cand["receipt"] = receipt  # as stored: with its hint
                to_publish.append((cand, ACCEPTED))
            elif receipt["content_hash"] != cand["receipt"]["content_hash"]:
                outcomes.append(self._conflict(cand))  # the original, if pending, is tracked by its own hint
            elif receipt["_id"] in pending:
                cand["receipt"] = receipt  # stored by an earlier attempt whose publish failed
                to_publish.append((cand, DUPLICATE))
            else:
                outcomes.append(self._outcome(cand, DUPLICATE, receipt))
        published_outcomes, confirmed = self._publish(to_publish, caller.now)
        outcomes.extend(published_outcomes)
        self.repo.clear_unpublished(self._done_hints(hint, stored, live, set(confirmed)))
        log.info("batch handled", extra={"partner_id": caller.partner_id, "records": len(outcomes)})
        return self._counted(outcomes)

    @staticmethod
    def _done_hints(hint, stored, live, confirmed: set) -> list:
        """Hints whose receipts are all published now. Ours once the receipts stored under it
        are confirmed (keys stored by others are tracked by their own hints). An earlier
        request's live hint once every key it lists is in this batch and either confirmed now
        or stored under another hint (a replay of a whole failed batch): it would otherwise
        keep its receipts pending, and make the relay publish them again, until its grace ends."""
        stored_under = {receipt["_id"]: receipt.get("hint") for receipt, _ in stored}
        done = [hint] if all(r["_id"] in confirmed for r, new in stored if new) else []
        done += [
            hint_id
            for hint_id, hint_keys in live.items()
            if all(k in stored_under and (k in confirmed or stored_under[k] != hint_id) for k in hint_keys)
        ]
        return done

    def _candidates(self, caller):
        """Validate the batch, gate each valid record on its customer's consent, and build the
        receipts of those that pass: ([outcome of each refused record], [candidate])."""
        partner, now = caller.partner, caller.now
        outcomes, valid = validate_batch(caller.body["records"], partner.get("scenarios", []), now)
        pids = {r.customer_ref: self.pseudonym(r.customer_ref) for _, r in valid}
        consents = self.repo.consents_for(partner["_id"], set(pids.values())) if valid else []
        refused, consented = gate_on_consent(valid, pids, consents, now)
        candidates = [
            {
                "index": index,
                "receipt": domain.receipt(
                    partner["_id"], record, user_pid, consent["_id"], now, self.settings.pseudonym_key
                ),
            }
            for index, record, user_pid, consent in consented
        ]
        return outcomes + refused, candidates

    def pseudonym(self, customer_ref: str) -> str:
        return gm.pseudonymize(self.settings.pseudonym_key, customer_ref)

    def _publish(self, to_publish, now):
        """Publish the batch's events with one confirm wait; if the broker does not confirm them
        all, none counts as forwarded (each stays pending with its hint: 503, the relay or a
        replay republishes it with the same event id)."""
        if not to_publish:
            return [], []
        receipts = [cand["receipt"] for cand, _ in to_publish]
        try:
            self.bus.publish_many(
                [("behaviour_received", domain.behaviour_received(r), r["_id"], None) for r in receipts]
            )
        except Exception:  # noqa: BLE001 - any broker failure means "not durable yet"
            log.exception("publish failed; records stay pending", extra={"records": len(receipts)})
            return [
                Outcome(
                    cand["index"],
                    receipt["partner_record_id"],
                    UNAVAILABLE,
                    "unavailable",
                    "stored but not yet forwarded (the platform retries it by itself): replay this record to confirm",
                    record_key=receipt["_id"],
                )
                for (cand, _), receipt in zip(to_publish, receipts)
            ], []
        confirmed = [r["_id"] for r in receipts]
        self.repo.mark_published(receipts, now)  # only receipts stored before hints get a marker
        return [self._outcome(cand, outcome, cand["receipt"]) for cand, outcome in to_publish], confirmed

    @staticmethod
    def _outcome(cand, outcome, receipt):
        return Outcome(
            cand["index"],
            receipt["partner_record_id"],
            outcome,
            record_key=receipt["_id"],
            received_at=receipt["received_at"],
        )

    @staticmethod
    def _conflict(cand):
        receipt = cand["receipt"]
        return Outcome(
            cand["index"],
            receipt["partner_record_id"],
            REJECTED,
            "record_conflict",
            "this record_id was already received with different content; the original stands",
            record_key=receipt["_id"],
        )

    def _counted(self, outcomes) -> list:
        """The batch's outcomes in record order, counted; the HTTP answer is the view's
        (ingest.views.batch_answer)."""
        outcomes.sort(key=lambda o: o.index)
        for o in outcomes:
            self.metrics.records.labels(outcome=o.outcome, code=o.code or "").inc()
        return outcomes
