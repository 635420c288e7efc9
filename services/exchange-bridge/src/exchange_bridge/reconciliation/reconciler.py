"""Reconciliation: the registry's holdings and history against the bridge's records and the
ledger. A difference is **reported** — one structured log line, the CLI's JSON and exit 1
(`python -m exchange_bridge.cli.reconcile`), the gauges below on the bridge's /metrics — and
never fixed: deciding what is right is the operator's call.

Checks (the `check` label of carbon_exchange_reconciliation_differences):
  registry_batches   every batch the bridge holds as issued has its issue record at the
                     registry, issued to the bank, with the same serial block, units, carried
                     remainder, Merkle and consent roots, grams, digest and signature
  unknown_batches    no batch issued to the bank at the registry that the bridge does not hold
                     as issued (one the bridge holds as sent, without an outcome yet, is listed
                     in `in_flight`, not counted: the bridge's next pass stores it)
  unit_operations    every transfer, retirement and cancellation the bridge recorded is the
                     registry's record (same fields, same signature) with its transition, and
                     every operation the registry records from the bank is one the bridge has
  holdings           the registry's holdings of the bank per batch and status (active, retired,
                     cancelled, transferred) = what the bridge's records give (issued − moved)
  group_units        per group (methodology, version, vintage): the registry's chain of issue
                     records is gapless, each links the previous one's remainder, serials are
                     contiguous from 1 with no overlap, units = floor((carried in + grams) / 1e6);
                     the bank's units in the group = floor(sum of its issued batches' grams / 1e6)
                     and the bridge's own batches state the same chain
  invariant          for each account and in total: registered ≤ redeemed to the pool ≤ credited
                     (registered = leaf grams of the bank's issued batches by owner; redeemed =
                     grams of the pool transfers by `source_account_id`; credited = the
                     account state's `credited`, RPC `account.account_figures`, 500 a call)
  reductions         every reduction is in at most one batch — two only as attempt 1 (rejected,
                     released) and its attempt 2 — issued at most once, with its `candidates`
                     and `issued` documents agreeing (the leaf at the grams its slot's
                     correction states, if any) and no write-off of an issued one
  corrections        a gram a correction took off a redeemed reduction is counted once (ADR 0005
                     §2): a batched reduction the pool wrote a correction off for is batched at
                     exactly the corrected grams, and every correction a formed batch applied
                     has the pool's `correction_write_off`

Not a difference, listed apart (`overstated`, gauge carbon_exchange_overstated_grams): a
reduction of a batch (not rejected) that a correction lowered after its batch was formed — the
exchange holds more of its grams than the ledger keeps; no run can take that back, and what to
do about it (cancel units) is the bank's call.

Reads, in this order so that what moves on meanwhile only grows later quantities (no false
alarm from a run racing the bridge, the account or the registry): the bridge (every group's
slots, batches, transitions, unit operations, records: `_id` / `$in` pages, no write), the
registry (the whole transaction history in pages of 500 and the bank's holdings), then the
account (the pool chains' transfers and correction write-offs in pages of 1,000, then
`account_figures` per 500 redeeming accounts, one `get_totals` for the platform's credited total,
and `corrections` per 500 batched reductions). An apparent difference between bridge and registry
is read again by `_id` before it is reported. What it costs: the README, "Reconciliation".
"""

import time

from carbon_common.accounts import POOL_OWNERS

from exchange_bridge.reconciliation.group_checks import GroupChecks
from exchange_bridge.reconciliation.ledger_checks import LedgerChecks
from exchange_bridge.reconciliation.reads import Reads, _Counted
from exchange_bridge.reconciliation.reduction_checks import ReductionChecks
from exchange_bridge.reconciliation.registry_checks import GRACE_SECONDS, RegistryChecks
from exchange_bridge.reconciliation.report import ReconciliationFailed, Report
from exchange_bridge.repository import Repository


class Reconciler(Reads, RegistryChecks, GroupChecks, ReductionChecks, LedgerChecks):
    """One bank's reconciliation: the reads and each family of checks live in their own module
    of this package and are mixed in here; `run` calls them in the order the docstring above
    gives (which is what keeps a run racing the bridge free of false alarms)."""

    def __init__(
        self, repo, registry, account, participant: str, pool_owners=POOL_OWNERS, grace: float = GRACE_SECONDS
    ):
        self.grace = grace
        self.store = repo.db  # read through a fresh Repository per run: counted, and never written
        self.repo = None
        self.registry, self.account = registry, account
        self.participant, self.pool_owners = participant, tuple(pool_owners)

    def run(self) -> dict:
        """One reconciliation -> the report (`ok`, `counts` per check, `differences`, figures,
        cost). Raises ReconciliationFailed when the registry or the account could not be read."""
        started = time.monotonic()
        report = Report(self.participant)
        self.repo = Repository(_Counted(self.store, report.cost))
        bridge = self._bridge(report)
        stage = "the registry"
        try:
            registry = self._registry(report)
            self._batches(report, bridge, registry)
            self._operations(report, bridge, registry)
            self._holdings(report, bridge, registry)
            self._groups(report, bridge, registry)
            self._reductions(report, bridge)
            stage = "the account"
            self._invariant(report, bridge)
            self._late_corrections(report, bridge)
        except Exception as error:  # Unknown, RemoteError, RpcTimeout, a broken connection
            raise ReconciliationFailed(f"{stage} could not be read: {error!r}") from error
        return report.as_dict(time.monotonic() - started)


def for_bridge(bridge, account) -> Reconciler:
    """The reconciler over a Bridge's repository, registry client and participant."""
    return Reconciler(bridge.repo, bridge.units.registry, account, bridge.units.participant)
