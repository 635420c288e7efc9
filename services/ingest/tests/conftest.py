"""Fixtures for the ingest tests: an app on a throwaway database and vhost, signed clients."""

import pytest

from ingest_testkit import Platform, settings_for


@pytest.fixture
def make_app(mongo_database, platform_amqp):
    from ingest.app import create_app

    db = mongo_database("ingest")

    def make(**overrides):
        return create_app({**settings_for(db, platform_amqp["AMQP_URI"]), **overrides})

    return make


@pytest.fixture
def platform(make_app):
    app = make_app()
    return Platform(app, app.test_client())


@pytest.fixture
def metro_partner(platform):
    return platform.register("metro-sz")


@pytest.fixture
def bank(platform):
    return platform.register("bank-app", kind="bank_app")


@pytest.fixture(scope="module")
def module_amqp(request, vhost_pipeline):
    """A throwaway vhost with the platform topology shared by one test module (saves set-up)."""
    from urllib.parse import urlparse

    from carbon_common import topology

    uri = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost:
        amqp_uri = f"{uri.scheme}://{uri.netloc}/{vhost}"
        topology.declare(amqp_uri)
        yield amqp_uri


@pytest.fixture(scope="module")
def module_platform(module_amqp):
    import uuid

    from carbon_common.mongo import client
    from carbon_dev.testing import TEST_MONGO_URI

    from ingest.app import create_app

    db = client(TEST_MONGO_URI)[f"test_ingest_{uuid.uuid4().hex[:10]}"]
    app = create_app(settings_for(db, module_amqp))
    yield Platform(app, app.test_client())
    client(TEST_MONGO_URI).drop_database(db.name)


@pytest.fixture(scope="module")
def fuzz_scene(module_platform):
    from datetime import datetime, timedelta, timezone

    bank = module_platform.register("fuzz-bank", kind="bank_app")
    partner = module_platform.register("fuzz-metro", scenarios=["metro_ride", "walking", "ev_charging"])
    expires = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = bank.send(
        "POST",
        "/v1/consents",
        {
            "consent_ref": "fuzz",
            "customer_number": "6222000011112222",
            "partner_id": "fuzz-metro",
            "scenarios": ["metro_ride", "walking", "ev_charging"],
            "purpose": "fuzzing",
            "expires_at": expires,
        },
    )
    assert response.status_code == 201
    return module_platform, partner, bank
