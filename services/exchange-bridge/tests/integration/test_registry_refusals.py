"""Every bad request gets its specific 4xx {code, message} and stores nothing: the count of
every registry collection is the same after it (table-driven)."""

import time
import uuid

import orjson
import pytest

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_common.mongo import client
from carbon_dev.testing import TEST_MONGO_URI
from exchange_bridge.batch_format import consent_leaf_hash
from exchange_bridge.registry import signing
from exchange_bridge.registry.errors import CODES
from exchange_bridge.registry.store import counts
from registry_support import Bank, RegistryApi, make_leaves, resign, submission

pytestmark = pytest.mark.integration


class Ctx:
    """One registry, two banks (one with a revoked second key), one issued batch."""

    def __init__(self, db):
        self.api = RegistryApi(db)
        self.bank, self.other = self.api.onboard(), self.api.onboard()
        private, public = gm.generate_sm2_keypair()
        self.api.admin(
            "POST", f"/v1/admin/participants/{self.bank.participant}/keys", {"key_id": "old", "public_key": public}
        )
        self.api.admin("POST", f"/v1/admin/participants/{self.bank.participant}/keys/old/revoke", {"reason": "rotated"})
        self.revoked = Bank(self.bank.participant, "old", private, public)
        self.issued = self.api.submit(self.bank, submission(self.bank, make_leaves(3, grams=400_000))).json
        assert self.issued["status"] == "issued"

    def fresh(self, n=3, **kwargs) -> dict:
        """A valid body that follows the issued batch of the group."""
        kwargs.setdefault("carried_in", self.issued["carried_out_grams"])
        kwargs.setdefault("carried_from", self.issued["batch_id"])
        return submission(self.bank, make_leaves(n, grams=400_000), **kwargs)

    def edited(self, edit) -> dict:
        body = self.fresh()
        edit(body)
        return body

    def submit(self, body):
        return self.api.submit(self.bank, body)

    def signed_as(self, bank, path="/v1/batches", body=None, **sign):
        return self.api.call(bank, "POST", path, body if body is not None else self.fresh(), **sign)


def leaf_edit(**fields):
    def edit(body):
        body["leaves"][0].update(fields)

    return edit


def batch_edit(**fields):
    def edit(body):
        body["batch"].update(fields)

    return edit


