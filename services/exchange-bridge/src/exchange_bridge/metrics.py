"""The bridge's Prometheus metrics (module-level: registered once per process)."""

from prometheus_client import Counter

TRANSITIONS = Counter(
    "carbon_exchange_transitions",
    "Batch transitions stored by this process, by state (formed, submitted, verified, rejected, issued, "
    "released, written_off, transferred, retired, cancelled)",
    ["state"],
)
EVENTS = Counter("carbon_exchange_events", "exchange_batch_* events published, by event type", ["event_type"])
REFUSALS = Counter(
    "carbon_exchange_refusals",
    "Registry refusals by code; a code outside the content refusals holds the batch (sent again later)",
    ["code", "outcome"],
)
UNKNOWN = Counter("carbon_exchange_unknown_outcomes", "Registry calls that ended with no known outcome")
ISSUED_UNITS = Counter("carbon_exchange_issued_units", "Whole-tonne units issued for the bank's batches")
ISSUED_GRAMS = Counter("carbon_exchange_issued_grams", "Grams CO2e in issued batches")
WRITTEN_OFF_GRAMS = Counter(
    "carbon_exchange_written_off_grams", "Grams of reductions written off (rejected twice, or unbatchable at intake)"
)
INTAKE_REDUCTIONS = Counter("carbon_exchange_intake_reductions", "Reductions queued from the bank pool's transfers")
