"""Provenance of redeemed grams (ADR 0005 §2) on the fake repository: which credited reductions
a redemption consumed (FIFO by entry seq), what the pool transfer carries, and what a factor
correction may still take back. What an auditor cares about: every redeemed gram traces to
exactly one reduction, no reduction is handed to the exchange twice, and a correction never
overdraws or double-counts."""

import json

import pytest

from account import ledger
from account.operations import LedgerOperations
from account.queries import Queries
from account.tiers import Tiers
from account.verifier import verify_chain
from carbon_common.canonical import canonical_json
from carbon_dev import payloads


def acc(user: str) -> str:
    return ledger.account_id_for(user)


@pytest.fixture
def queries(repo, ops):
    return Queries(repo, ops.appender)


def redeem_settled(ops, account_id: str, grams: int, key: str):
    """A plain redemption, settled now (the relay would settle it within its next pass)."""
    entry, replayed = ops.redeem(account_id, grams, key)
    assert ops.settle(entry["_id"]) == "settled"
    return entry, replayed


def credit(ops, user: str, *grams: int, first: int = 1, **extra) -> None:
    ops.credit_many([payloads.reduction(user, n, g, **extra) for n, g in enumerate(grams, start=first)])


def carried(queries, repo, redemption: dict) -> list[tuple[str, int]]:
    """The reductions the redemption's pool transfer carries, once it is settled."""
    transfer_id = ledger.transfer_entry_id(redemption["_id"])
    return [(c["reduction_id"], c["grams"]) for c in queries.contributions([transfer_id])[transfer_id]]


def test_a_redemption_consumes_credits_oldest_first_and_completes_each_reduction_once(ops, queries, repo):
    credit(ops, "alice", 100, 200, 300)
    first, _ = redeem_settled(ops, acc("alice"), 250, "order-1")
    second, _ = redeem_settled(ops, acc("alice"), 100, "order-2")
    third, _ = redeem_settled(ops, acc("alice"), 250, "order-3")
    # credit seqs: opened = 1, then 2, 3, 4; 250 g = all of seq 2 + 150 g of seq 3
    assert first["provenance"] == {"from": [1, 0], "to": [3, 150], "completed": 1}
    assert second["provenance"] == {"from": [3, 150], "to": [4, 50], "completed": 1}
    # a reduction joins the exchange whole, with the redemption that spent its last gram
    assert carried(queries, repo, first) == [("red-alice-1", 100)]
    assert carried(queries, repo, second) == [("red-alice-2", 200)]
    assert carried(queries, repo, third) == [("red-alice-3", 300)]
    assert verify_chain(acc("alice"), repo.account_entries(acc("alice")))[0] == []


def test_the_pool_transfer_carries_the_redemptions_range_and_every_figures_versions(ops, queries, repo):
    credit(ops, "bob", 500, consent_id="consent-9", methodology_version="2")
    redemption, _ = redeem_settled(ops, acc("bob"), 500, "order-1")
    transfer = repo.get_entry(ledger.transfer_entry_id(redemption["_id"]))
    assert transfer["provenance"] == redemption["provenance"]
    assert transfer["source_account_id"] == acc("bob")
    transfer_id = transfer["_id"]
    (only,) = queries.contributions([transfer_id])[transfer_id]
    assert {k: only[k] for k in ("reduction_id", "grams", "owner_pid", "consent_id", "methodology_version")} == {
        "reduction_id": "red-bob-1",
        "grams": 500,
        "owner_pid": "bob",
        "consent_id": "consent-9",
        "methodology_version": "2",
    }
    assert (
        only["occurred_at"]
        and only["factor_set_version"]
        and only["credit_entry_id"] == ledger.credit_entry_id("red-bob-1")
    )


def test_reversed_credits_are_skipped_and_never_reach_the_pool(ops, queries, repo):
    credit(ops, "carol", 100, 200)
    reversal = ops.reverse({"reduction_id": "red-carol-1", "user_pid": "carol"})
    assert reversal["grams"] == -100
    redemption, _ = redeem_settled(ops, acc("carol"), 200, "order-1")
    assert carried(queries, repo, redemption) == [("red-carol-2", 200)]


