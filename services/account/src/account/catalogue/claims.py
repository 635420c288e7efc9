"""Stock and per-customer limits, exact under concurrency with unique inserts only.

A redemption attempt holds a *slot* by inserting a claim document whose `_id` is the slot id
(items.stock_claim_id / items.limit_claim_id) and which names the attempt (a random id) and the
redemption (its ledger entry id). A duplicate `_id` means the slot is held: try the next. No
counter is ever read, modified and written; the slots are probed with `$in` reads by `_id`
(as ingest's rate slots are) and tried from a per-process cursor of the lowest slot that may be
free, each concurrent attempt of the process on a slot of its own. Past the end, the slots are
read again from 1 for freed ones; a stock of more than one read's worth that was found sold out
is refused from memory for SOLD_OUT_MEMO seconds (a refusal in that moment may miss a unit freed
by another process: it is never an oversale).

When a claim counts (the rule, docs/catalogue.md):
  * while it is younger than GRACE: its redemption is in flight;
  * afterwards, only while the redemption it names exists in the ledger (for this item) AND the
    catalogue redemption document names this claim's attempt.
Otherwise it is free again: the next attempt that finds it removes it (a delete conditional on
its attempt, so only that claim goes) and takes the slot. A redemption refused by the ledger
(insufficient balance, frozen account) removes its claims at once; a refunded one (failed or
expired fulfilment) removes them when the refund is recorded. So neither a refusal nor a crash
leaks stock for longer than GRACE, and a refund gives the unit and the customer's limit back.

A redeemer checks its claims again after its debit (`lost`): one taken over meanwhile (only
possible when the debit came more than GRACE after the claim) is refunded, never oversold.
"""

import threading
import time
from datetime import datetime, timedelta

from carbon_common.clock import aware

from account.catalogue import items
from account.catalogue.items import LimitReached, OutOfStock

RESCAN_CHUNK = 256  # stock slots read per `$in` when looking for free ones
SOLD_OUT_MEMO = 2.0  # seconds a process refuses a large sold-out stock without reading it again
FIRM_CACHE = 100_000  # claims known to count (entry exists), per process


