"""The catalogue's pure domain: item versions, claim ids, periods, availability. No I/O here.

An item is a chain of versions (`<item_id>:<version>`, 1, 2, …), each a whole copy of what the
operator said plus `status` (active/retired) and `stock_batch`: the version whose stock is in
force. A change that restocks starts a new batch (the new version's own number); any other
change carries the batch on, so sales made under earlier versions keep counting against it.

Stock is a set of slots `<item_id>:s<batch>:<n>` (n = 1..stock) and a per-customer limit a set
of slots `<item_id>:<account_id>:<period>:<k>` (k = 1..limit_count, period = the calendar day,
month or year in China Standard Time): a redemption holds one of each by inserting a *claim*
document with that `_id` (account.catalogue.claims).
"""

from datetime import datetime, timedelta, timezone

from account.ledger import LedgerError

CST = timezone(timedelta(hours=8), "CST")
ACTIVE, RETIRED = "active", "retired"
NONE, PARTNER = "none", "partner"
SPEC_FIELDS = (
    "item_id",
    "title",
    "kind",
    "price_grams",
    "stock",
    "unlimited_stock",
    "limit_count",
    "limit_period",
    "valid_from",
    "valid_until",
    "eligible_tiers",
    "fulfilment",
    "partner_id",
    "fulfilment_window_seconds",
    "on_expiry",
)


# --- refusals (LedgerError: "<code>: <text>", never the request's values) -------------------------
class ItemNotFound(LedgerError):
    code = "item_not_found"


class RedemptionNotFound(LedgerError):
    code = "redemption_not_found"


class ItemExists(LedgerError):
    code = "item_exists"


class VersionConflict(LedgerError):
    code = "version_conflict"


class ItemNotAvailable(LedgerError):
    """Retired, not yet valid or expired (the code says which)."""

    code = "item_not_available"


class OutOfStock(LedgerError):
    code = "out_of_stock"


class LimitReached(LedgerError):
    code = "limit_reached"


class NotEligible(LedgerError):
    code = "not_eligible"


class Busy(LedgerError):
    """Another attempt with the same request_key is in flight: retry shortly (ABORTED)."""

    code = "redemption_in_progress"


# --- ids ---------------------------------------------------------------------------------------
def version_id(item_id: str, version: int) -> str:
    return f"{item_id}:{version}"


def stock_claim_id(item_id: str, batch: int, n: int) -> str:
    return f"{item_id}:s{batch}:{n}"


def limit_claim_id(item_id: str, account_id: str, period: str, k: int) -> str:
    return f"{item_id}:{account_id}:{period}:{k}"


PERIOD_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


def period_key(period: str, now: datetime) -> str:
    """The calendar period (China Standard Time) that holds `now`: 2026-12-07, 2026-12, 2026."""
    return now.astimezone(CST).strftime(PERIOD_FORMATS[period])


# --- versions ----------------------------------------------------------------------------------
def spec_of(version: dict) -> dict:
    return {k: version[k] for k in SPEC_FIELDS}


def new_version(
    spec: dict, version: int, status: str, stock_batch: int, request_key: str, reason: str, now_iso: str
) -> dict:
    return {
        "_id": version_id(spec["item_id"], version),
        **spec,
        "version": version,
        "status": status,
        "stock_batch": stock_batch,
        "changed_at": now_iso,
        "request_key": request_key,
        "reason": reason,
    }


def same_change(stored: dict, wanted: dict) -> bool:
    """Whether a stored version is the one a repeated request (same request_key) would write."""
    keys = (*SPEC_FIELDS, "status", "request_key", "reason")  # the stock batch follows from them
    return all(stored.get(k) == wanted.get(k) for k in keys)


# --- judging an item -----------------------------------------------------------------------------
def unavailable(item: dict, now_iso: str) -> str:
    """Why nobody can redeem the item now ("" when anybody may, as far as the item goes)."""
    if item["status"] != ACTIVE:
        return "item_retired"
    if item["valid_from"] and now_iso < item["valid_from"]:
        return "not_yet_valid"
    if item["valid_until"] and now_iso >= item["valid_until"]:
        return "expired"
    return ""


def fulfil_by(item: dict, now: datetime) -> str:
    """The end of a partner item's fulfilment window for a redemption made at `now`."""
    return iso(now + timedelta(seconds=item["fulfilment_window_seconds"]))


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
