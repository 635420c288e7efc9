"""The catalogue's Prometheus metrics (on the account processes' metrics ports)."""

from types import SimpleNamespace

from prometheus_client import Counter

REDEMPTIONS = Counter(
    "carbon_catalogue_redemptions_total",
    "Catalogue redemptions by outcome (redeemed, replayed, or the refusal's code)",
    ["outcome"],
)
CLAIM_CONFLICTS = Counter(
    "carbon_catalogue_claim_conflicts_total", "Claim inserts that found their slot taken (the next one was tried)"
)
CLAIMS_FREED = Counter(
    "carbon_catalogue_claims_freed_total", "Slots taken over from claims that no longer count (crashed attempts)"
)
CLAIMS_LOST = Counter(
    "carbon_catalogue_claims_lost_total",
    "Redemptions whose claim was taken over before their debit landed, by fate (refunded or settled = oversold)",
    ["fate"],
)
FULFILMENTS_CLOSED = Counter(
    "carbon_catalogue_fulfilments_closed_total", "Partner fulfilments decided, by outcome and fate", ["outcome", "fate"]
)
REPORTS_IGNORED = Counter(
    "carbon_catalogue_reports_ignored_total",
    "Partner fulfilment reports not applied (unknown fulfilment, not the item's partner)",
    ["reason"],
)
CLAIMS = SimpleNamespace(conflicts=CLAIM_CONFLICTS, freed=CLAIMS_FREED)
