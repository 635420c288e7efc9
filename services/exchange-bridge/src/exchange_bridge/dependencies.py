"""nameko dependency providing a ready Bridge (repository, signer, exchange client, account RPC).

Settings come from the nameko config (config.yml maps the environment) or the environment; a
missing SM2 key stops the container at start-up, naming the variable.
"""

import logging
from nameko.extensions import DependencyProvider

from carbon_common import config as settings
from carbon_common.mongo import client

from exchange_bridge.bridge import Bridge
from exchange_bridge.exchange import ExchangeClient, Signer
from exchange_bridge.repository import Repository

log = logging.getLogger(__name__)
DATABASE = "carbon_exchange_bridge"
KEY_SETTINGS = ("BRIDGE_SM2_PRIVATE_KEY", "BRIDGE_SM2_PUBLIC_KEY")


class BridgeProvider(DependencyProvider):
    """`self.bridge(account_rpc, dispatch)` -> Bridge for this worker."""

    def setup(self):
        config = self.container.config
        self.signer = Signer(*(settings.require(name, config) for name in KEY_SETTINGS))
        self.exchange = ExchangeClient(
            settings.setting("EXCHANGE_URL", "http://127.0.0.1:8200", config),
            attempts=settings.int_setting("BRIDGE_SUBMIT_ATTEMPTS", 5, config),
            backoff=settings.float_setting("BRIDGE_SUBMIT_BACKOFF_SECONDS", 0.2, config),
        )
        self.min_grams = settings.int_setting("BRIDGE_MIN_GRAMS", 1, config)
        self.claim_grace = settings.int_setting("BRIDGE_CLAIM_GRACE_SECONDS", 300, config)
        db = client(settings.require("MONGO_URI", config))[settings.setting("MONGO_DATABASE", DATABASE, config)]
        self.repo = Repository(db)
        self.repo.ensure_indexes()

    def get_dependency(self, worker_ctx):
        def make(account, dispatch) -> Bridge:
            return Bridge(
                account,
                self.repo,
                self.signer,
                self.exchange,
                dispatch,
                min_grams=self.min_grams,
                claim_grace_seconds=self.claim_grace,
            )

        return make
