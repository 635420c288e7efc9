"""Reconciliation of the registry's holdings and history with the bridge's records and the
ledger: reconciler.py says what each check compares and in which order it reads."""

from exchange_bridge.reconciliation.reconciler import Reconciler, for_bridge
from exchange_bridge.reconciliation.report import CHECKS, DIFFERENCES, LAST_RUN, ReconciliationFailed, Report, publish

__all__ = ["CHECKS", "DIFFERENCES", "LAST_RUN", "ReconciliationFailed", "Reconciler", "Report", "for_bridge", "publish"]
