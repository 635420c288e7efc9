"""The contract FakeRepository (tests/account_fakes.py) must keep with the real Repository.

The fast unit tests drive the ledger over the fake; they prove something only while the fake
answers as FerretDB does. Every test here runs twice, on the fake and on a real database, with
the same assertions: what the posting, outbox and redemption code relies on — the unique keys
that make the ledger exactly-once without transactions above all. A fake that drifts (say, one
that accepts a second entry with a taken seq) fails here.
"""

from datetime import timedelta

import pytest

from account import ledger
from account.ledger import RequestKeyReused
from account.operations import LedgerOperations
from account.repository import Repository
from account.tiers import Tiers
from carbon_common.accounts import pool_owner_for
from carbon_common.clock import utc_now
from carbon_dev import payloads

from account_fakes import FakeRepository

TIERS = Tiers()
ALICE, BOB = ledger.account_id_for("pid-contract-alice"), ledger.account_id_for("pid-contract-bob")


@pytest.fixture(params=["fake", pytest.param("ferretdb", marks=pytest.mark.integration)])
def repository(request):
    if request.param == "fake":
        return FakeRepository()
    real = Repository(request.getfixturevalue("mongo_database")("account"))
    real.ensure_indexes()
    return real


def credit_draft(entry_id: str, grams: int = 100, cap_key: str = "") -> dict:
    draft = {"_id": entry_id, "type": ledger.CREDIT, "grams": grams, "scenario": "metro_ride"}
    if cap_key:
        draft.update(cap_keys=[cap_key], cap_grams=grams, cap_count=1)
    return draft


def chain(account_id: str, *drafts: dict, state: dict | None = None) -> tuple[list[dict], list[dict]]:
    """(entries, states after each) sealed one after the other, as the appender seals them."""
    state = state or ledger.genesis_state(account_id)
    entries, states = [], []
    for draft in drafts:
        entry, state = ledger.seal(state, draft, ledger.utc_now_iso(), TIERS.tier_for)
        entries.append(entry)
        states.append(state)
    return entries, states


# entries: the exactly-once keys ------------------------------------------------------------------
def test_entries_read_back_as_written(repository):
    (e1, e2), _ = chain(ALICE, credit_draft("e1"), credit_draft("e2", 50))
    assert repository.insert_entries_in_order([e1, e2]) == 2
    assert repository.get_entry("e1") == e1
    assert repository.entry_at(ALICE, 2) == e2
    assert repository.account_entries(ALICE) == [e1, e2]
    assert repository.entries_by_ids(["e2", "e1", "missing"]) == {"e1": e1, "e2": e2}
    assert repository.get_entry("missing") is None and repository.entry_at(ALICE, 3) is None
    assert repository.insert_entries_in_order([]) == 0


def test_an_entry_id_inserted_twice_is_already_applied(repository):
    (e1,), _ = chain(ALICE, credit_draft("e1"))
    repository.insert_entries_in_order([e1])
    assert repository.insert_entries_in_order([e1]) == 0
    # the same idempotency id sealed at another seq (a redelivery decided on a newer state)
    (again,), _ = chain(ALICE, credit_draft("e1", 70), state=chain(ALICE, credit_draft("x"))[1][0])
    assert again["seq"] == 2 and repository.insert_entries_in_order([again]) == 0
    # the appender tells "already applied" by finding the id afterwards
    assert repository.get_entry("e1") == e1 and repository.entry_at(ALICE, 2) is None


def test_a_taken_seq_means_another_writer_won(repository):
    (mine,), _ = chain(ALICE, credit_draft("mine"))
    (theirs,), _ = chain(ALICE, credit_draft("theirs", 30))
    assert repository.insert_entries_in_order([theirs]) == 1
    assert repository.insert_entries_in_order([mine]) == 0
    # the appender tells "lost a race" by not finding its id afterwards
    assert repository.get_entry("mine") is None and repository.entry_at(ALICE, 1) == theirs