def test_a_correction_of_a_redeemed_reduction_is_refused_recorded_and_its_successor_declined(ops, repo):
    credit(ops, "dave", 400)
    ops.redeem(acc("dave"), 100, "order-1")  # 100 of the 400 g are spent: the reduction is locked
    corrected = payloads.reduction("dave", 1, 300, reduction_id="red-dave-1-r1", revision=1, supersedes="red-dave-1")
    entries, _ = ops.credit_many([corrected])
    chain = repo.account_entries(acc("dave"))
    refusal = next(e for e in chain if e["_id"] == ledger.reversal_entry_id("red-dave-1"))
    assert (refusal["grams"], refusal["code"]) == (0, "locked_redeemed")
    assert (entries[0]["type"], entries[0]["code"], entries[0]["grams"]) == ("declined", "supersedes_locked", 0)
    assert chain[-1]["balance_after"] == 300  # 400 credited - 100 redeemed, nothing else moved
    # the correction's own reversal event, arriving after, finds the refusal already recorded
    late = ops.reverse({"reduction_id": "red-dave-1", "user_pid": "dave"})
    assert late["_id"] == refusal["_id"] and late["grams"] == 0
    assert verify_chain(acc("dave"), repo.account_entries(acc("dave")))[0] == []


def test_a_correction_of_an_unredeemed_reduction_reverses_it_before_crediting_the_new_one(ops, repo):
    credit(ops, "erin", 400)
    corrected = payloads.reduction("erin", 1, 300, reduction_id="red-erin-1-r1", revision=1, supersedes="red-erin-1")
    entries, _ = ops.credit_many([corrected])
    chain = repo.account_entries(acc("erin"))
    assert [(e["type"], e["grams"]) for e in chain[-2:]] == [("reversal", -400), ("credit", 300)]
    assert entries[0]["type"] == "credit" and chain[-1]["balance_after"] == 300
    # the reversal event calc also published is then a replay: nothing is taken twice
    assert ops.reverse({"reduction_id": "red-erin-1", "user_pid": "erin"})["_id"] == chain[-2]["_id"]
    assert repo.account_entries(acc("erin"))[-1]["balance_after"] == 300


def test_a_ledger_written_before_provenance_gets_its_cursor_from_its_redeemed_total(ops, queries, repo):
    credit(ops, "fay", 100, 200)
    ops.redeem(acc("fay"), 150, "order-1")
    # states as stored before this change: no cursor (the walk of the redeemed total restores it)
    for key, text in list(repo._states.items()):
        state = json.loads(text)
        state.pop("fifo", None)
        repo._states[key] = canonical_json(state)
    legacy = LedgerOperations(repo, Tiers())
    redemption, _ = redeem_settled(legacy, acc("fay"), 150, "order-2")
    assert redemption["provenance"]["from"] == [3, 50]
    assert carried(queries, repo, redemption) == [("red-fay-2", 200)]


def test_a_refusal_from_calc_is_a_zero_gram_entry_and_the_late_reversal_changes_nothing(ops, repo):
    credit(ops, "gus", 700)
    ops.redeem(acc("gus"), 700, "order-1")
    refusal = ops.record_refusal(
        {
            "reduction_id": "red-gus-1",
            "user_pid": "gus",
            "code": "locked_at_exchange",
            "batch_id": "B-1",
            "corrected_grams": 650,
        }
    )
    assert (refusal["type"], refusal["grams"], refusal["code"], refusal["batch_id"]) == (
        "reversal",
        0,
        "locked_at_exchange",
        "B-1",
    )
    assert refusal["refused_entry_id"] == ledger.credit_entry_id("red-gus-1")
    again = ops.reverse({"reduction_id": "red-gus-1", "user_pid": "gus"})
    assert again["_id"] == refusal["_id"]
    chain = repo.account_entries(acc("gus"))
    assert chain[-1]["balance_after"] == 0 and sum(e["grams"] for e in chain) == 0
    assert verify_chain(acc("gus"), chain)[0] == []