CASES = {
    # envelope
    "malformed_json": lambda c: c.api.call(c.bank, "POST", "/v1/batches", raw=b'{"batch": '),
    "invalid_request/not an object": lambda c: c.submit([1, 2]),
    "invalid_request/no signature": lambda c: c.submit({k: v for k, v in c.fresh().items() if k != "signature"}),
    "invalid_request/both consent forms": lambda c: c.submit(dict(c.fresh(), consent_leaves=[])),
    "invalid_request/extra batch field": lambda c: c.submit(c.edited(batch_edit(note="x"))),
    "invalid_request/carried_in of a tonne": lambda c: c.submit(c.edited(batch_edit(carried_in_grams=1_000_000))),
    "not_found/route": lambda c: c.api.call(c.bank, "GET", "/v1/nothing"),
    "method_not_allowed": lambda c: c.api.call(c.bank, "DELETE", "/v1/batches"),
    # authentication
    "missing_auth_header": lambda c: c.api.client.post("/v1/batches", json=c.fresh()),
    "malformed_auth_header": lambda c: c.signed_as(c.bank, nonce="short"),
    "timestamp_out_of_window": lambda c: c.signed_as(c.bank, timestamp=int(time.time()) - 301),
    "unknown_participant": lambda c: c.signed_as(Bank("bank-nobody", "k1", c.bank.private, c.bank.public)),
    "unknown_key": lambda c: c.signed_as(Bank(c.bank.participant, "k9", c.bank.private, c.bank.public)),
    "key_revoked": lambda c: c.signed_as(c.revoked),
    "signature_invalid": lambda c: c.signed_as(Bank(c.bank.participant, "k1", c.other.private, c.bank.public)),
    "nonce_reused": lambda c: replay(c),
    # the batch itself
    "unsupported_format": lambda c: c.submit(c.edited(batch_edit(format="carbon-reduction-batch/0"))),
    "unknown_methodology": lambda c: c.submit(c.edited(batch_edit(methodology_id="rocket_ride"))),
    "record_count_mismatch": lambda c: c.submit(c.edited(batch_edit(record_count=4))),
    "invalid_leaf/missing field": lambda c: c.submit(c.edited(lambda b: b["leaves"][0].pop("owner_pid"))),
    "invalid_leaf/zero grams": lambda c: c.submit(c.edited(leaf_edit(grams=0))),
    "invalid_leaf/float grams": lambda c: c.submit(c.edited(leaf_edit(grams=1.5))),
    "invalid_leaf/vintage": lambda c: c.submit(c.edited(leaf_edit(occurred_at="2025-12-31T15:00:00Z"))),
    "invalid_leaf/no offset": lambda c: c.submit(c.edited(leaf_edit(occurred_at="2026-05-01T10:00:00"))),
    "mixed_group": lambda c: c.submit(c.edited(leaf_edit(methodology_id="bus_ride"))),
    "duplicate_leaf": lambda c: c.submit(c.edited(lambda b: b["leaves"].__setitem__(1, dict(b["leaves"][0])))),
    "quantity_mismatch": lambda c: c.submit(c.edited(leaf_edit(grams=400_001))),
    "merkle_root_mismatch": lambda c: c.submit(c.edited(leaf_edit(owner_pid="pid-mallory"))),
    "consent_mismatch/missing": lambda c: c.submit(c.edited(lambda b: b["consents"].pop())),
    "consent_mismatch/number as id": lambda c: c.submit(c.edited(lambda b: b["consents"][0].update(reduction_id=5))),
    "consent_mismatch/hash count": lambda c: c.submit(consent_hashes(c.fresh(), drop=1)),
    "consent_root_mismatch": lambda c: c.submit(c.edited(lambda b: b["consents"][0].update(consent_id="forged"))),
    "batch_id_mismatch": lambda c: c.submit(c.edited(batch_edit(batch_id="ab" * 32))),
    "period_mismatch": lambda c: c.submit(c.edited(batch_edit(period="2026-01-01T00:00:00Z/2026-01-02T00:00:00Z"))),
    "batch_key_not_owned": lambda c: c.submit(dict(c.fresh(), key_id="k9")),
    "key_revoked/batch key": lambda c: c.submit(dict(c.fresh(), key_id="old")),
    "batch_signature_invalid": lambda c: c.submit(resign(c.fresh(), c.other)),
    # against what the registry holds
    "carried_mismatch/first in group": lambda c: c.submit(c.fresh(carried_in=0, carried_from="")),
    "carried_mismatch/wrong grams": lambda c: c.submit(c.fresh(carried_in=1)),
    "duplicate_reduction": lambda c: c.submit(with_issued_leaf(c)),
    "batch_conflict": lambda c: c.submit(conflicting(c)),
    # operations
    "unknown_holder": lambda c: operate(c, "transfers", to_holder="bank-nobody"),
    "invalid_request/transfer to self": lambda c: operate(c, "transfers", to_holder=c.bank.participant),
    "invalid_request/zero units": lambda c: operate(c, "transfers", units=0),
    "invalid_request/unknown field": lambda c: operate(c, "transfers", note="x"),
    "batch_not_issued": lambda c: operate(c, "transfers", batch_id="cd" * 32),
    "insufficient_units": lambda c: operate(c, "transfers", units=2),
    "invalid_request/retire without beneficiary": lambda c: operate(c, "retirements", beneficiary=""),
    "unknown_holder/holdings": lambda c: c.api.call(c.bank, "GET", "/v1/holdings/bank-nobody"),
    "not_found/batch": lambda c: c.api.call(c.bank, "GET", f"/v1/batches/{'ef' * 32}"),
    # admin
    "admin_unauthorized": lambda c: c.api.client.post(
        "/v1/admin/participants", json={"participant_id": "x1", "name": "x"}
    ),
    "participant_conflict": lambda c: c.api.admin(
        "POST", "/v1/admin/participants", {"participant_id": c.bank.participant, "name": "another"}
    ),
    "key_conflict": lambda c: c.api.admin(
        "POST", f"/v1/admin/participants/{c.bank.participant}/keys", {"key_id": "k1", "public_key": c.other.public}
    ),
    "key_conflict/rotation reusing an id": lambda c: c.api.call(
        c.bank, "POST", "/v1/keys", {"key_id": "old", "public_key": c.other.public}
    ),
    "invalid_request/bad public key": lambda c: c.api.admin(
        "POST", f"/v1/admin/participants/{c.bank.participant}/keys", {"key_id": "k5", "public_key": "04" + "ab" * 64}
    ),
    "invalid_request/fault spec": lambda c: c.api.admin("PUT", "/v1/admin/faults", {"rates": "explode=1"}),
}