class Claimer:
    def __init__(self, store, ledger_repo, grace: timedelta, metrics=None):
        self.store, self.ledger_repo, self.grace = store, ledger_repo, grace
        self.metrics = metrics
        self._hints: dict[tuple[str, int], int] = {}  # (item, batch) -> lowest slot that may be free
        self._limit_cursors: dict[tuple[str, str, str], int] = {}  # (item, account, period) -> k to try
        self._sold_out: dict[tuple[str, int], float] = {}  # (item, batch) -> when a full look found none
        self._firm: set[tuple[str, str]] = set()  # (claim id, attempt) whose redemption exists
        self._lock = threading.Lock()

    # taking -----------------------------------------------------------------------------------
    def take(self, item: dict, account_id: str, redemption_id: str, attempt: str, now: datetime) -> list[str]:
        """Claim one limit slot (if the item has a limit) and one stock slot (unless unlimited)
        -> the claim ids; LimitReached / OutOfStock (nothing held) when none is free.

        The common case is one insert of both claims, on the slots this process's cursors
        point at; a slot found taken goes the slow way (reads by `_id`, then inserts)."""
        base = {"attempt": attempt, "redemption": redemption_id, "item_id": item["item_id"], "at": now}
        item_id = item["item_id"]
        limit_ids, candidates = [], []
        if item["limit_count"]:
            period = items.period_key(item["limit_period"], now)
            limit_key = (item_id, account_id, period)
            limit_ids = [
                items.limit_claim_id(item_id, account_id, period, k) for k in range(1, item["limit_count"] + 1)
            ]
            k = self._limit_cursors.get(limit_key, 1)
            if k <= len(limit_ids):
                candidates.append(("limit", limit_ids[k - 1]))
        stock_key = (item_id, item["stock_batch"])
        if not item["unlimited_stock"]:
            if stock_key not in self._hints:  # first use here: skip what is taken already, by reads
                first = self._first_unheld(item_id, item["stock_batch"], 1, item["stock"] + 1)
                self._hint(stock_key, first or item["stock"] + 1)
            n = self._next_candidate(stock_key)
            if n <= item["stock"]:
                candidates.append(("stock", items.stock_claim_id(item_id, item["stock_batch"], n)))
        taken = self.store.insert_claims([{"_id": claim_id, **base} for _, claim_id in candidates])
        for _ in taken:
            self._conflict()
        held = [claim_id for i, (_, claim_id) in enumerate(candidates) if i not in taken]
        got = {kind for i, (kind, _) in enumerate(candidates) if i not in taken}
        try:
            if limit_ids:
                claim = next((c for kind, c in candidates if kind == "limit"), None) if "limit" in got else None
                if claim is None:
                    claim = self._first_free(limit_ids, base, now)
                    if claim is None:
                        raise LimitReached("the customer's limit for this item and period is reached")
                    held.append(claim)
                self._set_limit_cursor(limit_key, limit_ids.index(claim) + 2)
            if not item["unlimited_stock"] and "stock" not in got:
                claim = self._take_stock(item, base, now)
                if claim is None:
                    raise OutOfStock("no unit of this item is left")
                held.append(claim)
        except Exception:
            self.release(held, attempt)
            raise
        return held

    def _set_limit_cursor(self, key, k: int, only_down: bool = False) -> None:
        with self._lock:
            if len(self._limit_cursors) > FIRM_CACHE:
                self._limit_cursors.clear()
            if not only_down or k < self._limit_cursors.get(key, k + 1):
                self._limit_cursors[key] = k

    def _take_stock(self, item: dict, base: dict, now: datetime) -> str | None:
        """The lowest free stock slot this process can find. Threads of one process are handed
        distinct candidates in turn (the hint is a cursor under a lock), so they do not all
        insert on the same slot; a candidate another process took is a duplicate: the next one.
        Nothing above the cursor: slots below it are read again (freed by a refusal or a crash)."""
        key = (item["item_id"], item["stock_batch"])
        item_id, batch, stock = item["item_id"], item["stock_batch"], item["stock"]
        if key not in self._hints:  # first use here: skip what is taken already, by reads
            self._hint(key, self._first_unheld(item_id, batch, 1, stock + 1) or stock + 1)
        misses = 0
        while True:
            n = self._next_candidate(key)
            if n > stock:
                break
            claim_id = items.stock_claim_id(item_id, batch, n)
            if self.store.insert_claim({"_id": claim_id, **base}):
                return claim_id
            self._conflict()
            misses += 1
            if misses % 4 == 0:  # another process is ahead: read where the free slots start
                ahead = self._first_unheld(item_id, batch, n + 1, stock + 1)
                self._hint(key, ahead or stock + 1, only_up=True)
        large = stock > RESCAN_CHUNK  # more than one read to look again below the cursor
        if large and time.monotonic() - self._sold_out.get(key, -SOLD_OUT_MEMO) < SOLD_OUT_MEMO:
            return None  # looked a moment ago: a sold-out item must not cost every refusal a scan
        n = 1
        while n <= stock:  # below the cursor: slots freed since, or claims that no longer count
            ids = [items.stock_claim_id(item_id, batch, m) for m in range(n, min(n + RESCAN_CHUNK, stock + 1))]
            claim = self._first_free(ids, base, now)
            if claim is not None:
                return claim
            n += len(ids)
        if large:
            self._sold_out[key] = time.monotonic()
        return None

    def _first_unheld(self, item_id: str, batch: int, start: int, end: int) -> int | None:
        """The first slot in [start, end) with no claim (reads by `_id`, RESCAN_CHUNK a read)."""
        n = start
        while n < end:
            ids = [items.stock_claim_id(item_id, batch, m) for m in range(n, min(n + RESCAN_CHUNK, end))]
            held = self.store.held(ids)
            for m, claim_id in enumerate(ids, n):
                if claim_id not in held:
                    return m
            n += len(ids)
        return None

    def _next_candidate(self, key) -> int:
        with self._lock:
            n = self._hints.get(key, 1)
            self._hints[key] = n + 1
            return n

    def _first_free(self, ids: list[str], base: dict, now: datetime) -> str | None:
        """Insert a claim on the first free slot of `ids` (one `$in` read, then inserts) or on
        the first that holds a claim that no longer counts -> its id, or None."""
        found = self.store.claims_by_ids(ids)
        for claim_id in ids:
            if claim_id in found:
                continue
            if self.store.insert_claim({"_id": claim_id, **base}):
                return claim_id
            self._conflict()
        for doc in self.stale(found.values(), now):
            self.store.delete_claims([doc["_id"]], doc["attempt"])
            if self.store.insert_claim({"_id": doc["_id"], **base}):
                if self.metrics:
                    self.metrics.freed.inc()
                return doc["_id"]
            self._conflict()
        return None

    def hint(self, item_id: str, batch: int) -> int:
        return self._hints.get((item_id, batch), 1)

    def _conflict(self) -> None:
        if self.metrics:
            self.metrics.conflicts.inc()

    def _hint(self, key, slot: int, only_up: bool = False) -> None:
        with self._lock:
            if len(self._hints) > FIRM_CACHE:
                self._hints.clear()
            if not only_up or slot > self._hints.get(key, 0):
                self._hints[key] = slot

    # judging ------------------------------------------------------------------------------------
    def stale(self, claims, now: datetime) -> list[dict]:
        """The claims among `claims` that no longer count (see the module's rule)."""
        old = [c for c in claims if aware(c["at"]) <= now - self.grace and (c["_id"], c["attempt"]) not in self._firm]
        if not old:
            return []
        redemptions = self.store.redemptions_by_ids([c["redemption"] for c in old], {"attempt": 1, "item_id": 1})
        entries = self.ledger_repo.entries_by_ids(list({c["redemption"] for c in old}))
        out = []
        for c in old:
            doc, entry = redemptions.get(c["redemption"]), entries.get(c["redemption"])
            counts = (
                doc is not None
                and doc["attempt"] == c["attempt"]
                and entry is not None
                and entry.get("item_id") == doc["item_id"]
            )
            if counts:
                with self._lock:
                    if len(self._firm) > FIRM_CACHE:
                        self._firm.clear()
                    self._firm.add((c["_id"], c["attempt"]))
            else:
                out.append(c)
        return out

    def lost(self, claim_ids: list[str], attempt: str) -> list[str]:
        """The claims of `attempt` that another attempt has taken over (one `$in` read)."""
        found = self.store.claims_by_ids(claim_ids)
        return [c for c in claim_ids if c not in found or found[c]["attempt"] != attempt]

    # releasing ----------------------------------------------------------------------------------
    def release(self, claim_ids: list[str], attempt: str) -> None:
        """Give the attempt's slots back (only those it still holds); the cursors move back."""
        if not claim_ids:
            return
        self.store.delete_claims(claim_ids, attempt)
        for claim_id in claim_ids:
            item_id, kind, rest = claim_id.split(":", 2)
            if kind.startswith("s") and kind[1:].isdigit():  # <item>:s<batch>:<n>
                key = (item_id, int(kind[1:]))
                with self._lock:
                    self._hints[key] = min(self._hints.get(key, 1), int(rest))
                    self._sold_out.pop(key, None)
            else:  # <item>:<account>:<period>:<k>
                period, k = rest.rsplit(":", 1)
                self._set_limit_cursor((item_id, kind, period), int(k), only_down=True)
