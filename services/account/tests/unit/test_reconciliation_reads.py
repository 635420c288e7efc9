"""`account.account_figures` (account.reconciliation_reads) on the fake repository: what many
accounts credited, redeemed and hold, in one call with `_id` reads only, for the exchange
bridge's reconciliation; bad input refused."""

from dataclasses import dataclass

import pytest

from account import ledger
from account.ledger import InvalidRequest
from account.reconciliation_reads import ReconciliationReads, figures_of
from carbon_dev import payloads


@dataclass
class Ledger:
    repo: object
    ops: object


def test_figures_of_many_accounts_in_one_call(ops, repo):
    ops.credit_many([payloads.reduction("alice", n, g) for n, g in ((1, 300), (2, 200))])
    ops.credit_many([payloads.reduction("bob", 1, 700)])
    entry, _ = ops.redeem(ledger.account_id_for("alice"), 250, "order-1")
    ops.settle(entry["_id"])
    ids = [ledger.account_id_for(u) for u in ("alice", "bob")] + ["acc_unknown"]

    figures = figures_of(Ledger(repo, ops), ids)

    assert figures == {
        ids[0]: {
            "owner_pid": "alice",
            "credited_grams": 500,
            "redeemed_grams": 250,
            "balance_grams": 250,
            "as_of_seq": 4,
        },
        ids[1]: {"owner_pid": "bob", "credited_grams": 700, "redeemed_grams": 0, "balance_grams": 700, "as_of_seq": 2},
    }


@pytest.mark.parametrize("bad", [[], "acc_1", ["x" * 65], [1], ["a"] * 501, None])
def test_bad_input_is_refused(ops, repo, bad):
    with pytest.raises(InvalidRequest):
        figures_of(Ledger(repo, ops), bad)


def test_the_rpc_is_an_entrypoint_of_the_mixin():
    assert hasattr(ReconciliationReads.account_figures, "nameko_entrypoints")
