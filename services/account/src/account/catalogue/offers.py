"""What a customer can redeem: each active item judged for the customer — stock left, the
customer's limit left, available or why not (docs/catalogue.md §2). A mixin of
account.catalogue.catalogue.Catalogue."""

from account import ledger
from account.caps import statement_month
from account.catalogue import items

EXACT_STOCK_READ = 1000  # stock_left read exactly (one `$in` of every slot) up to this stock
ACCOUNT_CACHE = 100_000  # accounts' (owner, kind) kept per process


class Offers:
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
