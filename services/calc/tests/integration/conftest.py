import pytest

from carbon_common.events import EventPublisher
from carbon_dev.testing import TEST_MONGO_URI, free_port

from calc.service import CalcService


@pytest.fixture
def calc_db(mongo_database):
    return mongo_database("calc")


@pytest.fixture
def calc_config(platform_amqp, calc_db):
    return dict(
        platform_amqp,
        MONGO_URI=TEST_MONGO_URI,
        MONGO_DATABASE=calc_db.name,
        WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
    )


@pytest.fixture
def start_calc(container_factory, calc_config):
    def start(**overrides):
        container = container_factory(CalcService, dict(calc_config, **overrides))
        container.start()
        return container

    return start


@pytest.fixture
def ingest(platform_amqp):
    """What the ingest service does: publish BehaviourReceived on ingest.events."""
    publisher = EventPublisher(platform_amqp["AMQP_URI"], "ingest")
    yield publisher
    publisher.close()