def test_each_contribution_names_the_trace_that_credited_it_and_the_hash_ignores_it(ops, queries, repo):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    ops.credit_many([payloads.reduction("hal", 1, 900)], [traceparent])
    redemption, _ = redeem_settled(ops, acc("hal"), 900, "order-1")
    transfer_id = ledger.transfer_entry_id(redemption["_id"])
    assert [c["traceparent"] for c in queries.contributions([transfer_id])[transfer_id]] == [traceparent]
    credit_entry = repo.get_entry(ledger.credit_entry_id("red-hal-1"))
    assert credit_entry["hash"] == ledger.entry_hash({**credit_entry, "traceparent": "00-other"})
    assert verify_chain(acc("hal"), repo.account_entries(acc("hal")))[0] == []


def test_a_process_walks_from_the_credit_it_remembers_and_agrees_with_one_that_reads(ops, repo):
    """The credit under the cursor is locked once consumed, so its grams are known for good:
    the next redemption in this process reads no chain, and another process (which reads it)
    sees the same cursor."""
    credit(ops, "carol", 1000, 500)
    first, _ = ops.redeem(acc("carol"), 100, "o-1")
    other = LedgerOperations(repo, Tiers())  # another process: remembers nothing
    second, _ = other.redeem(acc("carol"), 100, "o-2")
    assert (first["provenance"]["to"], second["provenance"]["to"]) == ([2, 100], [2, 200])
    reads = []
    real = repo.states_by_seq
    repo.states_by_seq = lambda *args: reads.append(args) or real(*args)
    third, _ = ops.redeem(acc("carol"), 700, "o-3")
    assert reads == [] and third["provenance"] == {"from": [2, 200], "to": [2, 900], "completed": 0}
    fourth, _ = ops.redeem(acc("carol"), 200, "o-4")  # past the remembered credit's end: read
    assert reads and fourth["provenance"] == {"from": [2, 900], "to": [3, 100], "completed": 1}
    assert verify_chain(acc("carol"), repo.account_entries(acc("carol")))[0] == []


def test_a_walk_that_was_never_sealed_is_not_remembered(ops, repo):
    credit(ops, "dave", 1000)
    with pytest.raises(ledger.RequestKeyReused):
        ops.redeem(acc("dave"), 100, "o-1")
        ops.redeem(acc("dave"), 200, "o-1")  # the same key, other grams: the stored entry stays
    assert ops.consumed.get(acc("dave"), 2) == 1000  # remembered from the sealed first one only
    fresh = LedgerOperations(repo, Tiers())
    with pytest.raises(ledger.InsufficientBalance):
        fresh.redeem(acc("dave"), 5000, "o-2")  # refused: decided, never sealed
    assert fresh.consumed.get(acc("dave"), 2) is None


def _correct(ops, user: str, grams: int) -> dict:
    """A factor correction of the user's first reduction (revision 1), as calc publishes it."""
    new = payloads.reduction(user, 1, grams, reduction_id=f"red-{user}-1-r1", revision=1, supersedes=f"red-{user}-1")
    entries, _ = ops.credit_many([new])
    return entries[0]


