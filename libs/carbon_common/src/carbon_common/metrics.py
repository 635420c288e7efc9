"""Prometheus metrics shared by every process (one definition each; services add their own)."""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS_PROCESSED = Counter(
    "carbon_events_processed_total",
    "Events handled, by outcome (ok / error: an error is retried, then parked)",
    ["service", "event_type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "carbon_handler_duration_seconds", "Time spent in an event handler or RPC method", ["service", "entrypoint"]
)
QUEUE_DEPTH = Gauge(
    "carbon_queue_messages", "Messages waiting in a handler queue (kind = main / retry / dlq)", ["queue", "kind"]
)
PROCESSING_LAG = Histogram(
    "carbon_processing_lag_seconds",
    "Time from a behaviour's occurred_at (or receipt) to this step",
    ["service", "step"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
