"""Races decided by unique inserts only: one batch per group position, reductions in one batch,
serials that never overlap, one sequence number per record."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from carbon_common.mongo import find_by_ids
from exchange_bridge.registry import blocks
from registry_support import RegistryApi, make_leaves, submission

pytestmark = pytest.mark.integration


@pytest.fixture
def api(mongo_database):
    return RegistryApi(mongo_database("registry"))


def race(calls):
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_one_batch_wins_each_group_position_and_losers_leave_nothing(api):
    bank = api.onboard()
    bodies = [submission(bank, make_leaves(3, grams=700_000)) for _ in range(8)]
    answers = race([lambda b=b: api.submit(bank, b) for b in bodies])
    won = [a for a in answers if a.status_code == 201]
    assert len(won) == 1, [a.json for a in answers]
    assert {a.json["code"] for a in answers if a.status_code != 201} == {"carried_mismatch"}
    winner = won[0].json
    assert api.db.reductions.count_documents({}) == 3 and api.db.batches.count_documents({}) == 1
    followers = [
        submission(
            bank, make_leaves(2, grams=700_000), carried_in=winner["carried_out_grams"], carried_from=winner["batch_id"]
        )
        for _ in range(6)
    ]
    answers = race([lambda b=b: api.submit(bank, b) for b in followers])
    assert [a.status_code for a in answers].count(201) == 1
    assert api.db.reductions.count_documents({}) == 5 and api.db.issuances.count_documents({}) == 2
    serials = sorted((a["start"], a["end"]) for a in api.db.issuances.find({}))
    assert serials == [(1, 2), (3, 3)]  # 2.1 t -> 2 units carrying .1 t; .1 + 1.4 t -> 1 unit: contiguous


def test_overlapping_batches_never_share_a_reduction(api):
    bank = api.onboard()
    shared = make_leaves(1, grams=1_000_000)
    bodies = [submission(bank, shared + make_leaves(1, grams=1_000_000)) for _ in range(4)]
    answers = race([lambda b=b: api.submit(bank, b) for b in bodies])
    won = [a.json for a in answers if a.status_code == 201]
    assert len(won) <= 1
    claimed = list(api.db.reductions.find({}))
    if won:
        assert {c["batch_id"] for c in claimed} == {won[0]["batch_id"]} and len(claimed) == 2
    else:
        assert claimed == []  # both refused each other: nothing of either stays


def test_concurrent_transfers_split_one_block_exactly(api):
    bank, other = api.onboard(), api.onboard()
    issued = api.submit(bank, submission(bank, make_leaves(4, grams=5_000_000))).json  # 20 units
    calls = [
        lambda i=i: api.call(
            bank,
            "POST",
            "/v1/transfers",
            {"transfer_id": f"t-{i}", "batch_id": issued["batch_id"], "units": 1, "to_holder": other.participant},
        )
        for i in range(20)
    ]
    answers = race(calls)
    assert [a.status_code for a in answers] == [201] * 20, [a.json for a in answers if a.status_code != 201]
    assert sorted(a.json["start"] for a in answers) == list(range(1, 21))
    held = api.call(other, "GET", f"/v1/holdings/{other.participant}").json["blocks"]["active"]
    assert sorted(b["start"] for b in held) == list(range(1, 21))
    seqs = sorted(r["seq"] for r in api.db.records.find({}))
    assert seqs == list(range(1, 22))  # 1 issue + 20 transfers, no gap, no duplicate


def test_the_same_operation_sent_concurrently_is_done_once(api):
    bank, other = api.onboard(), api.onboard()
    issued = api.submit(bank, submission(bank, make_leaves(2, grams=2_000_000))).json
    body = {"transfer_id": "once", "batch_id": issued["batch_id"], "units": 2, "to_holder": other.participant}
    answers = race([lambda: api.call(bank, "POST", "/v1/transfers", body) for _ in range(6)])
    assert {a.status_code for a in answers} <= {200, 201}
    assert len({a.json["op_id"] for a in answers}) == 1 and len({a.json["start"] for a in answers}) == 1
    assert api.db.fates.count_documents({}) == 1 and api.db.records.count_documents({}) == 2


def test_many_groups_at_once_get_their_own_serials_and_one_history(api):
    bank = api.onboard()
    bodies = [submission(bank, make_leaves(2, grams=1_000_000, year=2020 + i)) for i in range(6)]
    answers = race([lambda b=b: api.submit(bank, b) for b in bodies])
    assert [a.status_code for a in answers] == [201] * 6
    assert {a.json["serial_start"] for a in answers} == {1}
    links = find_by_ids(api.db.sequence, list(range(1, 7)))
    assert sorted(links) == list(range(1, 7)) and api.db.sequence.count_documents({}) == 6


def test_an_operation_that_keeps_losing_races_answers_contention(api, monkeypatch):
    bank, other = api.onboard(), api.onboard()
    issued = api.submit(bank, submission(bank, make_leaves(3, grams=1_000_000))).json
    stale = api.app.extensions["registry"].ledger.walk(issued["batch_id"])  # the view before any transfer
    body = {"transfer_id": "first", "batch_id": issued["batch_id"], "units": 1, "to_holder": other.participant}
    assert api.call(bank, "POST", "/v1/transfers", body).status_code == 201
    monkeypatch.setattr(blocks.Ledger, "walk", lambda self, batch_id: stale)  # always sees the spent block
    late = api.call(bank, "POST", "/v1/transfers", dict(body, transfer_id="late"))
    assert late.status_code == 503 and late.json["code"] == "contention"
    assert api.db.fates.count_documents({}) == 1 and api.db.records.count_documents({}) == 2
