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
