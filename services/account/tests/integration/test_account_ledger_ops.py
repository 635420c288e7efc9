"""The ledger on real FerretDB: crediting once, caps, dedup, reversal, redemption, verifier."""

import pytest

from carbon_common.accounts import pool_owner_for

from account import ledger
from account.ledger import AccountNotOpen, InsufficientBalance, RequestKeyReused
from account.verifier import verify_all

DAILY_2 = {"period": "day", "max_grams": 0, "max_count": 2, "scope": "user_scenario"}


def balance(ops, owner_pid):
    return ops.appender.head(ledger.account_id_for(owner_pid))["balance"]


def test_first_credit_opens_the_account_and_credits_once(ops, repo, make_reduction):
    red = make_reduction(grams=120)
    first = ops.credit(red)
    again = ops.credit(dict(red))
    entries = repo.account_entries(first["account_id"])
    assert [e["type"] for e in entries] == ["opened", "credit"]
    assert again["_id"] == first["_id"] and first["balance_after"] == 120
    assert first["methodology_version"] == "1.0.0" and first["factor_set_version"] == "2026.1"
    assert first["inputs"] == {"distance_km": "12.4"} and first["consent_id"] == "consent-1"


def test_count_cap_records_the_capped_record(ops, repo, make_reduction):
    entries = [ops.credit(make_reduction(grams=50, caps=[DAILY_2])) for _ in range(3)]
    assert [e["type"] for e in entries] == ["credit", "credit", "capped"]
    assert entries[2]["capped_grams"] == 50 and entries[2]["cap"]["max_count"] == 2
    assert balance(ops, "pid-alice") == 100


def test_gram_cap_credits_the_remaining_room(ops, make_reduction):
    cap = {"period": "month", "max_grams": 130, "max_count": 0, "scope": "user_scenario"}
    a, b, c = (ops.credit(make_reduction(grams=100, caps=[cap])) for _ in range(3))
    assert (a["grams"], b["grams"], b["capped_grams"], c["type"]) == (100, 30, 70, "capped")


def test_bill_account_cap_is_per_bill_account(ops, make_reduction):
    def bill(key):
        return {"period": "month", "max_grams": 0, "max_count": 1, "scope": "bill_account", "scope_key": key}

    results = [ops.credit(make_reduction(scenario="utility_bill_payment", caps=[bill(k)])) for k in ("b1", "b1", "b2")]
    assert [e["type"] for e in results] == ["credit", "capped", "credit"]


def test_same_behaviour_from_two_partners_is_credited_once(ops, make_reduction):
    first = ops.credit(make_reduction(dedup_key="trip-xyz", partner_id="metro"))
    second = ops.credit(make_reduction(dedup_key="trip-xyz", partner_id="unionpay"))
    assert first["type"] == "credit"
    assert second["type"] == "declined" and second["code"] == "duplicate_behaviour"
    assert second["duplicate_of_record_key"] == first["record_key"]


def test_reversal_takes_the_grams_back_and_frees_the_cap(ops, make_reduction):
    red = make_reduction(grams=80, caps=[DAILY_2])
    credited = ops.credit(red)
    ops.credit(make_reduction(grams=80, caps=[DAILY_2]))
    reversal = ops.reverse({"reduction_id": red["reduction_id"], "user_pid": "pid-alice", "reason": "factor_corrected"})
    assert reversal["grams"] == -80 and reversal["reverses_entry_id"] == credited["_id"]
    assert ops.reverse({"reduction_id": red["reduction_id"], "user_pid": "pid-alice"})["_id"] == reversal["_id"]
    assert ops.credit(make_reduction(grams=80, caps=[DAILY_2]))["type"] == "credit"  # room freed
    assert balance(ops, "pid-alice") == 160


def test_reversal_before_credit_blocks_the_late_credit(ops, make_reduction):
    red = make_reduction(grams=80)
    assert (
        ops.reverse({"reduction_id": red["reduction_id"], "user_pid": "pid-alice"})["code"] == "original_not_credited"
    )
    late = ops.credit(red)
    assert late["type"] == "declined" and late["code"] == "reversed_before_credit"


def test_redemption_is_idempotent_never_negative_and_fills_the_pool(ops, repo, make_reduction):
    ops.credit(make_reduction(grams=300))
    account_id = ledger.account_id_for("pid-alice")
    debit, replayed = ops.redeem(account_id, 200, "req-1", "coffee")
    assert (debit["grams"], debit["balance_after"], replayed) == (-200, 100, False)
    again, replayed = ops.redeem(account_id, 200, "req-1", "coffee")
    assert (again["_id"], again["seq"], replayed) == (debit["_id"], debit["seq"], True)
    with pytest.raises(InsufficientBalance):
        ops.redeem(account_id, 101, "req-2")
    with pytest.raises(RequestKeyReused):
        ops.redeem(account_id, 50, "req-1", "coffee")
    assert repo.get_entry(ledger.redemption_entry_id(account_id, "req-2")) is None
    assert ops.settle(debit["_id"]) == "settled"
    assert ops.appender.head(ledger.account_id_for(pool_owner_for(debit["_id"])))["balance"] == 200


def test_frozen_account_declines_credits_and_redemptions(ops, make_reduction):
    ops.credit(make_reduction(grams=300))
    account_id = ledger.account_id_for("pid-alice")
    ops.set_status(account_id, "frozen", "freeze-1", "fraud_review")
    assert ops.credit(make_reduction(grams=10))["code"] == "account_frozen"
    with pytest.raises(AccountNotOpen):
        ops.redeem(account_id, 10, "req-frozen")


def test_personal_data_deletion_keeps_pseudonymous_amounts(ops, repo, make_reduction):
    ops.open_account("pid-bob", "individual", alias="Bob's carbon wallet")
    ops.credit(make_reduction(user_pid="pid-bob", grams=70))
    assert ops.forget_person("pid-bob")
    account = repo.get_account(ledger.account_id_for("pid-bob"))
    assert "alias" not in account and account["personal_data_deleted_at"]
    assert balance(ops, "pid-bob") == 70


def test_verifier_detects_a_manually_edited_entry(ops, repo, make_reduction):
    for grams in (10, 20, 30):
        ops.credit(make_reduction(grams=grams))
    assert verify_all(repo).ok
    target = repo.entry_at(ledger.account_id_for("pid-alice"), 3)
    repo.entries.update_one({"_id": target["_id"]}, {"$set": {"grams": 2000}})  # the "edit"
    report = verify_all(repo)
    assert not report.ok
    assert {(p.seq, p.kind) for p in report.problems} >= {(3, "hash_mismatch"), (3, "balance_mismatch")}


def test_a_missing_state_is_rebuilt_by_the_next_writer(ops, repo, make_reduction):
    ops.credit(make_reduction(grams=10))
    account_id = ledger.account_id_for("pid-alice")
    repo.states.delete_one({"_id": f"{account_id}:2"})  # as if the writer died after its entry
    from account.operations import LedgerOperations

    other = LedgerOperations(repo, ops.appender.tiers)  # a fresh process: no cache
    entry = other.credit(make_reduction(grams=5))
    assert (entry["seq"], entry["balance_after"]) == (3, 15)
    assert verify_all(repo).ok
