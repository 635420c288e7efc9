"""The HTTP side of a batch answer: each outcome's status and the batch's status and code
(ingest.views.batch_answer; the outcomes and codes are the domain's)."""

from ingest.domain import Outcome
from ingest.views.batch_answer import batch_answer, batch_status, record_result


def outcomes(*pairs):
    return [Outcome(i, f"r{i}", kind, code) for i, (kind, code) in enumerate(pairs)]


def test_batch_status():
    assert batch_status(outcomes(("accepted", None), ("rejected", "out_of_range"))) == (200, None)
    assert batch_status(outcomes(("duplicate", None))) == (200, None)
    assert batch_status(outcomes(("accepted", None), ("unavailable", "unavailable"))) == (503, "unavailable")
    assert batch_status(outcomes(("rejected", "consent_required"))) == (403, "consent_required")
    assert batch_status(outcomes(("rejected", "consent_required"), ("rejected", "out_of_range"))) == (
        422,
        "records_rejected",
    )


def test_each_record_carries_its_own_status_and_only_the_fields_it_has():
    accepted = Outcome(0, "r0", "accepted", record_key="k0", received_at="2026-11-25T12:00:00Z")
    conflict = Outcome(1, "r1", "rejected", "record_conflict", "the original stands", record_key="k1")
    invalid = Outcome(2, None, "rejected", "out_of_range", "too far", "activity.distance_km")
    assert [record_result(o) for o in (accepted, conflict, invalid)] == [
        {
            "index": 0,
            "record_id": "r0",
            "outcome": "accepted",
            "status": 201,
            "record_key": "k0",
            "received_at": "2026-11-25T12:00:00Z",
        },
        {
            "index": 1,
            "record_id": "r1",
            "outcome": "rejected",
            "status": 409,
            "code": "record_conflict",
            "message": "the original stands",
            "record_key": "k1",
        },
        {
            "index": 2,
            "record_id": None,
            "outcome": "rejected",
            "status": 422,
            "code": "out_of_range",
            "message": "too far",
            "field": "activity.distance_km",
        },
    ]
    assert list(record_result(invalid)) == ["index", "record_id", "outcome", "status", "code", "message", "field"]


def test_the_body_lists_results_then_summary_then_the_code_and_message_of_an_error():
    status, body = batch_answer(outcomes(("unavailable", "unavailable"), ("duplicate", None)))
    assert status == 503 and list(body) == ["results", "summary", "code", "message"]
    assert body["summary"] == {"accepted": 0, "duplicate": 1, "rejected": 0, "unavailable": 1}
    assert body["message"] == "some records are stored but not yet forwarded: replay the batch"
    status, body = batch_answer(outcomes(("rejected", "consent_required")))
    assert (status, body["code"], body["message"]) == (403, "consent_required", "no record of this batch was accepted")
    status, body = batch_answer(outcomes(("accepted", None)))
    assert status == 200 and list(body) == ["results", "summary"]