def replay(c: Ctx):
    body = canonical_bytes({"key_id": "k-new", "public_key": gm.generate_sm2_keypair()[1]})
    headers = signing.sign_headers(c.bank.participant, "k1", c.bank.private, "POST", "/v1/keys", body)
    assert c.api.client.post("/v1/keys", data=body, headers=headers).status_code == 200
    c.before = counts(c.api.db)  # the first delivery stored; the replay must store nothing
    return c.api.client.post("/v1/keys", data=body, headers=headers)


def consent_hashes(body: dict, drop: int) -> dict:
    hashes = [consent_leaf_hash(p["reduction_id"], p["consent_id"]) for p in body.pop("consents")]
    return dict(body, consent_leaves=hashes[drop:])


def with_issued_leaf(c: Ctx) -> dict:
    stored = c.api.db.batches.find_one({"_id": c.issued["batch_id"]})
    leaves = make_leaves(2, grams=400_000) + [orjson.loads(stored["leaves"])[0]]
    return submission(c.bank, leaves, carried_in=c.issued["carried_out_grams"], carried_from=c.issued["batch_id"])


def conflicting(c: Ctx) -> dict:
    stored = c.api.db.batches.find_one({"_id": c.issued["batch_id"]})
    return submission(c.bank, orjson.loads(stored["leaves"]))  # same id, another created_at


def operate(c: Ctx, path: str, **overrides):
    base = {
        "transfers": {"transfer_id": "t-x", "units": 1, "to_holder": c.other.participant},
        "retirements": {"retirement_id": "r-x", "units": 1, "beneficiary": "A", "reason": "offset"},
    }[path]
    body = {**base, "batch_id": c.issued["batch_id"], **overrides}
    return c.api.call(c.bank, "POST", f"/v1/{path}", body)


@pytest.fixture(scope="module")
def ctx():
    name = f"test_registry_refusals_{uuid.uuid4().hex[:10]}"
    context = Ctx(client(TEST_MONGO_URI)[name])
    yield context
    client(TEST_MONGO_URI).drop_database(name)


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_its_code_and_nothing_stored(ctx, case):
    expected = case.split("/")[0]
    ctx.before = counts(ctx.api.db)
    response = CASES[case](ctx)
    assert response.status_code == CODES[expected], (case, response.status_code, response.json)
    assert response.json["code"] == expected, response.json
    assert isinstance(response.json["message"], str) and response.json["message"]
    assert counts(ctx.api.db) == ctx.before, case


def test_every_code_is_exercised_somewhere():
    exercised = {case.split("/")[0] for case in CASES}
    elsewhere = {
        "body_too_large",
        "admin_disabled",
        "operation_conflict",
        "contention",
        "injected_fault",
        "internal_error",
    }  # other files
    assert set(CODES) - exercised - elsewhere == set()
