"""registry_client over a scripted transport: typed errors, retries, and a status query before
any re-submission whose outcome is unknown."""

import json

import pytest
import requests

from carbon_common import gm
from exchange_bridge.registry import signing
from exchange_bridge.registry_client import RegistryClient, Rejected, Unknown

BATCH_ID = "ab" * 32
SUBMISSION = {"batch": {"batch_id": BATCH_ID}, "leaves": [], "consent_leaves": [], "signature": "00", "key_id": "k1"}
ISSUED = {"batch_id": BATCH_ID, "status": "issued", "units": 1}
PRIVATE, PUBLIC = gm.generate_sm2_keypair()


class Answer:
    def __init__(self, status: int, body: dict | None = None):
        self.status_code, self.body = status, body or {}
        self.text = json.dumps(self.body)

    def json(self):
        return self.body


class ScriptedSession:
    """Answers requests from a script of Answer objects or exceptions to raise."""

    def __init__(self, *script):
        self.script, self.sent = list(script), []

    def request(self, method, url, data=None, headers=None, timeout=None):
        self.sent.append((method, url.split("8200", 1)[1], headers))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def client(*script, attempts=4) -> tuple[RegistryClient, ScriptedSession]:
    session = ScriptedSession(*script)
    return RegistryClient("http://registry:8200", "bank-a", "k1", PRIVATE, attempts, 0.0, 1.0, session), session


def test_a_lost_answer_is_looked_up_not_sent_again():
    registry, session = client(requests.ConnectionError("dropped"), Answer(200, ISSUED))
    assert registry.submit(SUBMISSION) == ISSUED
    assert [(m, p) for m, p, _ in session.sent] == [("POST", "/v1/batches"), ("GET", f"/v1/batches/{BATCH_ID}")]


def test_a_5xx_then_unknown_to_the_registry_is_sent_again():
    registry, session = client(Answer(503), Answer(404, {"code": "not_found"}), Answer(201, ISSUED))
    assert registry.submit(SUBMISSION) == ISSUED
    assert [m for m, _, _ in session.sent] == ["POST", "GET", "POST"]
    nonces = {headers[signing.H_NONCE] for _, _, headers in session.sent}
    assert len(nonces) == 3  # every attempt is signed afresh


def test_refusals_and_rejections_are_typed():
    registry, _ = client(Answer(409, {"code": "carried_mismatch", "message": "continue from x"}))
    with pytest.raises(Rejected) as refused:
        registry.submit(SUBMISSION)
    assert (refused.value.code, refused.value.reason, refused.value.status) == (
        "carried_mismatch",
        "continue from x",
        409,
    )
    registry, _ = client(Answer(201, dict(ISSUED, status="rejected", reason="injected")))
    with pytest.raises(Rejected) as rejected:
        registry.submit(SUBMISSION)
    assert (rejected.value.code, rejected.value.reason) == ("rejected", "injected")
    registry, _ = client(requests.Timeout(), Answer(200, dict(ISSUED, status="rejected", reason="injected")))
    with pytest.raises(Rejected):
        registry.submit(SUBMISSION)  # found rejected on the status query


def test_no_outcome_after_every_attempt_is_unknown():
    registry, session = client(requests.Timeout(), Answer(502), Answer(404, {}), Answer(500), attempts=3)
    with pytest.raises(Unknown):
        registry.submit(SUBMISSION)
    # the status query failed on the 2nd attempt, so nothing was re-sent before the 3rd
    assert [m for m, _, _ in session.sent] == ["POST", "GET", "GET", "POST"]


def test_status_of_an_unknown_batch_is_none_and_operations_retry():
    registry, _ = client(Answer(404, {"code": "not_found", "message": "no batch"}))
    assert registry.status(BATCH_ID) is None
    registry, session = client(Answer(503), requests.ConnectionError(), Answer(201, {"op_id": "transfer:bank-a:t1"}))
    assert registry.transfer("t1", BATCH_ID, 2, "bank-b") == {"op_id": "transfer:bank-a:t1"}
    assert len(session.sent) == 3
    registry, _ = client(Answer(409, {"code": "insufficient_units", "message": "largest 1"}))
    with pytest.raises(Rejected):
        registry.retire("r1", BATCH_ID, 2, "Alice", "offset")


def test_requests_are_signed_over_the_exact_bytes_sent():
    captured = {}

    class Capture(ScriptedSession):
        def request(self, method, url, data=None, headers=None, timeout=None):
            captured.update(method=method, target=url.split("8200", 1)[1], data=data, headers=headers)
            return Answer(200, {"transactions": [], "after": 0})

    registry = RegistryClient("http://registry:8200", "bank-a", "k1", PRIVATE, session=Capture())
    registry.transactions(after=5, limit=10)
    h = captured["headers"]
    assert captured["target"] == "/v1/transactions?after=5&limit=10"
    message = signing.string_to_sign("GET", captured["target"], h[signing.H_TIMESTAMP], h[signing.H_NONCE], b"")
    assert signing.verify(PUBLIC, message, h[signing.H_SIGNATURE])