def test_a_redeemed_reduction_corrected_downwards_reaches_the_exchange_at_the_corrected_grams(ops, queries, repo):
    """ADR 0005 §2: the customer keeps the reward; the exchange receives min(original,
    corrected); the pool chain that received the transfer writes off the difference, once."""
    credit(ops, "gina", 400)
    redemption, _ = redeem_settled(ops, acc("gina"), 400, "order-1")
    assert _correct(ops, "gina", 300)["code"] == "supersedes_locked"
    refusal = repo.get_entry(ledger.reversal_entry_id("red-gina-1"))
    assert (refusal["code"], refusal["grams"], refusal["corrected_grams"]) == ("locked_redeemed", 0, 300)
    transfer_id = ledger.transfer_entry_id(redemption["_id"])
    (only,) = queries.contributions([transfer_id])[transfer_id]
    assert (only["grams"], only["original_grams"], only["written_off_grams"]) == (300, 400, 100)
    pool_id = repo.get_entry(transfer_id)["account_id"]
    before = repo.account_entries(pool_id)[-1]["balance_after"]
    item = {"reduction_id": "red-gina-1", "transfer_entry_id": transfer_id}
    # what the bridge asks when it forms a batch: the same figures, and nothing written
    assert queries.corrections([item]) == [
        {
            "reduction_id": "red-gina-1",
            "transfer_entry_id": transfer_id,
            "grams": 300,
            "original_grams": 400,
            "written_off_grams": 100,
        }
    ]
    assert repo.account_entries(pool_id)[-1]["balance_after"] == before
    (written,) = ops.write_off_corrections([item])
    assert written["_id"] == ledger.correction_write_off_entry_id("red-gina-1")
    assert (written["type"], written["grams"], written["original_grams"], written["corrected_grams"]) == (
        "correction_write_off",
        -100,
        400,
        300,
    )
    assert ops.write_off_corrections([item])[0]["_id"] == written["_id"]  # a replay writes nothing
    chain = repo.account_entries(pool_id)
    assert [e["type"] for e in chain].count("correction_write_off") == 1
    assert chain[-1]["balance_after"] == before - 100
    assert repo.account_entries(acc("gina"))[-1]["balance_after"] == 0  # the customer keeps the reward
    assert verify_chain(pool_id, chain)[0] == []


def test_calcs_reversal_arriving_first_carries_the_corrected_grams_and_ineligible_means_zero(ops, queries, repo):
    credit(ops, "hugo", 400)
    redemption, _ = redeem_settled(ops, acc("hugo"), 400, "order-1")
    # calc's reduction_reversed is handled before the successor (it is published first)
    refusal = ops.reverse({"reduction_id": "red-hugo-1", "user_pid": "hugo", "corrected_grams": 0})
    assert (refusal["code"], refusal["corrected_grams"]) == ("locked_redeemed", 0)
    transfer_id = ledger.transfer_entry_id(redemption["_id"])
    (only,) = queries.contributions([transfer_id])[transfer_id]
    assert (only["grams"], only["written_off_grams"]) == (0, 400)
    (written,) = ops.write_off_corrections([{"reduction_id": "red-hugo-1", "transfer_entry_id": transfer_id}])
    assert written["grams"] == -400


def test_a_correction_that_raises_a_redeemed_reduction_changes_nothing(ops, queries, repo):
    credit(ops, "ivan", 400)
    redemption, _ = redeem_settled(ops, acc("ivan"), 400, "order-1")
    assert _correct(ops, "ivan", 500)["code"] == "supersedes_locked"
    transfer_id = ledger.transfer_entry_id(redemption["_id"])
    (only,) = queries.contributions([transfer_id])[transfer_id]
    assert (only["grams"], only["written_off_grams"]) == (400, 0)
    assert ops.write_off_corrections([{"reduction_id": "red-ivan-1", "transfer_entry_id": transfer_id}]) == []
    assert queries.corrections([{"reduction_id": "red-ivan-1", "transfer_entry_id": transfer_id}]) == []
    pool_id = repo.get_entry(transfer_id)["account_id"]
    assert "correction_write_off" not in [e["type"] for e in repo.account_entries(pool_id)]


def test_a_write_off_is_refused_for_a_reduction_the_transfer_does_not_carry(ops, queries, repo):
    credit(ops, "jane", 400)
    credit(ops, "kurt", 400)
    redemption, _ = redeem_settled(ops, acc("jane"), 400, "order-1")
    _correct(ops, "kurt", 100)  # kurt's reduction was never redeemed: reversed, not locked
    wrong = [{"reduction_id": "red-kurt-1", "transfer_entry_id": ledger.transfer_entry_id(redemption["_id"])}]
    with pytest.raises(ledger.InvalidRequest):
        ops.write_off_corrections(wrong)
    with pytest.raises(ledger.InvalidRequest):
        queries.corrections(wrong)
