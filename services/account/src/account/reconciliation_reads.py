"""Read-only RPC `account.account_figures(account_ids)` for the exchange bridge's reconciliation
(services/exchange-bridge, exchange_bridge.reconciliation): what up to 500 accounts credited,
redeemed and hold, in one call, by `_id` / `$in` reads only (the accounts, then every head state
walked forward together: Appender.heads_many). The reconciliation checks registered <= redeemed
to the pool <= credited for every account that redeemed; one call per 500 accounts instead of
two per account.

Mixed into AccountService (account.service) as `reconciliation_reads.ReconciliationReads`:
the module, not the class, is imported there, so `nameko run` does not take it for a service.
"""

from nameko.rpc import rpc

from account.ledger import InvalidRequest

MAX_ACCOUNTS = 500
MAX_ID = 64


def figures_of(ledger, account_ids) -> dict:
    """account id -> {owner_pid, credited_grams, redeemed_grams, balance_grams, as_of_seq};
    ids of no account are left out. InvalidRequest for anything but a list of 1-500 ids."""
    if (
        not isinstance(account_ids, (list, tuple))
        or not 0 < len(account_ids) <= MAX_ACCOUNTS
        or not all(isinstance(a, str) and 0 < len(a) <= MAX_ID for a in account_ids)
    ):
        raise InvalidRequest(f"account_ids: a list of 1-{MAX_ACCOUNTS} account ids", "invalid_request")
    accounts = ledger.repo.accounts_by_ids(list(dict.fromkeys(account_ids)))
    heads = ledger.ops.appender.heads_many(list(accounts)) if accounts else {}
    return {
        account_id: {
            "owner_pid": doc["owner_pid"],
            "credited_grams": int(heads[account_id]["credited"]),
            "redeemed_grams": int(heads[account_id]["redeemed"]),
            "balance_grams": int(heads[account_id]["balance"]),
            "as_of_seq": int(heads[account_id]["seq"]),
        }
        for account_id, doc in accounts.items()
    }


class ReconciliationReads:
    """The RPC, answered from the service's `ledger` dependency."""

    @rpc(expected_exceptions=(InvalidRequest,))
    def account_figures(self, account_ids):
        return figures_of(self.ledger, account_ids)
