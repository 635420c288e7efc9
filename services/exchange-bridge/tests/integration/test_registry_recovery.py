"""A registry process dying between any two writes: the next attempt (the bank's re-send, or any
reader) finishes what was decided, and nothing is done twice."""

import inspect

import pytest

from exchange_bridge.registry import blocks, issuance, records
from registry_support import RegistryApi, make_leaves, submission

pytestmark = pytest.mark.integration


@pytest.fixture
def api(mongo_database):
    return RegistryApi(mongo_database("registry"))


def crash_once(monkeypatch, owner, name):
    """`owner.name` raises the first time it is called (the process "dies" there)."""
    original = getattr(owner, name)
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"crash in {name}")
        return original(*args, **kwargs)

    is_static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    monkeypatch.setattr(owner, name, staticmethod(dying) if is_static else dying)


def test_crash_after_claims_before_the_link(api, monkeypatch):
    bank = api.onboard()
    body = submission(bank, make_leaves(3, grams=500_000))
    crash_once(monkeypatch, issuance.Issuance, "_link")
    died = api.submit(bank, body)
    assert died.status_code == 500 and died.json["code"] == "internal_error"
    assert api.db.reductions.count_documents({}) == 3 and api.db.issuances.count_documents({}) == 0
    assert api.call(bank, "GET", f"/v1/batches/{body['batch']['batch_id']}").status_code == 404
    done = api.submit(bank, body)  # the bank re-sends what it has no answer for
    assert done.status_code == 201 and done.json["status"] == "issued"
    assert api.db.reductions.count_documents({}) == 3


def test_crash_after_the_link_before_the_batch_document(api, monkeypatch):
    bank = api.onboard()
    body = submission(bank, make_leaves(2, grams=1_000_000))
    crash_once(monkeypatch, issuance.Issuance, "_batch_doc")
    assert api.submit(bank, body).status_code == 500
    assert api.db.issuances.count_documents({}) == 1 and api.db.batches.count_documents({}) == 0
    done = api.submit(bank, body).json
    assert (done["status"], done["serial_start"], done["serial_end"]) == ("issued", 1, 2)
    following = submission(bank, make_leaves(1, grams=1_000_000), carried_from=done["batch_id"])
    assert api.submit(bank, following).json["serial_start"] == 3


def test_crash_before_the_sequence_number_is_finished_by_a_reader(api, monkeypatch):
    bank = api.onboard()
    body = submission(bank, make_leaves(1, grams=1_000_000))
    crash_once(monkeypatch, records.Records, "sequence")
    assert api.submit(bank, body).status_code == 500
    status = api.call(bank, "GET", f"/v1/batches/{body['batch']['batch_id']}").json  # the reader finishes it
    assert status["status"] == "issued" and status["issuance"]["seq"] == 1
    assert api.db.sequence.count_documents({}) == 1


def test_crash_after_the_fate_before_the_record(api, monkeypatch):
    bank, other = api.onboard(), api.onboard()
    issued = api.submit(bank, submission(bank, make_leaves(5, grams=1_000_000))).json
    body = {"transfer_id": "t-1", "batch_id": issued["batch_id"], "units": 2, "to_holder": other.participant}
    crash_once(monkeypatch, blocks.Ledger, "finish")
    assert api.call(bank, "POST", "/v1/transfers", body).status_code == 500
    assert api.db.fates.count_documents({}) == 1 and api.db.records.count_documents({}) == 1
    status = api.call(bank, "GET", f"/v1/batches/{issued['batch_id']}").json
    assert [op["op_id"] for op in status["operations"]] == [f"transfer:{bank.participant}:t-1"]
    again = api.call(bank, "POST", "/v1/transfers", body)
    assert again.status_code == 200 and (again.json["start"], again.json["end"]) == (1, 2)
    assert api.db.fates.count_documents({}) == 1 and api.db.sequence.count_documents({}) == 2
    theirs = api.call(other, "GET", f"/v1/holdings/{other.participant}").json["blocks"]["active"]
    assert [(b["start"], b["end"]) for b in theirs] == [(1, 2)]
