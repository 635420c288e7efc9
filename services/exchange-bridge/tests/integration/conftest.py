import sys
import uuid
from pathlib import Path

import pytest

from carbon_common import gm
from carbon_common.mongo import client as mongo_client
from carbon_dev.testing import TEST_MONGO_URI, free_port

# the unit suite's fakes (account, dispatch) serve the integration tests that need no account
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))


@pytest.fixture
def keys():
    return gm.generate_sm2_keypair()


@pytest.fixture
def registry_process():
    """Start the real registry (python -m exchange_bridge.registry) on a free port:
    start(faults="", seed=0, **env) -> (base URL, its database: for audits only)."""
    from registry_support import start_registry

    started, names = [], []

    def start(faults: str = "", seed: int = 0, **env):
        names.append(f"test_bridge_registry_{uuid.uuid4().hex[:10]}")
        env.setdefault("REGISTRY_FAULT_MAX_LATENCY", "0.005")
        url, proc = start_registry(names[-1], faults, seed, **env)
        started.append(proc)
        return url, mongo_client(TEST_MONGO_URI)[names[-1]]

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)
    for name in names:
        mongo_client(TEST_MONGO_URI).drop_database(name)


@pytest.fixture
def bridge_config(platform_amqp, mongo_database):
    """The bridge service's config for a registry URL and an onboarded bank (registry_support.Bank)."""

    def make(registry_url: str, bank, **extra) -> dict:
        return dict(
            platform_amqp,
            MONGO_URI=TEST_MONGO_URI,
            MONGO_DATABASE=mongo_database("bridge").name,
            WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
            REGISTRY_URL=registry_url,
            BRIDGE_PARTICIPANT=bank.participant,
            BRIDGE_KEY_ID=bank.key_id,
            BRIDGE_SM2_PRIVATE_KEY=bank.private,
            BRIDGE_SM2_PUBLIC_KEY=bank.public,
            BRIDGE_SUBMIT_BACKOFF_SECONDS="0.05",
            **extra,
        )

    return make
