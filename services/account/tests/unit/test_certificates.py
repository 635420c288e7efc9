"""account.certificates without servers: which reductions an account's certificate is asked
about (the ledger's FIFO, over the fake repository), what is checked in the bridge's answer, and
the bridge's refusals as the API's codes — those told apart by their text are produced here by
the bridge's own code (exchange_bridge.certificate_pdf.answer), so a change of that text fails
this test. Over RabbitMQ and the gRPC server: integration/test_account_grpc_certificate.py."""

import base64
import json
from pathlib import Path

import pytest

from account import certificates, ledger
from account.bridge_client import BridgeUnavailable, RemoteError
from account.certificates import CertificateUnverifiable, Certificates, NoRetiredUnits, TooManyReductions
from account.dependencies import Ledger
from account.ledger import InvalidRequest
from account.queries import Queries
from carbon_common import gm
from carbon_common.canonical import canonical_bytes, canonical_json
from carbon_dev import payloads

ROOT = Path(__file__).resolve().parents[4]
VECTOR = json.loads(
    (ROOT / "tools" / "certificate-verifier" / "examples" / "certificate-v2-test-vector.json").read_text()
)


class Bridge:
    """A BridgeClient stand-in: records calls, answers as the bridge does (or as told)."""

    def __init__(self, answer=None, error=None):
        self.calls, self.answer, self.error = [], answer, error

    def call(self, method, owner_pid, reduction_ids, with_pdf, timeout=None):
        self.calls.append((method, owner_pid, list(reduction_ids), with_pdf, timeout))
        if self.error:
            raise self.error
        return self.answer or answer_of({**VECTOR, "owner_pid": owner_pid})


def answer_of(certificate: dict) -> dict:
    return {
        "certificate": certificate,
        "pdf_base64": base64.b64encode(b"%PDF-1.4 x").decode(),
        "pdf_filename": "c.pdf",
        "json_filename": "c.json",
        "digest": gm.sm3_hex(canonical_bytes(certificate)),
        "bank_key_fingerprint": "b" * 64,
        "registry_key_fingerprint": "r" * 64,
    }


@pytest.fixture
def made(repo, ops):
    def make(bridge=None):
        return Certificates(Ledger(repo, ops, Queries(repo, ops.appender)), bridge)

    return make


def credit(ops, owner, *grams):
    reductions = [payloads.reduction(owner, n, g) for n, g in enumerate(grams)]
    for reduction in reductions:
        ops.credit(reduction)
    return [r["reduction_id"] for r in reductions]


def test_only_credits_consumed_whole_are_asked_about(ops, made):
    ids = credit(ops, "pid-ann", 100, 200, 300, 400)
    account = ledger.account_id_for("pid-ann")
    assert made().consumed_reduction_ids(account) == []
    ops.redeem(account, 299, "r-1", "tea")  # 100 whole, 199 of 200
    assert made().consumed_reduction_ids(account) == ids[:1]
    ops.redeem(account, 301, "r-2", "tea")  # the rest of 200, 300 whole
    bridge = Bridge()
    answer = made(bridge).of(account, [], "json", None)
    assert bridge.calls == [("certificate_pdf", "pid-ann", ids[:3], False, None)]  # json: no PDF rendered
    assert answer["certificate_json"] == canonical_json({**VECTOR, "owner_pid": "pid-ann"})
    assert answer["pdf"] == b"" and made(Bridge()).of(account, [], "json_pdf", 10.0)["pdf"] == b"%PDF-1.4 x"


def test_named_reductions_are_asked_once_each_and_the_deadline_keeps_a_margin(ops, made):
    ops.open_account("pid-bo")
    bridge = Bridge()
    made(bridge).of(ledger.account_id_for("pid-bo"), ["a", "b", "a"], "json", 5.0)
    assert bridge.calls == [
        ("certificate_pdf", "pid-bo", ["a", "b"], False, 5.0 - certificates.RESPONSE_MARGIN_SECONDS)
    ]


def test_refused_before_the_bridge(ops, made, monkeypatch):
    ops.open_account("pid-cy")
    account = ledger.account_id_for("pid-cy")
    bridge = Bridge()
    with pytest.raises(NoRetiredUnits):  # nothing redeemed: nothing can be at the exchange
        made(bridge).of(account, [], "json", None)
    with pytest.raises(InvalidRequest) as pool:
        made(bridge).of(ledger.account_id_for(ledger.POOL_OWNER), ["a"], "json", None)
    assert pool.value.code == "invalid_account"
    with pytest.raises(BridgeUnavailable) as unset:
        made(None).of(account, ["a"], "json", None)
    assert unset.value.code == "bridge_not_configured"
    ids = credit(ops, "pid-dee", 1, 1, 1, 1)
    ops.redeem(ledger.account_id_for("pid-dee"), 4, "r-1", "tea")
    monkeypatch.setattr(certificates, "MAX_GATHERED", 3)
    with pytest.raises(TooManyReductions):
        made(bridge).of(ledger.account_id_for("pid-dee"), [], "json", None)
    assert len(ids) == 4 and bridge.calls == []


def test_an_answer_that_does_not_match_its_digest_or_owner_is_a_fault(ops, made):
    ops.open_account("pid-eli")
    account = ledger.account_id_for("pid-eli")
    wrong_digest = {**answer_of({**VECTOR, "owner_pid": "pid-eli"}), "digest": "0" * 64}
    with pytest.raises(RuntimeError):
        made(Bridge(answer=wrong_digest)).of(account, ["a"], "json", None)
    with pytest.raises(RuntimeError):  # somebody else's certificate
        made(Bridge(answer=answer_of(VECTOR))).of(account, ["a"], "json", None)


class Registry:
    def __init__(self, key=None):
        self.key = key

    def public_key(self):
        if self.key is None:
            raise ConnectionError("registry down")
        return {"public_key": self.key}


def bridge_refusal(certificate: dict, registry) -> RemoteError:
    """What the account receives when the bridge's own answer() refuses (nameko sends the
    exception's type name and its str)."""
    from exchange_bridge import certificate_pdf

    with pytest.raises(Exception) as refused:
        certificate_pdf.answer(certificate, "01" * 64, registry)
    return RemoteError(type(refused.value).__name__, str(refused.value))


def test_the_bridges_refusals_become_the_apis_codes():
    empty = {**VECTOR, "batches": []}
    assert isinstance(certificates.refusal_of(bridge_refusal(empty, Registry("02" * 64))), NoRetiredUnits)
    wrong_keys = bridge_refusal(VECTOR, Registry("02" * 64))
    assert isinstance(certificates.refusal_of(wrong_keys), CertificateUnverifiable)
    down = certificates.refusal_of(bridge_refusal(VECTOR, Registry(None)))
    assert isinstance(down, BridgeUnavailable) and down.code == "registry_unavailable"
    for older in ("MethodNotFound", "IncorrectSignature"):  # a bridge from before certificate_pdf / with_pdf
        assert isinstance(certificates.refusal_of(RemoteError(older, "certificate_pdf")), BridgeUnavailable)
    other = RemoteError("KeyError", "'batches'")
    assert certificates.refusal_of(other) is other  # a fault: INTERNAL, logged by type only
    assert "batches" not in str(other)
