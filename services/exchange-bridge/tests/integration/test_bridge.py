"""The bridge runs as a real nameko service and the sandbox enforces SM2 signatures."""
from nameko.standalone.rpc import ServiceRpcProxy

from carbon_common import gm
from exchange_bridge.sandbox import canonical, create_app
from exchange_bridge.service import ExchangeBridgeService


def test_bridge_answers_ping(container_factory, platform_amqp, mongo_database):
    db = mongo_database("bridge")
    config = dict(platform_amqp, MONGO_URI="mongodb://127.0.0.1:27017/", MONGO_DATABASE=db.name)
    container_factory(ExchangeBridgeService, config).start()
    with ServiceRpcProxy("exchange_bridge", config) as bridge:
        assert bridge.ping() == {"service": "exchange_bridge", "status": "ok"}


def test_sandbox_issues_serials_only_for_signed_batches():
    private, public = gm.generate_sm2_keypair()
    client = create_app(fail_rate=0).test_client()
    batch = {"batch_id": "b-1", "grams": 2_500_000, "methodology": "metro_ride@1"}
    signed = {"batch": batch, "public_key": public, "signature": gm.sm2_sign(private, canonical(batch)).hex()}
    first = client.post("/v1/batches", json=signed)
    assert first.status_code == 200 and first.json["serial_start"] != first.json["serial_end"]
    assert client.post("/v1/batches", json=signed).json == first.json  # idempotent
    tampered = dict(signed, batch=dict(batch, grams=3_000_000))
    assert client.post("/v1/batches", json=tampered).status_code == 401
