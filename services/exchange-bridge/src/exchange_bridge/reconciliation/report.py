"""A reconciliation's report: the differences it found per check, what was in flight, its
figures and cost; published as gauges on the bridge's /metrics and one structured log line."""

import logging
import time
from dataclasses import dataclass, field

from prometheus_client import Gauge

from carbon_common.clock import utc_now_iso

log = logging.getLogger("exchange_bridge.reconciliation")  # the logger name from before the package split

CHECKS = (
    "registry_batches",
    "unknown_batches",
    "unit_operations",
    "holdings",
    "group_units",
    "invariant",
    "reductions",
    "corrections",
)
LISTED = 100  # differences listed per check (all are counted)
DIFFERENCES = Gauge(
    "carbon_exchange_reconciliation_differences",
    "Differences the last completed reconciliation found between the registry, the bridge's records and the "
    "ledger, by check (reported, never fixed: 0 is the only healthy value)",
    ["check"],
)
OVERSTATED = Gauge(
    "carbon_exchange_overstated_grams",
    "Grams the exchange holds beyond what the ledger keeps, as of the last completed reconciliation: "
    "reductions a correction lowered after their batch was formed (ADR 0005 §2; the bank decides)",
)
LAST_RUN = Gauge(
    "carbon_exchange_reconciliation_last_run_timestamp_seconds",
    "Unix time the last reconciliation completed (a run that could not read everything does not set it)",
)


class ReconciliationFailed(RuntimeError):
    """A run could not read everything (registry or account unavailable): nothing is reported."""


@dataclass
class Report:
    participant: str
    started_at: str = field(default_factory=utc_now_iso)
    differences: dict = field(default_factory=lambda: {check: [] for check in CHECKS})
    in_flight: list = field(default_factory=list)
    overstated: list = field(default_factory=list)  # reductions corrected after their batch formed
    figures: dict = field(default_factory=dict)
    cost: dict = field(default_factory=lambda: {"bridge_reads": 0, "registry_calls": 0, "account_calls": 0})

    def add(self, check: str, subject: str, what: str, **details) -> None:
        self.differences[check].append({"check": check, "subject": subject, "what": what, **details})

    @property
    def counts(self) -> dict:
        return {check: len(found) for check, found in self.differences.items()}

    @property
    def ok(self) -> bool:
        return not any(self.differences.values())

    def as_dict(self, seconds: float) -> dict:
        return {
            "ok": self.ok,
            "participant": self.participant,
            "started_at": self.started_at,
            "seconds": round(seconds, 3),
            "counts": self.counts,
            "differences": [d for check in CHECKS for d in self.differences[check][:LISTED]],
            "in_flight": self.in_flight[:LISTED],
            "overstated": self.overstated[:LISTED],
            "figures": self.figures,
            "cost": self.cost,
        }


def publish(result: dict) -> None:
    """The report as gauges and one structured log line (warning when anything differs)."""
    for check, count in result["counts"].items():
        DIFFERENCES.labels(check).set(count)
    OVERSTATED.set(result["figures"].get("overstated_at_exchange_grams", 0))
    LAST_RUN.set(time.time())
    extra = {
        "ok": result["ok"],
        "counts": result["counts"],
        "in_flight": len(result["in_flight"]),
        "seconds": result["seconds"],
        "figures": {k: v for k, v in result["figures"].items() if not isinstance(v, dict)},
        "cost": result["cost"],
    }
    if result["ok"]:
        log.info("exchange reconciliation: registry, bridge and ledger agree", extra=extra)
    else:
        extra["differences"] = result["differences"][:20]
        log.warning("exchange reconciliation found differences (reported, not fixed)", extra=extra)
