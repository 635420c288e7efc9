"""Settlement: when a redemption's grams reach the bank pool, or come back (ADR 0005 §1, §3).

A redemption debits the customer at once and is *settled* later: at once (no fulfilment), when
its fulfilment is confirmed, or when its `settle_by` time passes without a failure. Settle and
refund race through one fate document per redemption (`settlements`, `_id` = redemption entry
id, first writer wins): a redemption reaches the pool or is refunded, never both. A refund is a
compensating `refund` entry crediting the customer, never an edit.

The pool is POOL_SHARDS chains (carbon_common.accounts); settled redemptions are appended to them
in batches by whoever settles (the outbox relay for due ones), so customer redemptions never
write a shared chain. Redemptions waiting for a fulfilment are listed in `pending_settlements`,
a small collection of markers (dropped once decided), so finding due ones never scans the ledger.
"""

from carbon_common.accounts import pool_owner_for
from carbon_common.clock import utc_now_iso

from account import ledger
from account.posting import Request

SETTLED, REFUNDED = "settled", "refunded"
AT_ONCE, PENDING = "now", "pending"


class Settlement:
    def __init__(self, operations):
        self.ops = operations
        self.repo = operations.repo

    # the redemption's own step ---------------------------------------------------------------
    def hold(self, redemption: dict) -> None:
        """Lists a pending redemption (idempotent); called right after its entry is appended
        and again by the relay, so a crash in between cannot leave it unlisted."""
        if redemption.get("settle") == PENDING:
            self.repo.add_pending_settlements(
                [
                    {
                        "_id": redemption["_id"],
                        "account_id": redemption["account_id"],
                        "settle_by": redemption.get("settle_by", ""),
                    }
                ]
            )

    # deciding ------------------------------------------------------------------------------
    def settle_many(self, redemptions: list[dict]) -> tuple[dict[str, str], list[dict]]:
        """Settle each redemption unless it was refunded first -> ({id: fate}, pool transfer
        entries appended now). The transfers are one append_many over the pool's shards."""
        if not redemptions:
            return {}, []
        now = utc_now_iso()
        fates = self.repo.decide_settlements([{"_id": r["_id"], "outcome": SETTLED, "at": now} for r in redemptions])
        settled = [r for r in redemptions if fates[r["_id"]] == SETTLED]
        requests = [self._transfer_request(r) for r in settled]
        # outbox markers before the entries, as every non-batch append does: the relay then
        # announces each transfer once, whoever settled it and whenever it crashed
        self.repo.add_outbox_many([(q.entry_id, q.account_id) for q in requests])
        results = self.ops.appender.append_many(requests)
        for result in results:
            if isinstance(result, Exception):
                raise result
        self.repo.drop_pending_settlements([r["_id"] for r in redemptions])
        self.ops.appender.on_outbox()
        return fates, [entry for entry, _ in results]

    def refund(self, redemption: dict, code: str) -> tuple[str, dict | None]:
        """Refund a redemption unless it was settled first -> (fate, refund entry or None)."""
        fates = self.repo.decide_settlements([{"_id": redemption["_id"], "outcome": REFUNDED, "at": utc_now_iso()}])
        if fates[redemption["_id"]] != REFUNDED:
            return fates[redemption["_id"]], None
        account = self.ops.account_for(redemption["owner_pid"], open_kind=None)

        def decide(state):
            return {
                "owner_pid": account["owner_pid"],
                "account_kind": account["kind"],
                "type": ledger.REFUND,
                "grams": -int(redemption["grams"]),
                "code": code,
                "refunded_entry_id": redemption["_id"],
                "refunded_provenance": redemption.get("provenance", {"from": [1, 0], "to": [1, 0]}),
                "reward_id": redemption.get("reward_id", ""),
                "item_id": redemption.get("item_id", ""),
            }

        # a status check does not apply: a frozen or closed account still gets its grams back
        entry, _ = self.ops.appender.append(redemption["account_id"], ledger.refund_entry_id(redemption["_id"]), decide)
        self.repo.drop_pending_settlements([redemption["_id"]])
        return REFUNDED, entry

    def due(self, now: str, limit: int = 500) -> list[dict]:
        """Pending redemptions whose settle_by has passed (markers without a time wait for a
        confirmation or a refund)."""
        markers = self.repo.pending_settlements(limit)
        ids = [m["_id"] for m in markers if m.get("settle_by") and m["settle_by"] <= now]
        found = self.repo.entries_by_ids(ids)
        return [found[i] for i in ids if i in found]

    def _transfer_request(self, redemption: dict) -> Request:
        pool = self.ops.account_for(pool_owner_for(redemption["_id"]), open_kind="pool")

        def decide(state):
            return {
                "owner_pid": pool["owner_pid"],
                "account_kind": pool["kind"],
                "type": ledger.REDEMPTION_TRANSFER,
                "grams": -redemption["grams"],
                "source_entry_id": redemption["_id"],
                "source_account_id": redemption["account_id"],
                **({"provenance": redemption["provenance"]} if "provenance" in redemption else {}),
                "request_key": redemption.get("request_key", ""),
                "reward_id": redemption.get("reward_id", ""),
                **({"item_id": redemption["item_id"]} if redemption.get("item_id") else {}),
            }

        return Request(pool["_id"], ledger.transfer_entry_id(redemption["_id"]), decide)
