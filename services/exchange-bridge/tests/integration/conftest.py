import os
import subprocess
import sys

import pytest
import requests

from carbon_common import gm
from carbon_dev.testing import TEST_MONGO_URI, free_port, wait_until


@pytest.fixture
def keys():
    return gm.generate_sm2_keypair()


@pytest.fixture
def sandbox_factory():
    """Start the real sandbox process: make(fail_first=N) -> its base URL."""
    started = []

    def make(fail_first: int = 0) -> str:
        address = f"127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "SANDBOX_ADDRESS": address,
            "SANDBOX_FAIL_FIRST": str(fail_first),
            "SANDBOX_FAIL_RATE": "0",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "exchange_bridge.sandbox"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        url = f"http://{address}"

        def up():
            try:
                return requests.get(f"{url}/health", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, 20, message="sandbox up")
        return url

    yield make
    for proc in started:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def bridge_config(platform_amqp, mongo_database, keys):
    def make(exchange_url: str) -> dict:
        private, public = keys
        return dict(
            platform_amqp,
            MONGO_URI=TEST_MONGO_URI,
            MONGO_DATABASE=mongo_database("bridge").name,
            WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
            EXCHANGE_URL=exchange_url,
            BRIDGE_SM2_PRIVATE_KEY=private,
            BRIDGE_SM2_PUBLIC_KEY=public,
            BRIDGE_SUBMIT_BACKOFF_SECONDS="0.05",
        )

    return make
