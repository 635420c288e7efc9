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

from carbon_common.clock import utc_now

from account import ledger
from account.caps import statement_month
from account.catalogue import items
from account.catalogue.claims import Claimer
from account.catalogue.items import (
    ACTIVE,
    PARTNER,
    RETIRED,
    Busy,
    ItemExists,
    ItemNotAvailable,
    ItemNotFound,
    LimitReached,
    NotEligible,
    OutOfStock,
    RedemptionNotFound,
    VersionConflict,
)
from account.catalogue import metrics
from account.ledger import AccountNotOpen, InsufficientBalance, InvalidRequest, LedgerError, RequestKeyReused

log = logging.getLogger("account.catalogue")
GRACE = timedelta(minutes=10)  # how long a claim counts without its redemption (in flight)
EXACT_STOCK_READ = 1000  # stock_left read exactly (one `$in` of every slot) up to this stock
PASS_LIMIT = 500  # open fulfilments handled per timer pass and kind of work
ACCOUNT_CACHE = 100_000  # accounts' (owner, kind) kept per process
SETTLED, REFUNDED = "settled", "refunded"


class Catalogue:
    def __init__(self, operations, store, *, grace: timedelta = GRACE, clock=utc_now):
        """operations: account.operations.LedgerOperations; store: CatalogueStore."""
        self.ops, self.store, self.grace, self.clock = operations, store, grace, clock
        self.claimer = Claimer(store, operations.repo, grace, metrics.CLAIMS)
        self._current: dict[str, dict] = {}  # item id -> the newest version known here
        self._accounts: dict[str, dict] = {}  # account id -> {_id, owner_pid, kind}
        self._lock = threading.Lock()

    # --- items (operators) -------------------------------------------------------------------
    def put_item(
        self, spec: dict, expected_version: int, restock: bool, request_key: str, reason: str = ""
    ) -> tuple[dict, bool]:
        """Create (expected_version 0) or change an item -> (the version, replayed)."""
        self._check_tiers(spec["eligible_tiers"])
        now = items.iso(self.clock())
        item_id = spec["item_id"]
        if expected_version == 0:
            self.store.insert_head(item_id)  # before version 1: a listing sees every item
            wanted = items.new_version(spec, 1, ACTIVE, 1, request_key, reason, now)
            return self._insert(wanted, ItemExists("the item exists: change it with its current version"))
        current = self.current(item_id)
        version = expected_version + 1
        if current["version"] != expected_version:
            wanted = items.new_version(spec, version, ACTIVE, current["stock_batch"], request_key, reason, now)
            return self._replayed(wanted, VersionConflict("expected_version is not the item's current version"))
        if restock:
            batch = version
        elif (spec["stock"], spec["unlimited_stock"]) != (current["stock"], current["unlimited_stock"]):
            raise InvalidRequest("a change of stock or unlimited_stock needs restock", "invalid_stock")
        else:
            batch = current["stock_batch"]
        wanted = items.new_version(spec, version, ACTIVE, batch, request_key, reason, now)
        return self._insert(wanted, VersionConflict("expected_version is not the item's current version"))

    def retire_item(self, item_id: str, expected_version: int, request_key: str, reason: str = "") -> tuple[dict, bool]:
        current = self.current(item_id)
        now = items.iso(self.clock())
        wanted = items.new_version(
            items.spec_of(current), expected_version + 1, RETIRED, current["stock_batch"], request_key, reason, now
        )
        if current["version"] != expected_version:
            return self._replayed(wanted, VersionConflict("expected_version is not the item's current version"))
        if current["status"] == RETIRED:
            raise ItemNotAvailable("the item is retired already", "item_retired")
        return self._insert(wanted, VersionConflict("expected_version is not the item's current version"))

    def _insert(self, wanted: dict, conflict: LedgerError) -> tuple[dict, bool]:
        if self.store.insert_version(wanted):
            self.store.raise_heads({wanted["item_id"]: wanted["version"]})
            self._remember(wanted)
            return wanted, False
        return self._replayed(wanted, conflict)

    def _replayed(self, wanted: dict, conflict: LedgerError) -> tuple[dict, bool]:
        """The version this request wrote before (same request_key), or `conflict`."""
        stored = self.store.versions_by_ids([wanted["_id"]]).get(wanted["_id"])
        if stored is None or stored["request_key"] != wanted["request_key"]:
            raise conflict
        if not items.same_change(stored, wanted):
            raise RequestKeyReused("request_key was used for a different change")
        return stored, True

    def _check_tiers(self, names) -> None:
        known = {name for _, name in self.ops.appender.tiers.levels}
        if set(names) - known:
            raise InvalidRequest(
                "eligible_tiers must name configured tiers (TIER_THRESHOLDS)", "invalid_eligible_tiers"
            )

    def versions(self, item_id: str, page_size: int = 50, page_token: str = "") -> dict:
        """An item's versions, newest first (its audit trail)."""
        newest = self.current(item_id)["version"]
        top = min(int(page_token) - 1, newest) if page_token else newest
        numbers = list(range(top, max(top - (page_size or 50), 0), -1))
        found = self.store.versions_by_ids([items.version_id(item_id, v) for v in numbers])
        versions = [found[items.version_id(item_id, v)] for v in numbers if items.version_id(item_id, v) in found]
        return {"versions": versions, "next_page_token": str(numbers[-1]) if numbers and numbers[-1] > 1 else ""}

    def current(self, item_id: str, fresh: bool = True) -> dict:
        found = self.current_many([item_id], fresh).get(item_id)
        if found is None:
            raise ItemNotFound("no such catalogue item")
        return found

    def current_many(self, item_ids, fresh: bool = True) -> dict[str, dict]:
        """item id -> its newest version: known here or hinted, then walked forward with one
        `$in` by `_id` per step for all of them (`fresh=False`: what is known here, unread)."""
        known = {i: self._current.get(i) for i in dict.fromkeys(item_ids)}
        missing = [i for i, doc in known.items() if doc is None]
        if missing:
            hints = self.store.head_hints(missing)
            hinted = self.store.versions_by_ids([items.version_id(i, v) for i, v in hints.items() if v])
            for i in missing:
                known[i] = hinted.get(items.version_id(i, hints.get(i, 0)))
            frontier = {i: known[i] for i in missing if i in hints}
        else:
            frontier = {}
        if fresh:
            frontier.update({i: doc for i, doc in known.items() if doc is not None})
        while frontier:
            step = {i: items.version_id(i, (doc["version"] if doc else 0) + 1) for i, doc in frontier.items()}
            found = self.store.versions_by_ids(step.values())
            frontier = {i: found[vid] for i, vid in step.items() if vid in found}
            known.update(frontier)
        for doc in known.values():
            if doc is not None:
                self._remember(doc)
        return {i: doc for i, doc in known.items() if doc is not None}

    def _remember(self, doc: dict) -> None:
        with self._lock:
            if self._current.get(doc["item_id"], {}).get("version", 0) < doc["version"]:
                self._current[doc["item_id"]] = doc

    def _forget(self, item_id: str) -> None:
        with self._lock:
            self._current.pop(item_id, None)

    # --- customers ---------------------------------------------------------------------------
    def customer(self, account_id: str, fresh: bool = True) -> dict:
        """What judging an item for a customer needs: status, tier (trailing 12 months, as now),
        balance (the newest state; fresh=False: the state this process knows, if any)."""
        account = self._accounts.get(account_id)
        if account is None:
            found = self.ops.repo.get_account(account_id)
            if found is None:
                raise LookupError(account_id)
            account = {k: found[k] for k in ("_id", "owner_pid", "kind")}  # never change; no personal data
            with self._lock:
                if len(self._accounts) > ACCOUNT_CACHE:
                    self._accounts.clear()
                self._accounts[account_id] = account
        state = self.ops.appender.head(account_id, fresh)
        trailing = ledger.trailing_earned(state["earned_by_month"], statement_month(ledger.utc_now_iso()))
        return {
            "account": account,
            "status": state["status"],
            "balance": state["balance"],
            "tier": self.ops.appender.tiers.tier_for(trailing),
        }

    def offers(self, account_id: str | None, page_size: int = 50, page_token: str = "", available_only=False) -> dict:
        """The active, unexpired items in item_id order, each judged for the customer (if any):
        stock left, the customer's limit left, available now or why not."""
        size = page_size or 50
        ids = self.store.list_heads(after=page_token, limit=size + 1)
        page = ids[:size]
        now = self.clock()
        now_iso = items.iso(now)
        current = self.current_many(page)
        shown = [
            current[i] for i in page if i in current and items.unavailable(current[i], now_iso) in ("", "not_yet_valid")
        ]
        customer = self.customer(account_id) if account_id else None
        stock_left = self._stock_left(shown)
        limit_left = self._limit_left(shown, account_id, now) if customer else {}
        offers = []
        for item in shown:
            left = stock_left[item["item_id"]]
            limit = limit_left.get(item["item_id"], -1)
            reason = items.unavailable(item, now_iso) or ("out_of_stock" if left == 0 else "")
            if customer and not reason:
                reason = self._refusal(item, customer, limit)
            if available_only and reason:
                continue
            offers.append(
                {"item": item, "stock_left": left, "limit_left": limit, "available": not reason, "reason": reason}
            )
        out = {"offers": offers, "next_page_token": page[-1] if len(ids) > size else ""}
        if customer:
            out.update(balance_grams=customer["balance"], tier=customer["tier"])
        return out

    @staticmethod
    def _refusal(item: dict, customer: dict, limit_left: int) -> str:
        if item["eligible_tiers"] and customer["tier"] not in item["eligible_tiers"]:
            return "not_eligible"
        if limit_left == 0:
            return "limit_reached"
        if customer["status"] != "open":
            return "account_not_open"
        if customer["balance"] < item["price_grams"]:
            return "insufficient_balance"
        return ""

    def _stock_left(self, shown: list[dict]) -> dict[str, int]:
        """Units left per item: exact (claims held, in flight included) up to EXACT_STOCK_READ,
        above it from the first free slot found from the hint (holes below are not counted)."""
        out, exact = {}, []
        for item in shown:
            if item["unlimited_stock"]:
                out[item["item_id"]] = -1
            elif item["stock"] <= EXACT_STOCK_READ:
                exact.append(item)
            else:
                out[item["item_id"]] = self._stock_left_from_hint(item)
        slot_ids = {
            i["item_id"]: [items.stock_claim_id(i["item_id"], i["stock_batch"], n) for n in range(1, i["stock"] + 1)]
            for i in exact
        }
        held = self.store.held(s for ids in slot_ids.values() for s in ids) if slot_ids else set()
        for item_id, ids in slot_ids.items():
            out[item_id] = sum(1 for s in ids if s not in held)
        return out

    def _stock_left_from_hint(self, item: dict) -> int:
        item_id, batch, stock = item["item_id"], item["stock_batch"], item["stock"]
        n = self.claimer.hint(item_id, batch)
        while n <= stock:
            ids = [items.stock_claim_id(item_id, batch, m) for m in range(n, min(n + 256, stock + 1))]
            held = self.store.held(ids)
            free = [i for i, s in enumerate(ids) if s not in held]
            if free:
                return stock - (n + free[0] - 1)
            n += len(ids)
        return 0

    def _limit_left(self, shown: list[dict], account_id: str, now) -> dict[str, int]:
        slot_ids = {}
        for item in shown:
            if item["limit_count"]:
                period = items.period_key(item["limit_period"], now)
                slot_ids[item["item_id"]] = [
                    items.limit_claim_id(item["item_id"], account_id, period, k)
                    for k in range(1, item["limit_count"] + 1)
                ]
        held = self.store.held(s for ids in slot_ids.values() for s in ids) if slot_ids else set()
        return {item_id: sum(1 for s in ids if s not in held) for item_id, ids in slot_ids.items()}

    # --- redeeming ---------------------------------------------------------------------------
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
        if _aware(prior["created_at"]) > self.clock() - self.grace:
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

    # --- fulfilment --------------------------------------------------------------------------
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
        return _aware(marker["created_at"]) <= now - self.grace

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


def _aware(moment):
    from datetime import timezone

    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
