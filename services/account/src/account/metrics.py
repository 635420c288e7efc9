"""The account service's own Prometheus metrics (shared ones live in carbon_common.metrics)."""

from prometheus_client import Counter

ENTRIES_APPENDED = Counter("carbon_account_entries_appended_total", "Ledger entries appended, by type", ["type"])
APPEND_CONFLICTS = Counter(
    "carbon_account_append_conflicts_total", "Appends that lost the race for a sequence number and were retried"
)
GRAMS_POSTED = Counter(
    "carbon_account_grams_total",
    "Grams posted to ledgers, by entry type (credit, capped, reversal, redemption …)",
    ["type"],
)
EVENTS_RELAYED = Counter("carbon_account_events_relayed_total", "Events published by the outbox relay", ["event_type"])
GRPC_CALLS = Counter("carbon_account_grpc_calls_total", "gRPC calls, by method and status code", ["method", "code"])
