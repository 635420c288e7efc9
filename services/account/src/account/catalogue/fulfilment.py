"""Partner fulfilment of catalogue redemptions: the first decision wins (a partner's signed
report or the window's expiry), then the redemption is settled (grams to the pool) or refunded
by a compensating entry; the timer announces new fulfilments to their partner and decides the
expired ones (docs/catalogue.md §4). A mixin of account.catalogue.catalogue.Catalogue."""

import logging

from carbon_common.clock import aware

from account import ledger
from account.catalogue import items
from account.catalogue import metrics
from account.catalogue.items import (
    PARTNER,
)

log = logging.getLogger("account.catalogue")
PASS_LIMIT = 500  # open fulfilments handled per timer pass and kind of work
SETTLED, REFUNDED = "settled", "refunded"


class Fulfilment:
    @staticmethod
    def _decision(redemption_id: str, outcome: str, code: str, by: str, reference: str = "") -> dict:
        return {
            "_id": redemption_id + ":report",
            "outcome": outcome,
            "code": code,
            "by": by,
            "reference": reference,
            "at": ledger.utc_now_iso(),
        }

    def report(self, report: dict, publish) -> str:
        """A partner's signed report (FulfilmentReported payload). The first decision on a
        fulfilment wins (report or expiry); the fate follows from it. `publish(items)` sends the
        closed event (before the open marker is dropped). -> what happened, for the log."""
        fid, partner = report["fulfilment_id"], report["partner_id"]
        doc = self.store.get_redemption(fid)
        if doc is None or doc["fulfilment"] != PARTNER:
            metrics.REPORTS_IGNORED.labels("unknown_fulfilment").inc()
            return "ignored: unknown fulfilment"
        if doc["partner_id"] != partner:
            metrics.REPORTS_IGNORED.labels("not_the_fulfilling_partner").inc()
            return "ignored: not the item's fulfilling partner"
        entry = self.ops.repo.get_entry(fid)
        if entry is None or entry.get("item_id") != doc["item_id"]:
            metrics.REPORTS_IGNORED.labels("unknown_fulfilment").inc()
            return "ignored: unknown fulfilment"
        outcome = report["outcome"]
        code = report.get("code", "") if outcome == "failed" else ""
        decision, ours = self.store.decide(self._decision(fid, outcome, code, partner, report.get("reference", "")))
        item, closed = self._close(doc, entry, decision)
        publish([item])
        self.store.drop_open([fid])
        return f"{closed['outcome']} -> {closed['fate']}" + ("" if ours else " (decided before)")

    def _close(self, doc: dict, entry: dict, decision: dict) -> tuple[tuple, dict]:
        """Apply a decision once: settle or refund, give the slots back on a refund, record the
        fate -> (the closed event item, the closed record). Repeating it repeats nothing."""
        fid = doc["_id"]
        closed = self._closed(fid)
        if closed is None:
            outcome = decision["outcome"]
            refund_entry_id = ""
            if outcome == "confirmed" or (outcome == "expired" and doc["on_expiry"] == "settle"):
                fate = self.ops.settle(fid)
                if fate == REFUNDED:
                    refund_entry_id = ledger.refund_entry_id(fid)
            else:
                fate, refund = self.ops.refund(fid, decision["code"] or outcome)
                refund_entry_id = refund["_id"] if refund else ""
            if fate == REFUNDED:
                self.claimer.release(doc["claims"], doc["attempt"])
            closed = {
                "_id": fid + ":closed",
                "outcome": outcome,
                "code": decision["code"],
                "fate": fate,
                "refund_entry_id": refund_entry_id,
                "at": ledger.utc_now_iso(),
            }
            self.store.record_closed(closed)
            metrics.FULFILMENTS_CLOSED.labels(outcome, fate).inc()
            log.info("catalogue fulfilment closed", extra={"item_id": doc["item_id"], "outcome": outcome, "fate": fate})
        return self._closed_item(doc, closed), closed

    @staticmethod
    def _closed_item(doc: dict, closed: dict) -> tuple:
        payload = {
            "fulfilment_id": doc["_id"],
            "partner_id": doc["partner_id"],
            "item_id": doc["item_id"],
            "owner_pid": doc["owner_pid"],
            "account_id": doc["account_id"],
            "outcome": closed["outcome"],
            "code": closed["code"],
            "fate": closed["fate"],
            "grams": doc["price_grams"],
            "refund_entry_id": closed["refund_entry_id"],
            "closed_at": closed["at"],
        }
        return ("catalogue_fulfilment_closed", payload, doc["_id"] + ":closed", "")

    @staticmethod
    def _requested_item(doc: dict, entry: dict) -> tuple:
        payload = {
            "fulfilment_id": doc["_id"],
            "partner_id": doc["partner_id"],
            "item_id": doc["item_id"],
            "item_version": doc["version"],
            "item_kind": doc["kind"],
            "title": doc["title"],
            "owner_pid": doc["owner_pid"],
            "account_id": doc["account_id"],
            "price_grams": doc["price_grams"],
            "redeemed_at": entry["posted_at"],
            "fulfil_by": doc["fulfil_by"],
            "on_expiry": doc["on_expiry"],
        }
        return ("catalogue_fulfilment_requested", payload, doc["_id"] + ":requested", entry.get("traceparent", ""))

    def run_pass(self, publish, now=None) -> dict:
        """The timer's work on open partner fulfilments: announce new ones to their partner
        (catalogue_fulfilment_requested), and decide those whose window passed ("expired":
        refund, or settle when the item says silence is acceptance). Events are published
        before markers change, so a crash only repeats them (same event ids)."""
        now = now or self.clock()
        announced = self._announce(publish, now)
        expired = self._expire(publish, now)
        return {"announced": announced, "expired": expired}

    def _loaded(self, markers):
        ids = [m["_id"] for m in markers]
        docs = self.store.redemptions_by_ids(ids)
        entries = self.ops.repo.entries_by_ids(ids)
        return docs, entries

    def _never_happened(self, marker, doc, entry, now) -> bool:
        """No redemption entry (the debit was refused or its attempt crashed): after GRACE the
        marker is dropped."""
        if doc is not None and entry is not None and entry.get("item_id") == doc["item_id"]:
            return False
        return aware(marker["created_at"]) <= now - self.grace

    def _announce(self, publish, now) -> int:
        markers = self.store.unannounced(PASS_LIMIT)
        if not markers:
            return 0
        docs, entries = self._loaded(markers)
        closed = self.store.fulfilment_docs([m["_id"] + ":closed" for m in markers])
        out, announced, drop = [], [], []
        for m in markers:
            doc, entry = docs.get(m["_id"]), entries.get(m["_id"])
            if m["_id"] + ":closed" in closed and doc is not None:  # closed before it was announced
                out.append(self._closed_item(doc, closed[m["_id"] + ":closed"]))
                drop.append(m["_id"])
            elif doc is None or entry is None or entry.get("item_id") != doc["item_id"]:
                if self._never_happened(m, doc, entry, now):
                    drop.append(m["_id"])
            else:
                out.append(self._requested_item(doc, entry))
                announced.append(m["_id"])
        publish(out)
        self.store.mark_announced(announced)
        self.store.drop_open(drop)
        return len(announced)

    def _expire(self, publish, now) -> int:
        markers = self.store.due(items.iso(now), PASS_LIMIT)
        if not markers:
            return 0
        docs, entries = self._loaded(markers)
        out, drop = [], []
        for m in markers:
            doc, entry = docs.get(m["_id"]), entries.get(m["_id"])
            if doc is None or entry is None or entry.get("item_id") != doc["item_id"]:
                if self._never_happened(m, doc, entry, now):
                    drop.append(m["_id"])
                continue
            decision, _ = self.store.decide(self._decision(doc["_id"], "expired", "expired", "platform"))
            item, _ = self._close(doc, entry, decision)
            out.append(item)
            drop.append(m["_id"])
        publish(out)
        self.store.drop_open(drop)
        return len(out)
