"""The rewards catalogue: items and their versions, what a customer can redeem, redemption with
exact stock and limits, and partner fulfilment (confirm → settle; fail or expiry → refund).

The ledger side is the settlement core's (account.operations / account.settlement, ADR 0005):
a catalogue redemption is `LedgerOperations.redeem(…, item_id=…, settle=…)`; a confirmation is
`settle(id)`, a failure or an expiry `refund(id, code)`: a compensating `refund` entry, never
an edit, and the `settlements` fate document decides which of the two wins. Everything the
catalogue itself stores is in its own collections (account.catalogue.store).

A redemption, step by step (`redeem`):
  1. the catalogue redemption document of this request key (`_id` = the redemption entry id)
     is looked up: a stored redemption is a replay; one in flight (younger than GRACE, no
     entry) is refused "redemption_in_progress"; an older one without an entry is a crashed
     attempt, removed with its claims;
  2. the item (newest version known here), the account's state (status, tier, balance) are
     checked: nothing is claimed for a redemption that cannot succeed;
  3. a limit slot and a stock slot are claimed (account.catalogue.claims); then the item is
     read again: if a newer version appeared meanwhile, the claims go back and it starts over
     on that version (a change of price, stock or status counts from its insert on);
  4. the catalogue redemption document is inserted (names the attempt whose claims count;
     a duplicate means a concurrent attempt of the same key: ours goes back); for a partner
     item an open-fulfilment marker too;
  5. the debit. A refusal (insufficient balance, frozen account, key reused) removes the
     claims, the marker and the document: nothing stays half-written for the customer;
  6. when the debit ended more than GRACE/2 after the claims (they might have been judged
     stale), the claims are checked once more (`Claimer.lost`): a claim taken over meanwhile
     refunds the redemption (code "claim_lost").
"""

import logging
import threading
import uuid
from datetime import timedelta

from carbon_common.clock import aware, utc_now

from account import ledger
from account.catalogue import items
from account.catalogue import metrics
from account.catalogue.claims import Claimer
from account.catalogue.items import (
    PARTNER,
    Busy,
    ItemNotAvailable,
    LimitReached,
    NotEligible,
    OutOfStock,
    RedemptionNotFound,
)
from account.ledger import AccountNotOpen, InsufficientBalance, InvalidRequest, LedgerError, RequestKeyReused
from account.catalogue.fulfilment import REFUNDED, SETTLED, Fulfilment
from account.catalogue.offers import Offers
from account.catalogue.versions import ItemVersions

log = logging.getLogger("account.catalogue")
GRACE = timedelta(minutes=10)  # how long a claim counts without its redemption (in flight)


