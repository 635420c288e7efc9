"""The HTTP answer to a batch of records: outcomes and codes (ingest.domain) -> statuses and JSON.

The domain judges each record (accepted, duplicate, rejected with a code, unavailable) and names
the batch's code; which HTTP status each of those is belongs to the HTTP side, with
errors.CODES (every code and its status). docs/ingest-openapi.yaml is the contract.
"""

from ingest import domain
from ingest.domain import ACCEPTED, DUPLICATE, REJECTED, UNAVAILABLE
from ingest.errors import CODES

OUTCOME_STATUS = {ACCEPTED: 201, DUPLICATE: 200, UNAVAILABLE: 503}  # a rejected record: its code's status
OPTIONAL_FIELDS = ("code", "message", "field", "record_key", "received_at")  # in the JSON when set


def record_status(outcome: domain.Outcome) -> int:
    return OUTCOME_STATUS.get(outcome.outcome) or CODES[outcome.code]


def record_result(outcome: domain.Outcome) -> dict:
    out = {
        "index": outcome.index,
        "record_id": outcome.record_id,
        "outcome": outcome.outcome,
        "status": record_status(outcome),
    }
    for name in OPTIONAL_FIELDS:
        if getattr(outcome, name) is not None:
            out[name] = getattr(outcome, name)
    return out


def batch_status(outcomes) -> tuple[int, str | None]:
    """HTTP status and top-level code: 200 unless the batch's code (domain.batch_code) says otherwise."""
    code = domain.batch_code(outcomes)
    return (200 if code is None else CODES[code]), code


def batch_answer(outcomes) -> tuple[int, dict]:
    """(status, JSON body) of POST /v1/records for these outcomes, in the order given."""
    status, code = batch_status(outcomes)
    body = {
        "results": [record_result(o) for o in outcomes],
        "summary": {
            k: sum(1 for o in outcomes if o.outcome == k) for k in (ACCEPTED, DUPLICATE, REJECTED, UNAVAILABLE)
        },
    }
    if code:
        body["code"] = code
        body["message"] = (
            "no record of this batch was accepted"
            if status < 500
            else "some records are stored but not yet forwarded: replay the batch"
        )
    return status, body
