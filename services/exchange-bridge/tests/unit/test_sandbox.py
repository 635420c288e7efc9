"""The sandbox enforces SM2 signatures, issues serials idempotently and injects faults."""

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge.sandbox import create_app


def signed(batch, private, public):
    return {"batch": batch, "public_key": public, "signature": gm.sm2_sign(private, canonical_bytes(batch)).hex()}


def test_sandbox_issues_serials_only_for_signed_batches():
    private, public = gm.generate_sm2_keypair()
    client = create_app(fail_rate=0).test_client()
    batch = {"batch_id": "b-1", "quantity": 2_500_000, "merkle_root": "ab"}
    body = signed(batch, private, public)
    first = client.post("/v1/batches", json=body)
    assert first.status_code == 200 and first.json["serial_start"] != first.json["serial_end"]
    assert client.post("/v1/batches", json=body).json == first.json  # idempotent
    assert client.post("/v1/batches", json=dict(body, batch=dict(batch, quantity=3_000_000))).status_code == 401
    assert (
        client.post("/v1/batches", json=signed(dict(batch, quantity=1.5), private, public)).json["code"]
        == "invalid_batch"
    )
    assert len(client.get("/v1/batches").json["batches"]) == 1


def test_fail_first_answers_503_then_registers():
    private, public = gm.generate_sm2_keypair()
    client = create_app(fail_rate=0, fail_first=1).test_client()
    body = signed({"batch_id": "b-2", "quantity": 10}, private, public)
    assert client.post("/v1/batches", json=body).status_code == 503
    assert client.post("/v1/batches", json=body).status_code == 200
