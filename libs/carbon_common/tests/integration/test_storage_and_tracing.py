"""FerretDB through pymongo, and spans over OTLP found again through Jaeger's query API."""
import subprocess
import sys
import uuid

import pytest
from pymongo.errors import DuplicateKeyError

from carbon_common.mongo import is_duplicate_key
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
    out = subprocess.run([sys.executable, "-c", SPAN_SCRIPT, service], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    trace_id = out.stdout.strip()
    assert len(trace_id) == 32
    found = wait_until(lambda: jaeger_trace(trace_id), timeout=15, message="trace in Jaeger")
    assert [s["operationName"] for s in found["spans"]] == ["wiring-check"]
    assert found["processes"][found["spans"][0]["processID"]]["serviceName"] == service
