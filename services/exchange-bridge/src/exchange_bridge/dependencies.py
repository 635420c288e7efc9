"""nameko dependency providing a ready Bridge (repository, signer, registry client, account RPC).

Settings come from the nameko config (config.yml maps the environment) or the environment; a
missing required setting stops the container at start-up, naming the variable.
"""

from nameko.extensions import DependencyProvider

from carbon_common import config as settings
from carbon_common.mongo import client

from exchange_bridge.bridge import DEFAULT_MAX_LEAVES, DEFAULT_MIN_GRAMS, Bridge
from exchange_bridge.registry_client import RegistryClient
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

DATABASE = "carbon_exchange_bridge"
REQUIRED = ("BRIDGE_PARTICIPANT", "BRIDGE_SM2_PRIVATE_KEY", "BRIDGE_SM2_PUBLIC_KEY")


def load_settings(config=None) -> dict:
    """Every setting of the bridge (the process exits naming a missing required one)."""
    values = {name: settings.require(name, config) for name in REQUIRED}
    values.update(
        REGISTRY_URL=settings.setting("REGISTRY_URL", "http://127.0.0.1:8200", config),
        BRIDGE_KEY_ID=settings.setting("BRIDGE_KEY_ID", "k1", config),
        BRIDGE_MIN_GRAMS=settings.int_setting("BRIDGE_MIN_GRAMS", DEFAULT_MIN_GRAMS, config),
        BRIDGE_MAX_LEAVES=settings.int_setting("BRIDGE_MAX_LEAVES", DEFAULT_MAX_LEAVES, config),
        BRIDGE_SUBMIT_ATTEMPTS=settings.int_setting("BRIDGE_SUBMIT_ATTEMPTS", 5, config),
        BRIDGE_SUBMIT_BACKOFF_SECONDS=settings.float_setting("BRIDGE_SUBMIT_BACKOFF_SECONDS", 0.2, config),
        BRIDGE_REGISTRY_TIMEOUT_SECONDS=settings.float_setting("BRIDGE_REGISTRY_TIMEOUT_SECONDS", 10.0, config),
    )
    if values["BRIDGE_MIN_GRAMS"] < 1 or values["BRIDGE_MAX_LEAVES"] < 1:
        raise SystemExit("BRIDGE_MIN_GRAMS and BRIDGE_MAX_LEAVES must be positive")
    return values


def registry_client(values: dict) -> RegistryClient:
    return RegistryClient(
        values["REGISTRY_URL"],
        values["BRIDGE_PARTICIPANT"],
        values["BRIDGE_KEY_ID"],
        values["BRIDGE_SM2_PRIVATE_KEY"],
        attempts=values["BRIDGE_SUBMIT_ATTEMPTS"],
        backoff=values["BRIDGE_SUBMIT_BACKOFF_SECONDS"],
        timeout=values["BRIDGE_REGISTRY_TIMEOUT_SECONDS"],
    )


class BridgeProvider(DependencyProvider):
    """`self.bridge(account_rpc, dispatch)` -> Bridge for this worker."""

    def setup(self):
        config = self.container.config
        self.values = load_settings(config)
        self.signer = Signer(
            self.values["BRIDGE_SM2_PRIVATE_KEY"], self.values["BRIDGE_SM2_PUBLIC_KEY"], self.values["BRIDGE_KEY_ID"]
        )
        self.registry = registry_client(self.values)
        db = client(settings.require("MONGO_URI", config))[settings.setting("MONGO_DATABASE", DATABASE, config)]
        self.repo = Repository(db)
        self.repo.ensure_indexes()

    def get_dependency(self, worker_ctx):
        def make(account, dispatch) -> Bridge:
            return Bridge(
                account,
                self.repo,
                self.registry,
                self.signer,
                dispatch,
                participant=self.values["BRIDGE_PARTICIPANT"],
                min_grams=self.values["BRIDGE_MIN_GRAMS"],
                max_leaves=self.values["BRIDGE_MAX_LEAVES"],
            )

        return make
