"""The ledger's pure domain: entry ids, the per-account state chain and the SM3 hash chain.

An account is a chain of entries (seq 1, 2, …). Each entry is *sealed* against the state after
the previous entry: the state carries the running balance, status, totals, the net grams
earned per posting month (for tiers) and the cap usage per cap key. Sealing is deterministic,
so the verifier can re-run it over the stored entries and spot any edit. No I/O here.
"""

import functools

from carbon_common import accounts, clock
from carbon_common.canonical import canonical_bytes
from carbon_common.gm import sm3_hex

from account import caps

# What an entry and its events carry to trace a figure to its calculation: the behaviour, and
# the methodology and factor versions that produced it.
PROVENANCE_FIELDS = (
    "scenario",
    "occurred_at",
    "methodology_id",
    "methodology_version",
    "factor_set_id",
    "factor_set_version",
)
GENESIS_HASH = "0" * 64
POOL_OWNER = accounts.POOL_OWNER
# posted_at, "%Y-%m-%dT%H:%M:%S.%fZ": the hash chain covers this text, so its shape never changes.
utc_now_iso = clock.utc_now_iso
KINDS = ("individual", "enterprise", "pool")
STATUSES = ("open", "frozen", "closed")
CREDIT, CAPPED, DECLINED, REVERSAL = "credit", "capped", "declined", "reversal"
OPENED, STATUS_CHANGED = "opened", "status_changed"
REDEMPTION, REDEMPTION_TRANSFER, REFUND = "redemption", "redemption_transfer", "refund"
# A pool entry: the grams of a redeemed (locked) reduction that a correction lowered, which the
# exchange never receives; the bank bears them (ADR 0005 §2).
CORRECTION_WRITE_OFF = "correction_write_off"
ENTRY_TYPES = (
    OPENED,
    CREDIT,
    CAPPED,
    DECLINED,
    REVERSAL,
    REDEMPTION,
    REDEMPTION_TRANSFER,
    REFUND,
    STATUS_CHANGED,
    CORRECTION_WRITE_OFF,
)
# Fields of a stored entry that are not part of its hash: outbox bookkeeping, and the trace
# that posted a credit (so an exchange batch can link to its records' traces; not a figure).
UNHASHED = ("hash", "published", "traceparent")
TIER_MONTHS = 12


class LedgerError(Exception):
    """A business rule refused the operation; nothing was written."""

    code = "ledger_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code or self.code


class AlreadyApplied(Exception):
    """decide() found its entry's effect already in the chain (a concurrent writer applied it)."""


class InsufficientBalance(LedgerError):
    code = "insufficient_balance"


class AccountNotOpen(LedgerError):
    code = "account_not_open"


class InvalidRequest(LedgerError):
    code = "invalid_request"


class RequestKeyReused(LedgerError):
    code = "request_key_reused"


def _id(*parts: str) -> str:
    return sm3_hex(":".join(parts).encode("utf-8"))


@functools.lru_cache(maxsize=65536)  # asked per record of a batch; an SM3 each time otherwise
def account_id_for(owner_pid: str) -> str:
    return "acc_" + _id("account", owner_pid)[:32]


def opened_entry_id(account_id: str) -> str:
    return _id("opened", account_id)


def credit_entry_id(reduction_id: str) -> str:
    """One entry per reduction, whatever its fate (credited, capped or declined)."""
    return _id("credit", reduction_id)


def reversal_entry_id(reduction_id: str) -> str:
    return _id("reversal", reduction_id)


def redemption_entry_id(account_id: str, request_key: str) -> str:
    return _id("redemption", account_id, request_key)


def transfer_entry_id(redemption_entry_id: str) -> str:
    return _id("redemption-transfer", redemption_entry_id)


def refund_entry_id(redemption_entry_id: str) -> str:
    return _id("refund", redemption_entry_id)


def correction_write_off_entry_id(reduction_id: str) -> str:
    """A reduction is written off the pool at most once (it reaches the pool once)."""
    return _id("correction-write-off", reduction_id)


def status_entry_id(account_id: str, request_key: str) -> str:
    return _id("status", account_id, request_key)


def dedup_claim_id(scenario: str, dedup_key: str) -> str:
    return _id("dedup", scenario, dedup_key)


