"""The whole platform as its users run it: every process under supervisord (instance "e2e",
its own vhost, databases and ports +1000) on the real RabbitMQ, FerretDB and Jaeger."""

import pytest

from carbon_dev.instance import Instance


@pytest.fixture(scope="session")
def platform():
    instance = Instance("e2e", port_offset=1000)
    instance.reset()  # a previous run's processes, queues and data
    instance.start(timeout=180, progress=lambda line: None)
    yield instance
    instance.stop()
