"""The account nameko service: consumes reductions, relays its outbox, answers internal RPC."""

import logging

from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer

from carbon_common import ops as operations  # the module: `nameko run` must not see the mixin as a service
from carbon_common.batching import batch_event_handler
from carbon_common.events import BatchDispatcher
from carbon_common.handlers import event_handler
from carbon_common.mongo import MongoDatabase
from carbon_common.schemas import check_envelope
from carbon_common.tracing import Tracing

from account import feed, reconciliation_reads, schemas
from account.catalogue.provider import CatalogueProvider
from account.enterprise import retired
from account.enterprise.provider import EnterpriseProvider
from account.enterprise.readmodel import item_of_posted
from account.enterprise.scope import EnterpriseAccountMissing
from account.queries import public_entry
from account.dependencies import DATABASE, LedgerProvider
from account.ledger import LedgerError
from account.outbox import event_items
from account.posting import observe_posted

log = logging.getLogger(__name__)
EXPECTED = (LedgerError, LookupError)
CATALOGUE_POLL_SECONDS = 1.0  # how soon a partner hears of a redemption, and expiries are decided
RETIRED_DRAIN_SECONDS = 60.0  # retired queues are left over from an upgrade: no hurry, and cheap once gone


class AccountService(operations.OperationsMixin, reconciliation_reads.ReconciliationReads):
    name = "account"

    tracing = Tracing()
    ledger = LedgerProvider()
    db = MongoDatabase(DATABASE)
    ledger_publisher = BatchDispatcher()
    catalogue = CatalogueProvider()
    enterprise = EnterpriseProvider()
    config = Config()

    # events in
    @batch_event_handler("calc", "reduction_calculated", max_batch=500)
    def handle_reduction_calculated(self, deliveries):
        """A batch of reductions: credited (or capped/declined) once each, their events published
        with one confirm wait before the batch is acked (a redelivery publishes them again)."""
        valid = []
        for d in deliveries:
            try:
                valid.append((d, schemas.reduction_calculated(d.envelope)))
            except ValueError as exc:  # a contract violation: retried, then dead-lettered
                d.failed = exc
        # enterprise scope (account.enterprise.scope): a scenario's scope must be its account's kind
        screened = self.enterprise.scope.screen([r for _, r in valid])
        for i in screened.missing:
            valid[i][0].failed = EnterpriseAccountMissing(
                "enterprise-scope reduction for an owner without an account: open it as an enterprise, replay the DLQ"
            )
        declined = [(valid[i][0], entry) for i, entry in screened.declined]
        valid = [valid[i] for i in screened.kept]
        entries, openings = self.ledger.ops.credit_many([r for _, r in valid], [d.traceparent for d, _ in valid])
        items = [item for entry in openings for item in event_items(entry)]
        for d, entry in declined:
            observe_posted(entry, d.span)
            items.extend(event_items(entry, d.traceparent))
        for (d, _), entry in zip(valid, entries):
            observe_posted(entry, d.span)
            items.extend(event_items(entry, d.traceparent))
        self.ledger_publisher.publish_many(feed.with_entries_posted(items))
        log.info("reductions posted", extra={"records": len(valid), "accounts_opened": len(openings)})

    # the enterprise aggregate, a read model of this service's own events (account.enterprise.readmodel)
    @batch_event_handler("account", feed.EVENT_TYPE, max_batch=50, max_wait=1.0)
    def handle_entries_posted(self, deliveries):
        """Credits and reversals of individual accounts (one event per publishing batch, account.feed)
        into the aggregates of the enterprises their owners are linked to (off the crediting path)."""
        items = []
        for d in deliveries:
            try:
                items.extend(item_of_posted(posted) for posted in d.data.get("entries", []))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:  # retried, then dead-lettered
                d.failed = exc
        if items:
            done = self.enterprise.readmodel.apply(items)
            if done["contributions"]:
                log.info("enterprise aggregates", extra=done)

    @event_handler("calc", "reduction_reversed")
    def handle_reduction_reversed(self, envelope):
        entry = self.ledger.ops.reverse(schemas.reduction_reversed(envelope))
        log.info("reversal posted", extra={"reduction_id": entry["reduction_id"], "grams": entry["grams"]})

    @event_handler("calc", "reduction_reversal_refused")
    def handle_reduction_reversal_refused(self, envelope):
        entry = self.ledger.ops.record_refusal(schemas.reduction_reversal_refused(envelope))
        log.info("reversal refusal recorded", extra={"reduction_id": entry["reduction_id"], "code": entry["code"]})

    @event_handler("ingest", "consent_revoked")
    def handle_consent_revoked(self, envelope):
        """The consent's reductions not yet in the ledger are declined `consent_revoked` from now
        on (credit_many); those credited before stay credited (the ledger is append-only)."""
        check_envelope(envelope)  # a contract violation raises: retried, then dead-lettered
        if envelope["event_type"] != "consent_revoked" or not envelope["data"].get("consent_id"):
            raise ValueError("consent_revoked needs consent_id")
        new = self.ledger.ops.record_revocation(envelope["data"])
        log.info("consent revocation recorded", extra={"consent_id": envelope["data"]["consent_id"], "new": new})

    @event_handler("ingest", "personal_data_deleted")
    def handle_personal_data_deleted(self, envelope):
        found = self.ledger.ops.forget_person(schemas.personal_data_deleted(envelope)["user_pid"])
        log.info("personal data link removed", extra={"account_found": found})

    # the rewards catalogue (account.catalogue, docs/catalogue.md)
    @event_handler("ingest", "fulfilment_reported")
    def handle_fulfilment_reported(self, envelope):
        """A partner confirmed or failed a fulfilment (its signed call to ingest): the first
        decision wins; confirm settles, fail refunds; the closed event is published before the
        message is acked. A report of another partner or an unknown fulfilment changes nothing."""
        check_envelope(envelope)  # a contract violation raises: retried, then dead-lettered
        data = envelope["data"]
        if envelope["event_type"] != "fulfilment_reported" or data.get("outcome") not in ("confirmed", "failed"):
            raise ValueError("fulfilment_reported needs outcome confirmed or failed")
        done = self.catalogue.report(data, self.ledger_publisher.publish_many)
        log.info("fulfilment report", extra={"partner_id": data.get("partner_id", ""), "result": done})

    @timer(interval=CATALOGUE_POLL_SECONDS)
    def catalogue_pass(self):
        """Announce new partner fulfilments, and decide those whose window passed."""
        done = self.catalogue.run_pass(self.ledger_publisher.publish_many)
        if any(done.values()):
            log.info("catalogue pass", extra=done)

    @timer(interval=RETIRED_DRAIN_SECONDS)
    def drain_retired_queues(self):
        """Events an upgrade left in the enterprise read model's retired queues, into the read
        model (account.enterprise.retired); the queues go once empty."""
        done = retired.drain(self.config["AMQP_URI"], self.enterprise.readmodel.apply)
        if done["drained"] or done["left"]:
            log.info("retired queues drained", extra=done)
        return done

    # internal RPC
    @rpc(expected_exceptions=EXPECTED)
    def open_account(self, owner_pid, kind="individual", alias=None):
        return self.ledger.queries.account(self.ledger.ops.open_account(owner_pid, kind, alias)["_id"])

    @rpc(expected_exceptions=EXPECTED)
    def get_account(self, account_id=None, owner_pid=None):
        return self.ledger.queries.account(self.ledger.queries.account_id(account_id, owner_pid))

    @rpc(expected_exceptions=EXPECTED)
    def get_balance(self, account_id=None, owner_pid=None):
        account = self.get_account(account_id, owner_pid)
        return {k: account[k] for k in ("account_id", "balance_grams", "as_of_seq", "status", "tier")}

    @rpc(expected_exceptions=EXPECTED)
    def list_entries(
        self,
        account_id=None,
        owner_pid=None,
        page_size=50,
        page_token="",
        types=(),
        scenario="",
        posted_from="",
        posted_to="",
    ):
        aid = self.ledger.queries.account_id(account_id, owner_pid)
        return self.ledger.queries.entries(aid, page_size, page_token, types, scenario, posted_from, posted_to)

    @rpc(expected_exceptions=EXPECTED)
    def list_entries_after(self, after_seq=0, limit=500, types=(), account_id=None, owner_pid=None):
        """Entries newer than a watermark (seq), read by _id only: for periodic consumers."""
        aid = self.ledger.queries.account_id(account_id, owner_pid)
        return self.ledger.queries.entries_after(aid, after_seq, limit, types)

    @rpc(expected_exceptions=EXPECTED)
    def contributions(self, transfer_entry_ids):
        """Pool transfer entry id -> the reductions it carries (FIFO provenance, ADR 0005)."""
        return self.ledger.queries.contributions(transfer_entry_ids)

    @rpc(expected_exceptions=EXPECTED)
    def corrections(self, items):
        """[{reduction_id, transfer_entry_id}] -> those a correction lowered after they were
        redeemed: {reduction_id, transfer_entry_id, grams, original_grams, written_off_grams}."""
        return self.ledger.queries.corrections(items)

    @rpc(expected_exceptions=EXPECTED)
    def write_off_corrections(self, items):
        """[{reduction_id, transfer_entry_id}] -> the pool's `correction_write_off` entries of
        those a correction lowered after they were redeemed (ADR 0005 §2), each written once."""
        return [public_entry(e) for e in self.ledger.ops.write_off_corrections(items)]

    @rpc(expected_exceptions=EXPECTED)
    def get_statement(self, month, account_id=None, owner_pid=None):
        return self.ledger.queries.statement(self.ledger.queries.account_id(account_id, owner_pid), month)

    @rpc(expected_exceptions=EXPECTED)
    def get_totals(self, account_id=None, owner_pid=None):
        aid = self.ledger.queries.account_id(account_id, owner_pid) if (account_id or owner_pid) else None
        return self.ledger.queries.totals(aid)

    @rpc(expected_exceptions=EXPECTED)
    def redeem(self, grams, request_key, reward_id="", account_id=None, owner_pid=None):
        aid = self.ledger.queries.account_id(account_id, owner_pid)
        entry, replayed = self.ledger.ops.redeem(aid, grams, request_key, reward_id)
        return {"entry": public_entry(entry), "replayed": replayed}

    @rpc(expected_exceptions=EXPECTED)
    def set_status(self, account_id, status, request_key, reason=""):
        return public_entry(self.ledger.ops.set_status(account_id, status, request_key, reason))