def genesis_state(account_id: str) -> dict:
    return {
        "account_id": account_id,
        "seq": 0,
        "entry_id": "",
        "hash": GENESIS_HASH,
        "posted_at": "",
        "balance": 0,
        "status": "",
        "tier": "",
        "credited": 0,
        "reversed": 0,
        "redeemed": 0,
        "transferred_in": 0,
        "earned_by_month": {},
        "usage": {},
        "fifo": [1, 0],  # provenance cursor: oldest entry not fully redeemed, grams used (account.provenance)
    }


def entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k not in UNHASHED}
    return sm3_hex(canonical_bytes(body))


def trailing_earned(earned_by_month: dict, posted_month: str) -> int:
    months = caps.previous_months(posted_month, TIER_MONTHS)
    return sum(earned_by_month.get(m, 0) for m in months)


def seal(state: dict, draft: dict, now_iso: str, tier_for) -> tuple[dict, dict]:
    """Entry = draft + chain fields; returns (entry, state after it). Raises InsufficientBalance.

    draft holds _id, type, grams (signed), cap_keys/cap_grams/cap_count (credit/reversal), the
    audit fields, and `status` for opened/status_changed entries.
    """
    kind = draft["type"]
    grams = int(draft["grams"])
    balance = state["balance"] + grams
    if balance < 0:
        raise InsufficientBalance(f"balance {state['balance']} g cannot cover {-grams} g")
    posted_at = max(now_iso, state["posted_at"])  # monotone along the chain
    month = caps.statement_month(posted_at)
    new = {
        **state,
        "seq": state["seq"] + 1,
        "entry_id": draft["_id"],
        "posted_at": posted_at,
        "balance": balance,
        "earned_by_month": dict(state["earned_by_month"]),
        "usage": dict(state["usage"]),
    }
    if kind in (OPENED, STATUS_CHANGED):
        new["status"] = draft["status"]
    if kind == CREDIT:
        new["credited"] += grams
    elif kind == REVERSAL:
        new["reversed"] -= grams
    elif kind == REDEMPTION:
        new["redeemed"] -= grams
        if "provenance" in draft:
            new["fifo"] = list(draft["provenance"]["to"])
    elif kind == REDEMPTION_TRANSFER:
        new["transferred_in"] += grams
    elif kind == REFUND:  # a compensating entry: the redeemed total is net of refunds
        new["redeemed"] -= grams
    cap_grams = int(draft.get("cap_grams", 0))
    if cap_grams:
        new["earned_by_month"][month] = new["earned_by_month"].get(month, 0) + cap_grams
    for key in draft.get("cap_keys", ()):
        used = new["usage"].get(key, [0, 0])
        new["usage"][key] = [used[0] + cap_grams, used[1] + int(draft.get("cap_count", 0))]
    kept_months = caps.previous_months(month, TIER_MONTHS + 1)
    new["earned_by_month"] = {m: g for m, g in new["earned_by_month"].items() if m in kept_months}
    cutoff = caps.retention_cutoff(posted_at)
    new["usage"] = {k: u for k, u in new["usage"].items() if caps.is_retained_after(k, cutoff)}
    trailing = trailing_earned(new["earned_by_month"], month)
    new["tier"] = tier_for(trailing)
    entry = {
        **draft,
        "account_id": state["account_id"],
        "seq": new["seq"],
        "grams": grams,
        "balance_after": balance,
        "status_after": new["status"],
        "tier_after": new["tier"],
        "previous_tier": state["tier"],
        "trailing_12m_after": trailing,
        "posted_at": posted_at,
        "month": month,
        "prev_hash": state["hash"],
    }
    entry["hash"] = entry_hash(entry)
    new["hash"] = entry["hash"]
    return entry, new


CHAIN_FIELDS = (
    "account_id",
    "seq",
    "balance_after",
    "status_after",
    "tier_after",
    "previous_tier",
    "trailing_12m_after",
    "posted_at",
    "month",
    "prev_hash",
    "hash",
    "published",
)


def draft_of(entry: dict) -> dict:
    """The draft an entry was sealed from (inverse of seal), for the verifier."""
    return {k: v for k, v in entry.items() if k not in CHAIN_FIELDS}