def test_an_ordered_insert_stops_at_the_first_taken_key(repository):
    (a1, a2), _ = chain(ALICE, credit_draft("a1"), credit_draft("a2"))
    (rival,), _ = chain(ALICE, credit_draft("rival"))
    (b1,), _ = chain(BOB, credit_draft("b1"))
    repository.insert_entries_in_order([rival])
    assert repository.insert_entries_in_order([b1, a1, a2]) == 1
    assert repository.get_entry("b1") == b1
    assert repository.get_entry("a1") is None and repository.get_entry("a2") is None  # never tried


def test_cap_usage_is_summed_from_the_stored_entries(repository):
    key = "day:2026-11-25:metro_ride"
    entries, _ = chain(ALICE, credit_draft("c1", 40, key), credit_draft("c2", 25), credit_draft("c3", 60, key))
    repository.insert_entries_in_order(entries)
    assert repository.cap_usage_scan(ALICE, key, max_seq=3) == (100, 2)
    assert repository.cap_usage_scan(ALICE, key, max_seq=2) == (40, 1)
    assert repository.cap_usage_scan(ALICE, "other", max_seq=3) == (0, 0)


# states and head hints: the last state of an account ---------------------------------------------
def test_states_by_id_and_the_first_copy_stays(repository):
    _, (s1, s2) = chain(ALICE, credit_draft("e1"), credit_draft("e2"))
    _, (b1,) = chain(BOB, credit_draft("b1"))
    repository.insert_states([s1, b1])
    repository.insert_state(s2)
    repository.insert_state({**s1, "balance": 999})  # a repaired duplicate: the stored one stays
    assert repository.get_state(ALICE, 1) == s1 and repository.get_state(ALICE, 2) == s2
    assert repository.get_state(ALICE, 3) is None
    assert repository.states_at({ALICE: 2, BOB: 1}) == {ALICE: s2, BOB: b1}
    assert repository.states_at({ALICE: 3, BOB: 2}) == {}  # the walk past the head stops here
    assert repository.states_by_seq(ALICE, [1, 2, 3]) == {1: s1, 2: s2}


def test_head_hints_only_move_forward(repository):
    assert repository.head_hints([ALICE]) == {}
    repository.set_head_hints({ALICE: 16, BOB: 32})
    repository.set_head_hints({ALICE: 8})
    repository.set_head_hints({})
    assert repository.head_hints([ALICE, BOB, "acc_none"]) == {ALICE: 16, BOB: 32}


# accounts and dedup claims ------------------------------------------------------------------
def account_doc(account_id: str, owner_pid: str, **extra) -> dict:
    return {
        "_id": account_id,
        "owner_pid": owner_pid,
        "kind": "individual",
        "opened_at": "2026-11-25T00:00:00Z",
        **extra,
    }


def test_accounts_are_unique_by_id_and_by_owner(repository):
    alice = account_doc(ALICE, "pid-a", alias="Alice", contact="a@example.com")
    assert repository.insert_account(dict(alice)) is True
    assert repository.insert_account(account_doc(ALICE, "pid-other")) is False
    assert repository.insert_account(account_doc("acc_x", "pid-a")) is False
    taken = repository.insert_accounts(
        [account_doc(ALICE, "pid-z"), account_doc(BOB, "pid-b"), account_doc("acc_y", "pid-b")]
    )
    assert taken == {0, 2}  # unordered: the others went in
    assert repository.get_account(ALICE) == alice and repository.get_account("acc_x") is None
    assert set(repository.accounts_by_ids([ALICE, BOB, "acc_y"])) == {ALICE, BOB}
    repository.unlink_personal_data(ALICE, "2026-11-26T00:00:00Z")
    forgotten = repository.get_account(ALICE)
    assert "alias" not in forgotten and "contact" not in forgotten
    assert forgotten["personal_data_deleted_at"] == "2026-11-26T00:00:00Z" and forgotten["owner_pid"] == "pid-a"


