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
    drafts += [{"_id": f"e{i}", "type": "credit" if g >= 0 else "redemption", "grams": g, "cap_grams": max(g, 0)}
               for i, g in enumerate(grams)]
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


def test_cap_evaluation_takes_the_tightest_cap():
    day, month = caps.Cap("day", 300, 5), caps.Cap("month", 1000, 0)
    assert caps.evaluate(200, [day, month], {day: (250, 2), month: (0, 0)}).credited == 50
    assert caps.evaluate(200, [day, month], {day: (0, 5)}).binding == day
    assert caps.evaluate(200, [day, month], {month: (900, 9)}).credited == 100


@pytest.mark.parametrize("bad", [{"period": "week"}, {"period": "day", "max_grams": -1},
                                 {"period": "day", "scope": "bill_account"}])
def test_invalid_caps_are_refused(bad):
    with pytest.raises(caps.InvalidCap):
        caps.Cap.from_event(bad)


def test_tiers_from_thresholds():
    tiers = Tiers("seed:0,tree:500,forest:5000")
    assert [tiers.tier_for(g) for g in (0, 499, 500, 10**9)] == ["seed", "seed", "tree", "forest"]
    with pytest.raises(ValueError):
        Tiers("tree:500")


def test_every_entry_type_maps_to_valid_contract_events():
    entries, _ = chain(150, -20)
    for entry in entries:
        entry.update(owner_pid="pid", account_kind="individual", request_key="k")
        for event_type, event_id, data in events_for(entry):
            validate_payload(event_type, data)
            assert event_id.startswith(entry["_id"])
    assert [t for t, _, _ in events_for(entries[1])] == ["account_credited", "tier_changed"]
