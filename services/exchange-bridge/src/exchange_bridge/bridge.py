"""One bridge run: claim new pool credits, form batches, submit them, announce registrations.

Every step is resumable (insert-only state in the repository), so a run that dies anywhere is
finished by a later run, on this instance or another:
  claim     entries -> items (unique entry_id: an entry joins at most one claim, ever)
  form      claim -> batch (unique claim_id: one batch per claim, built from its own items)
  submit    batch -> submission (exchange is idempotent by batch_id; same stored signature)
  announce  submission -> exchange_batch_registered (event_id = batch_id) -> published
"""

import logging
import uuid
from datetime import timedelta

from nameko.exceptions import RemoteError
from opentelemetry import trace

from carbon_common import attributes
from carbon_common.accounts import POOL_OWNER
from carbon_common.clock import iso_z, utc_now, utc_now_iso
from carbon_common.telemetry import tracer

from exchange_bridge import domain, metrics
from exchange_bridge.exchange import SubmissionFailed

log = logging.getLogger(__name__)
PAGE_SIZE = 500
# Times the bridge stores ("%Y-%m-%dT%H:%M:%S.%fZ") compare as text: claimed_at < cutoff.


class Bridge:
    def __init__(self, account, repo, signer, exchange, dispatch, min_grams: int = 1, claim_grace_seconds: int = 300):
        self.account, self.repo, self.signer, self.exchange, self.dispatch = account, repo, signer, exchange, dispatch
        self.min_grams, self.claim_grace = min_grams, timedelta(seconds=claim_grace_seconds)

    def run(self) -> dict:
        self.recover_claims()
        claimed = self.claim_new()
        if claimed:
            self.form(claimed)
        failures = self.submit_pending()
        announced = self.announce()
        return {"registered": announced, "failed": failures}

    # claim
    def pool_credits(self) -> tuple[list[dict], int]:
        """The bank pool's redemption_transfer entries after the bridge's watermark (paged by
        seq through account RPC, `_id` reads only) -> (entries, newest seq read)."""
        entries, seq = [], self.repo.watermark()
        while True:
            try:
                page = self.account.list_entries_after(
                    owner_pid=POOL_OWNER, after_seq=seq, limit=PAGE_SIZE, types=["redemption_transfer"]
                )
            except RemoteError as exc:
                if exc.exc_type == "LookupError":  # no redemption yet: the pool is opened lazily
                    return [], seq
                raise
            entries.extend(page["entries"])
            if page["last_seq"] == seq:
                return entries, seq
            seq = page["last_seq"]

    def claim_new(self) -> str | None:
        entries, last_seq = self.pool_credits()
        fresh = domain.select_unclaimed(entries, self.repo.claimed_ids([e["entry_id"] for e in entries]))
        grams = sum(int(e["grams"]) for e in fresh)
        if not fresh or grams < self.min_grams:
            log.info("nothing to batch", extra={"unclaimed_entries": len(fresh), "grams": grams})
            if not fresh:
                self.repo.advance_watermark(last_seq)  # everything up to here is claimed
            return None
        claim_id, now = uuid.uuid4().hex, utc_now_iso()
        self.repo.open_claim(claim_id, now)
        self.repo.claim_items([domain.item_from_entry(e, claim_id, now) for e in fresh])
        # Only after the claim: a crash before this re-reads entries that are then found claimed.
        self.repo.advance_watermark(last_seq)
        return claim_id

    # form
    def recover_claims(self) -> None:
        cutoff = iso_z(utc_now() - self.claim_grace)
        for claim_id in self.repo.claims_without_batch(cutoff):
            log.warning("forming the batch of an abandoned claim", extra={"claim_id": claim_id})
            self.form(claim_id)

    def form(self, claim_id: str) -> dict | None:
        items = self.repo.items_of_claim(claim_id)
        if not items:  # every entry went to another claim first; the claim stays empty for ever
            return None
        batch = domain.build_batch(items, utc_now_iso())
        return self.repo.insert_batch(
            {
                "_id": batch["batch_id"],
                "claim_id": claim_id,
                "batch": batch,
                "signature": self.signer.sign(batch),
                "public_key": self.signer.public_hex,
                "entry_ids": sorted(item["entry_id"] for item in items),
            }
        )

    # submit
    def submit_pending(self) -> int:
        failures = 0
        for doc in self.repo.unsubmitted_batches():
            signed = {"batch": doc["batch"], "signature": doc["signature"], "public_key": doc["public_key"]}
            with tracer().start_as_current_span(
                "exchange_bridge submit batch",
                attributes={attributes.BATCH_ID: doc["_id"], attributes.GRAMS: doc["batch"]["quantity"]},
            ) as span:
                try:
                    result = self.exchange.submit(signed)
                except SubmissionFailed as exc:
                    failures += 1
                    span.set_status(trace.Status(trace.StatusCode.ERROR, "submission failed"))
                    log.error("batch not registered yet", extra={"batch_id": doc["_id"], "error": str(exc)})
                    continue
            result.setdefault("registered_at", utc_now_iso())
            self.repo.record_submission(doc["_id"], result)
        return failures

    # announce
    def announce(self) -> list[str]:
        done = []
        for batch_doc, submission in self.repo.unpublished():
            batch = batch_doc["batch"]
            # A plain span, not links to the records' traces: account RPC does not expose the
            # traceparent stored with each entry (docs/telemetry.md plans links for batches).
            with tracer().start_as_current_span(
                "exchange_bridge batch registered",
                attributes={attributes.BATCH_ID: batch["batch_id"], attributes.GRAMS: batch["quantity"]},
            ):
                self.dispatch(
                    "exchange_batch_registered",
                    domain.registered_event(batch, batch_doc["entry_ids"], submission),
                    event_id=batch["batch_id"],
                )
            self.repo.mark_published(batch["batch_id"], utc_now_iso())
            metrics.BATCHES_REGISTERED.inc()
            metrics.GRAMS_REGISTERED.inc(batch["quantity"])
            log.info(
                "batch registered at the exchange",
                extra={
                    "batch_id": batch["batch_id"],
                    "grams": batch["quantity"],
                    "records": batch["record_count"],
                    "serial_start": submission["serial_start"],
                    "serial_end": submission["serial_end"],
                },
            )
            done.append(batch["batch_id"])
        return done