def test_the_first_claim_of_a_behaviour_holds_it(repository):
    first = {"_id": "claim-1", "record_key": "rec-1", "reduction_id": "red-1"}
    other = {"_id": "claim-2", "record_key": "rec-2", "reduction_id": "red-2"}
    assert repository.claim_many([first]) == {"claim-1": first}
    late = {"_id": "claim-1", "record_key": "rec-9", "reduction_id": "red-9"}
    assert repository.claim_many([late, other]) == {"claim-1": first, "claim-2": other}


# outbox -------------------------------------------------------------------------------------
def test_outbox_markers_are_written_once_read_and_dropped(repository):
    repository.add_outbox("e1", ALICE, "00-trace-1")
    repository.add_outbox("e1", ALICE, "00-trace-other")  # a retry of the same append: same marker
    repository.add_outbox("e2", BOB)
    repository.add_outbox("e3", BOB)
    markers = {m["_id"]: m for m in repository.pending_outbox(10)}
    assert set(markers) == {"e1", "e2", "e3"} and len(repository.pending_outbox(2)) == 2
    assert (markers["e1"]["account_id"], markers["e1"]["traceparent"]) == (ALICE, "00-trace-1")
    assert markers["e2"]["traceparent"] == ""
    # the relay ages markers against utc_now(): created_at must be an aware UTC datetime
    assert timedelta(0) <= utc_now() - markers["e1"]["created_at"] < timedelta(minutes=1)
    repository.drop_outbox(["e1", "e3", "missing"])
    repository.drop_outbox([])
    assert [m["_id"] for m in repository.pending_outbox(10)] == ["e2"]
    # one insert for a group of appends, each marker with its caller's trace (or none)
    repository.add_outbox_many([("e4", ALICE, "00-trace-4"), ("e5", BOB), ("e2", BOB, "00-trace-other")])
    markers = {m["_id"]: m for m in repository.pending_outbox(10)}
    assert {k: (m["account_id"], m["traceparent"]) for k, m in markers.items()} == {
        "e2": (BOB, ""),
        "e4": (ALICE, "00-trace-4"),
        "e5": (BOB, ""),
    }


# revoked consents -----------------------------------------------------------------------------
def test_a_consent_revocation_is_recorded_once_and_found_by_id(repository):
    first = {"_id": "cns-1", "revoked_at": "2026-11-25T08:00:00Z", "recorded_at": "2026-11-25T08:00:01.000Z"}
    assert repository.insert_revoked_consent(first) is True
    assert repository.insert_revoked_consent({**first, "revoked_at": "2026-11-26T00:00:00Z"}) is False
    assert repository.insert_revoked_consent({"_id": "cns-2", "revoked_at": "", "recorded_at": ""}) is True
    found = repository.revoked_consents_among(["cns-1", "cns-3", "cns-1"])
    assert found == {"cns-1": first}  # the first stays
    assert repository.revoked_consents_among([]) == {}


# the operations over it ---------------------------------------------------------------------
def test_credit_once_and_redemption_request_idempotency(repository):
    ops = LedgerOperations(repository, TIERS)
    ops.pool_account()
    reduction = payloads.reduction("pid-contract-carol", 1, 500)
    credited = ops.credit(reduction)
    assert ops.credit(dict(reduction))["_id"] == credited["_id"]
    account_id = credited["account_id"]
    entry, replayed = ops.redeem(account_id, 200, "order-1", "tea")
    again, replayed_again = ops.redeem(account_id, 200, "order-1", "tea")
    assert (replayed, replayed_again, again) == (False, True, entry)
    with pytest.raises(RequestKeyReused):
        ops.redeem(account_id, 300, "order-1", "tea")
    assert [e["type"] for e in repository.account_entries(account_id)] == ["opened", "credit", "redemption"]
    assert ops.appender.head(account_id)["balance"] == 300
    assert ops.settle(entry["_id"]) == "settled" and ops.settle(entry["_id"]) == "settled"
    pool = ledger.account_id_for(pool_owner_for(entry["_id"]))
    assert [e["grams"] for e in repository.account_entries(pool) if e["type"] == "redemption_transfer"] == [200]
