"""FerretDB through pymongo, and spans over OTLP found again through Jaeger's query API."""

import subprocess
import sys
import uuid

import pytest
from pymongo.errors import DuplicateKeyError

from carbon_common import mongo
from carbon_common.mongo import (
    create_query_index,
    insert_new,
    insert_or_get,
    insert_or_get_many,
    is_duplicate_key,
    is_ferretdb,
)
from carbon_dev.testing import jaeger_trace, wait_until


def test_document_round_trip_and_unique_index_violation(mongo_database):
    db = mongo_database("storage")
    db.entries.create_index([("account_id", 1), ("seq", 1)], unique=True, name="account_seq")
    db.entries.insert_one({"_id": "e1", "account_id": "a", "seq": 1, "grams": 46})
    assert db.entries.find_one({"_id": "e1"})["grams"] == 46

    with pytest.raises(DuplicateKeyError) as same_id:
        db.entries.insert_one({"_id": "e1", "account_id": "a", "seq": 2, "grams": 1})
    assert is_duplicate_key(same_id.value)

    with pytest.raises(DuplicateKeyError) as same_seq:
        db.entries.insert_one({"_id": "e2", "account_id": "a", "seq": 1, "grams": 1})
    assert is_duplicate_key(same_seq.value)
    assert db.entries.count_documents({}) == 1  # neither losing insert left anything behind


def test_insert_or_get_returns_the_document_stored_first(mongo_database):
    db = mongo_database("storage")
    db.batches.create_index([("claim_id", 1)], unique=True, name="claim_id_unique")
    first = {"_id": "b1", "claim_id": "c1", "n": 1}
    assert insert_or_get(db.batches, first) == (first, True)
    assert insert_or_get(db.batches, {"_id": "b1", "claim_id": "c9", "n": 2}) == (first, False)  # same _id
    # another unique key: found by it, not by the _id that was never stored
    assert insert_or_get(db.batches, {"_id": "b2", "claim_id": "c1", "n": 3}, also_unique=("claim_id",)) == (
        first,
        False,
    )
    with pytest.raises(LookupError):
        insert_or_get(db.batches, {"_id": "b3", "claim_id": "c1"})  # the schema must name claim_id
    assert db.batches.count_documents({}) == 1

    assert insert_new(db.items, [{"_id": "i1"}, {"_id": "i2"}]) == set()
    assert insert_new(db.items, [{"_id": "i2"}, {"_id": "i3"}, {"_id": "i1"}]) == {0, 2}
    stored = insert_or_get_many(db.items, [{"_id": "i3", "x": 1}, {"_id": "i4", "x": 2}])
    assert stored == [({"_id": "i3"}, False), ({"_id": "i4", "x": 2}, True)]


class _RecordingInserts:
    """A collection that remembers the _ids of every insert_many sent through it."""

    def __init__(self, collection):
        self._collection, self.sent = collection, []

    def insert_many(self, docs, **kwargs):
        self.sent.append([d["_id"] for d in docs])
        return self._collection.insert_many(docs, **kwargs)

    def __getattr__(self, name):
        return getattr(self._collection, name)


def test_insert_or_get_many_never_sends_a_stored_document_again(mongo_database, monkeypatch):
    """FerretDB re-inserts a whole chunk document by document, a commit each, when one of its
    documents is a duplicate: the documents already stored are read, not written again."""
    db = mongo_database("storage")
    db.claims.insert_many([{"_id": "k1", "by": "first"}, {"_id": "k3", "by": "first"}])
    claims = _RecordingInserts(db.claims)

    stored = insert_or_get_many(claims, [{"_id": k, "by": "second"} for k in ("k1", "k2", "k3", "k4")])

    assert claims.sent == [["k2", "k4"]]
    assert [(d["_id"], d["by"], new) for d, new in stored] == [
        ("k1", "first", False),
        ("k2", "second", True),
        ("k3", "first", False),
        ("k4", "second", True),
    ]

    # written by another process between the read and the insert: still the first one wins
    db.claims.insert_one({"_id": "k5", "by": "racer"})
    monkeypatch.setattr(mongo, "find_by_ids", _first_call_blind(mongo.find_by_ids))  # read before the racer
    assert [(d["by"], new) for d, new in insert_or_get_many(db.claims, [{"_id": "k5", "by": "late"}])] == [
        ("racer", False)
    ]
    assert db.claims.count_documents({}) == 5


def _first_call_blind(find):
    calls = []

    def blind(coll, ids, *args):
        calls.append(ids)
        return {} if len(calls) == 1 else find(coll, ids, *args)

    return blind


def test_query_indexes_are_skipped_only_where_the_server_never_reads_them(mongo_database, monkeypatch):
    """FerretDB v1 reads no index but _id's: a query index there only slows every insert."""
    db = mongo_database("storage")
    assert is_ferretdb(db.client)  # the suite's store; on MongoDB `auto` creates it
    assert create_query_index(db.entries, [("account_id", 1), ("month", 1)], "account_month") is False
    assert "account_month" not in db.entries.index_information()

    monkeypatch.setenv("CARBON_QUERY_INDEXES", "always")
    assert create_query_index(db.entries, [("account_id", 1), ("month", 1)], "account_month") is True
    assert "account_month" in db.entries.index_information()

    monkeypatch.setenv("CARBON_QUERY_INDEXES", "sometimes")
    with pytest.raises(ValueError, match="auto, always or never"):
        create_query_index(db.entries, [("seq", 1)], "seq")
    assert "seq" not in db.entries.index_information()


SPAN_SCRIPT = """
import sys
from carbon_common.telemetry import setup_telemetry, force_flush, current_trace_id
tracer = setup_telemetry(sys.argv[1], instrument_pymongo=False)
with tracer.start_as_current_span("wiring-check"):
    print(current_trace_id())
force_flush()
"""


def test_span_exported_over_otlp_is_found_in_jaeger():
    service = f"wiring-{uuid.uuid4().hex[:6]}"
    out = subprocess.run(
        [sys.executable, "-c", SPAN_SCRIPT, service],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
    )
    trace_id = out.stdout.strip()
    assert len(trace_id) == 32
    found = wait_until(lambda: jaeger_trace(trace_id), timeout=15, message="trace in Jaeger")
    assert [s["operationName"] for s in found["spans"]] == ["wiring-check"]
    assert found["processes"][found["spans"][0]["processID"]]["serviceName"] == service