class Catalogue(ItemVersions, Offers, Fulfilment):
    """The rewards catalogue: items (account.catalogue.versions), offers
    (account.catalogue.offers), redemption (here) and fulfilment (account.catalogue.fulfilment)."""

    def __init__(self, operations, store, *, grace: timedelta = GRACE, clock=utc_now):
        """operations: account.operations.LedgerOperations; store: CatalogueStore."""
        self.ops, self.store, self.grace, self.clock = operations, store, grace, clock
        self.claimer = Claimer(store, operations.repo, grace, metrics.CLAIMS)
        self._current: dict[str, dict] = {}  # item id -> the newest version known here
        self._accounts: dict[str, dict] = {}  # account id -> {_id, owner_pid, kind}
        self._lock = threading.Lock()

    def redeem(self, account_id: str, item_id: str, request_key: str) -> tuple[dict, dict, bool]:
        """Redeem one unit of an item for the account -> (redemption view, ledger entry,
        replayed). Refusals raise a LedgerError (nothing stays claimed or written)."""
        entry_id = ledger.redemption_entry_id(account_id, request_key)
        for _ in range(5):
            prior = self.store.get_redemption(entry_id)
            if prior is not None:
                replay = self._prior(prior, item_id)
                if replay is not None:
                    metrics.REDEMPTIONS.labels("replayed").inc()
                    return replay
            try:
                done = self._attempt(account_id, item_id, request_key, entry_id)
            except LedgerError as exc:
                metrics.REDEMPTIONS.labels(exc.code).inc()
                raise
            if done is not None:
                metrics.REDEMPTIONS.labels("redeemed").inc()
                return done
        raise Busy("the item changed while redeeming: retry")

    def _prior(self, prior: dict, item_id: str):
        """A redemption document of this key exists: the replay, None once a crashed attempt's
        leftovers are removed, or Busy while another attempt may still land."""
        entry = self.ops.repo.get_entry(prior["_id"])
        if entry is not None:
            if entry["type"] != ledger.REDEMPTION or entry.get("item_id") != prior["item_id"]:
                raise RequestKeyReused("request_key was used for a different redemption")
            if prior["item_id"] != item_id:
                raise RequestKeyReused("request_key was used for a different redemption")
            return self._view(prior, entry, self._closed(prior["_id"])), entry, True
        if aware(prior["created_at"]) > self.clock() - self.grace:
            raise Busy("a redemption with this request_key is in progress: retry shortly")
        self._abandon(prior)  # a crashed attempt: no entry after GRACE, so it never will be
        return None

    def _attempt(self, account_id: str, item_id: str, request_key: str, entry_id: str):
        """One attempt -> (view, entry, replayed), or None to start over (the item changed, or
        a concurrent attempt of the same key got its document in first)."""
        item = self.current(item_id, fresh=False)
        # The debit decides balance and status exactly; the state known here is enough to go
        # on when it allows the redemption. A refusal or a tier rule is judged on the newest.
        customer = self.customer(account_id, fresh=False)
        if item["eligible_tiers"] or customer["status"] != "open" or customer["balance"] < item["price_grams"]:
            customer = self.customer(account_id)
        account = customer["account"]
        if account["kind"] == "pool":
            raise InvalidRequest("the pool account cannot redeem", "invalid_account")
        now = self.clock()
        reason = items.unavailable(item, items.iso(now))
        if reason:
            raise ItemNotAvailable("the item cannot be redeemed now", reason)
        if customer["status"] != "open":
            raise AccountNotOpen(f"account is {customer['status'] or 'not open'}")
        if item["eligible_tiers"] and customer["tier"] not in item["eligible_tiers"]:
            raise NotEligible("the customer's tier may not redeem this item")
        if customer["balance"] < item["price_grams"]:
            raise InsufficientBalance("the balance cannot cover the item's price")
        attempt = uuid.uuid4().hex
        claims = self.claimer.take(item, account_id, entry_id, attempt, now)
        # The item may have changed while we claimed: the claim counts for the version in force
        # at its insert, so a newer version (price, stock, status) means: give back, start over.
        if self.store.version(items.version_id(item_id, item["version"] + 1)) is not None:
            self.claimer.release(claims, attempt)
            self._forget(item_id)
            return None
        doc = self._redemption_doc(entry_id, attempt, claims, account, item, request_key, now)
        if not self.store.insert_redemption(doc):  # a concurrent attempt of this request_key
            self.claimer.release(claims, attempt)
            return None
        if item["fulfilment"] == PARTNER:
            self.store.add_open({"_id": entry_id, "fulfil_by": doc["fulfil_by"], "announced": False, "created_at": now})
        entry = self._debit(doc, item)
        # Only a claim older than GRACE can be taken over; the debit is checked to have started
        # within GRACE/2, so the claims need reading again only when it ended past that too.
        if self.clock() - now > self.grace / 2:
            lost = self.claimer.lost(claims, attempt)
            if lost:
                self._claim_lost(doc, entry, lost)
        return self._view(doc, entry), entry, False

    def _redemption_doc(self, entry_id, attempt, claims, account, item, request_key, now) -> dict:
        partner = item["fulfilment"] == PARTNER
        return {
            "_id": entry_id,
            "attempt": attempt,
            "claims": claims,
            "account_id": account["_id"],
            "owner_pid": account["owner_pid"],
            "request_key": request_key,
            "item_id": item["item_id"],
            "version": item["version"],
            "title": item["title"],
            "kind": item["kind"],
            "price_grams": item["price_grams"],
            "fulfilment": item["fulfilment"],
            "partner_id": item["partner_id"],
            "fulfil_by": items.fulfil_by(item, now) if partner else "",
            "on_expiry": item["on_expiry"],
            "redeemed_at": items.iso(now),
            "created_at": now,
        }

    def _debit(self, doc: dict, item: dict) -> dict:
        """The ledger's debit; a refusal takes back everything this attempt wrote."""
        partner = item["fulfilment"] == PARTNER
        try:
            if self.clock() - doc["created_at"] > self.grace / 2:  # too slow: its claims may be taken
                raise Busy("the redemption took too long: retry")
            entry, _ = self.ops.redeem(
                doc["account_id"],
                doc["price_grams"],
                doc["request_key"],
                doc["item_id"],
                item_id=doc["item_id"],
                settle="pending" if partner else "now",
                settle_by=doc["fulfil_by"] if partner and item["on_expiry"] == "settle" else "",
            )
        except LedgerError:
            self._abandon(doc)  # refused: nothing was written to the ledger
            raise
        except Exception:
            try:
                if self.ops.repo.get_entry(doc["_id"]) is None:
                    self._abandon(doc)
            except Exception:  # noqa: BLE001 - the store is down: GRACE frees the claims
                log.warning("catalogue redemption failed; its claims are freed after the grace period")
            raise
        return entry

    def _abandon(self, doc: dict) -> None:
        """Remove what an attempt wrote before its (refused or crashed) debit."""
        self.claimer.release(doc["claims"], doc["attempt"])
        if doc["fulfilment"] == PARTNER:
            self.store.drop_open([doc["_id"]])
        self.store.delete_redemption(doc["_id"], doc["attempt"])

    def _claim_lost(self, doc: dict, entry: dict, lost: list[str]) -> None:
        """A claim was taken over before the debit landed (the debit came after GRACE): the
        redemption is refunded; if it was settled first, it is counted as oversold."""
        decision, _ = self.store.decide(self._decision(doc["_id"], "claim_lost", "claim_lost", "platform"))
        _, closed = self._close(doc, entry, decision)
        metrics.CLAIMS_LOST.labels(closed["fate"]).inc()
        if closed["fate"] == SETTLED:
            log.error("catalogue claim lost after settlement: oversold", extra={"item_id": doc["item_id"]})
            return
        stock_lost = any(c.split(":", 2)[1].startswith("s") for c in lost)  # <item>:s<batch>:<n>
        raise (OutOfStock if stock_lost else LimitReached)("the redemption lost its claim and was refunded")

    def redemption(self, account_id: str, request_key: str) -> dict:
        """A catalogue redemption of the account by its request key (RedemptionNotFound)."""
        entry_id = ledger.redemption_entry_id(account_id, request_key)
        doc = self.store.get_redemption(entry_id)
        entry = self.ops.repo.get_entry(entry_id) if doc else None
        if doc is None or entry is None or entry.get("item_id") != doc["item_id"]:
            raise RedemptionNotFound("no catalogue redemption with this request_key")
        return self._view(doc, entry, self._closed(entry_id))

    def _closed(self, redemption_id: str) -> dict | None:
        return self.store.fulfilment_docs([redemption_id + ":closed"]).get(redemption_id + ":closed")

    @staticmethod
    def _view(doc: dict, entry: dict, closed: dict | None = None) -> dict:
        if doc["fulfilment"] != PARTNER:
            status = "completed"
        elif closed is None:
            status = "awaiting_partner"
        elif closed["fate"] == REFUNDED:
            status = "refunded"
        else:
            status = "confirmed" if closed["outcome"] == "confirmed" else "settled"
        return {
            "redemption_id": doc["_id"],
            "account_id": doc["account_id"],
            "item_id": doc["item_id"],
            "item_version": doc["version"],
            "title": doc["title"],
            "price_grams": doc["price_grams"],
            "request_key": doc["request_key"],
            "fulfilment": doc["fulfilment"],
            "partner_id": doc["partner_id"],
            "fulfil_by": doc["fulfil_by"],
            "status": status,
            "outcome_code": (closed or {}).get("code", ""),
            "redeemed_at": entry["posted_at"],
        }
