"""Pure domain: sealing, hash chain, caps arithmetic, tiers, events mapping, verifier."""

import pytest

from account import caps, ledger
from account.outbox import events_for
from account.tiers import Tiers
from account.verifier import verify_chain
from carbon_common.schemas import validate_payload

TIERS = Tiers("seedling:0,sprout:100")


def chain(*grams):
    state, entries = ledger.genesis_state("acc"), []
    drafts = [{"_id": "open", "type": "opened", "grams": 0, "status": "open"}]
    drafts += [
        {"_id": f"e{i}", "type": "credit" if g >= 0 else "redemption", "grams": g, "cap_grams": max(g, 0)}
        for i, g in enumerate(grams)
    ]
    for draft in drafts:
        entry, state = ledger.seal(state, draft, "2026-11-25T01:00:00.000000Z", TIERS.tier_for)
        entries.append(entry)
    return entries, state


def test_seal_runs_the_balance_and_links_hashes():
    entries, state = chain(50, 70, -20)
    assert [e["balance_after"] for e in entries] == [0, 50, 120, 100]
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:]))
    assert state["tier"] == "sprout" and entries[2]["previous_tier"] == "seedling"


def test_no_entry_may_take_the_balance_below_zero():
    _, state = chain(10)
    with pytest.raises(ledger.InsufficientBalance):
        ledger.seal(state, {"_id": "x", "type": "redemption", "grams": -11}, "2026-11-25T02:00:00Z", TIERS.tier_for)


def test_verifier_finds_edits_gaps_and_broken_links():
    entries, _ = chain(10, 20, 30)
    assert verify_chain("acc", entries)[0] == []
    edited = [dict(e) for e in entries]
    edited[2]["grams"] = 25
    assert {p.kind for p in verify_chain("acc", edited)[0]} >= {"hash_mismatch", "balance_mismatch"}
    assert {p.kind for p in verify_chain("acc", entries[:2] + entries[3:])[0]} >= {"sequence_gap", "broken_link"}


def test_cap_periods_are_china_standard_time():
    cap = caps.Cap("day", 0, 5)
    assert caps.cap_key("metro", cap, "2026-11-24T16:30:00Z").endswith("day:2026-11-25")
    assert caps.cap_key("metro", caps.Cap("month", 0, 5), "2026-11-30T16:30:00Z").endswith("month:2026-12")


def test_cached_cap_periods_and_retention_match_the_calendar_at_every_hour():
    """Sealing takes periods and the retention cutoff from the UTC hour (cached); the same
    answers as converting each full timestamp, across day, month and year ends."""
    from datetime import datetime, timedelta, timezone

    start = datetime(2025, 12, 30, tzinfo=timezone.utc)
    for hour in range(24 * 66):
        moment = start + timedelta(hours=hour, minutes=59, seconds=59, microseconds=999_999)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        local = moment.astimezone(caps.CST)
        assert caps.local_period("day", stamp) == local.strftime("%Y-%m-%d")
        assert caps.local_period("month", stamp) == local.strftime("%Y-%m")
        assert caps.local_period("day", moment.astimezone(caps.CST).isoformat()) == local.strftime("%Y-%m-%d")
        cutoff = (moment - timedelta(days=caps.RETENTION_DAYS)).astimezone(caps.CST)
        assert caps.retention_cutoff(stamp) == (cutoff.strftime("%Y-%m-%d"), cutoff.strftime("%Y-%m"))
        assert caps.is_retained(f"metro_ride|user|day:{cutoff:%Y-%m-%d}", stamp)
        assert not caps.is_retained(f"metro_ride|user|day:{cutoff - timedelta(days=1):%Y-%m-%d}", stamp)


def test_cap_evaluation_takes_the_tightest_cap():
    day, month = caps.Cap("day", 300, 5), caps.Cap("month", 1000, 0)
    assert caps.evaluate(200, [day, month], {day: (250, 2), month: (0, 0)}).credited == 50
    assert caps.evaluate(200, [day, month], {day: (0, 5)}).binding == day
    assert caps.evaluate(200, [day, month], {month: (900, 9)}).credited == 100


@pytest.mark.parametrize(
    "bad", [{"period": "week"}, {"period": "day", "max_grams": -1}, {"period": "day", "scope": "bill_account"}]
)
def test_invalid_caps_are_refused(bad):
    with pytest.raises(caps.InvalidCap):
        caps.Cap.from_event(bad)


def test_tiers_from_thresholds():
    tiers = Tiers("seed:0,tree:500,forest:5000")
    assert [tiers.tier_for(g) for g in (0, 499, 500, 10**9)] == ["seed", "seed", "tree", "forest"]
    with pytest.raises(ValueError):
        Tiers("tree:500")


def sealed(account_id: str, kind: str, drafts: list[dict]) -> list[dict]:
    state, entries = ledger.genesis_state(account_id), []
    for draft in drafts:
        entry, state = ledger.seal(
            state,
            {"owner_pid": f"pid-{kind}", "account_kind": kind, **draft},
            "2026-11-25T01:00:00.000000Z",
            TIERS.tier_for,
        )
        entries.append(entry)
    return entries


def every_entry_type() -> list[dict]:
    """One entry of each type, drafted as LedgerOperations drafts them: a customer's chain and
    the bank pool's (which receives the redemption transfer)."""

    def reduction(n: int) -> dict:
        return {
            "reduction_id": f"red-{n}",
            "record_key": f"rec-{n}",
            "partner_id": "metro-sz",
            "scenario": "metro_ride",
            "occurred_at": "2026-11-25T00:30:00Z",
            "methodology_id": "metro_ride",
            "methodology_version": "1",
            "factor_set_id": "cn-transport",
            "factor_set_version": "2026.1",
        }

    cap = {"period": "day", "max_grams": 300, "max_count": 0, "scope": "user_scenario", "scope_key": ""}
    cap_key = caps.cap_key("metro_ride", caps.Cap.from_event(cap), "2026-11-25T00:30:00Z")
    customer = sealed(
        "acc",
        "individual",
        [
            {"_id": "e-open", "type": "opened", "grams": 0, "status": "open"},
            {
                "_id": "e-credit",
                "type": "credit",
                **reduction(1),
                "grams": 300,
                "requested_grams": 350,
                "capped_grams": 50,
                "cap": cap,
                "cap_keys": [cap_key],
                "cap_grams": 300,
                "cap_count": 1,
            },
            {
                "_id": "e-capped",
                "type": "capped",
                **reduction(2),
                "grams": 0,
                "requested_grams": 120,
                "capped_grams": 120,
                "cap": cap,
            },
            {
                "_id": "e-declined",
                "type": "declined",
                **reduction(3),
                "grams": 0,
                "requested_grams": 80,
                "code": "duplicate_behaviour",
                "duplicate_of_record_key": "rec-1",
            },
            {
                "_id": "e-reversal",
                "type": "reversal",
                "reduction_id": "red-1",
                "record_key": "rec-1",
                "scenario": "metro_ride",
                "reason": "factor corrected",
                "corrected_by_version": "2",
                "grams": -100,
                "reverses_entry_id": "e-credit",
                "occurred_at": "2026-11-25T00:30:00Z",
                "shortfall_grams": 0,
                "cap_keys": [cap_key],
                "cap_grams": -300,
                "cap_count": -1,
            },
            {"_id": "e-redemption", "type": "redemption", "grams": -150, "request_key": "req-1", "reward_id": "coupon"},
            {
                "_id": "e-refund",
                "type": "refund",
                "grams": 50,
                "code": "fulfilment_failed",
                "refunded_entry_id": "e-r2",
            },
            {
                "_id": "e-status",
                "type": "status_changed",
                "grams": 0,
                "status": "frozen",
                "previous_status": "open",
                "code": "fraud_review",
            },
        ],
    )
    pool = sealed(
        "pool",
        "pool",
        [
            {"_id": "p-open", "type": "opened", "grams": 0, "status": "open"},
            {
                "_id": "p-transfer",
                "type": "redemption_transfer",
                "grams": 150,
                "source_entry_id": "e-redemption",
                "source_account_id": "acc",
                "request_key": "req-1",
                "reward_id": "coupon",
            },
            {
                "_id": "p-write-off",
                "type": "correction_write_off",
                "grams": -50,
                "reduction_id": "r-1",
                "transfer_entry_id": "p-transfer",
                "source_account_id": "acc",
                "reversal_entry_id": "e-reversal",
                "original_grams": 150,
                "corrected_grams": 100,
                "corrected_by_version": "2",
            },
        ],
    )
    return customer + pool


def test_every_entry_type_maps_to_valid_contract_events():
    entries = every_entry_type()
    assert sorted({e["type"] for e in entries}) == sorted(ledger.ENTRY_TYPES)
    announced = {}
    for entry in entries:
        events = events_for(entry)
        for event_type, event_id, data in events:
            validate_payload(event_type, data)
            assert event_id.startswith(entry["_id"]) and data["entry"]["entry_id"] == entry["_id"]
        assert len({event_id for _, event_id, _ in events}) == len(events)
        announced[entry["_id"]] = [(t, data.get("grams"), data.get("reason")) for t, _, data in events]
    assert announced == {
        "e-open": [("account_opened", None, None)],
        "e-credit": [
            ("account_credited", 300, "reduction"),
            ("reduction_capped", None, None),
            ("tier_changed", None, None),
        ],  # 300 g over 12 months: seedling -> sprout
        "e-capped": [("reduction_capped", None, None)],
        "e-declined": [("reduction_declined", None, None)],
        "e-reversal": [("account_debited", 100, "reversal"), ("tier_changed", None, None)],
        "e-redemption": [("account_debited", 150, "redemption")],
        "e-refund": [("account_credited", 50, "refund")],
        "e-status": [("account_status_changed", None, "fraud_review")],
        "p-open": [("account_opened", None, None)],
        "p-transfer": [("account_credited", 150, "redemption_transfer")],
        "p-write-off": [],  # the pool's correction write-off is in the ledger and reconciliation, no event
    }
