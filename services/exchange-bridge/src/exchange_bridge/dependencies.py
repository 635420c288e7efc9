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

    def _get(self, name: str, default: str | None = None) -> str:
        value = str(self.container.config.get(name) or "").strip()
        if value:
            return value
        return settings.require(name) if default is None else settings.setting(name, default)

    def setup(self):
        exchange_url = self._get("EXCHANGE_URL", "http://127.0.0.1:8200")
        self.signer = self._signer()
        self.exchange = ExchangeClient(exchange_url,
                                       attempts=self._int("BRIDGE_SUBMIT_ATTEMPTS", 5),
                                       backoff=float(self._get("BRIDGE_SUBMIT_BACKOFF_SECONDS", "0.2")))
        self.min_grams = self._int("BRIDGE_MIN_GRAMS", 1)
        self.claim_grace = self._int("BRIDGE_CLAIM_GRACE_SECONDS", 300)
        db = client(self._get("MONGO_URI"))[self._get("MONGO_DATABASE", DATABASE)]
        self.repo = Repository(db)
        self.repo.ensure_indexes()

    def _signer(self) -> Signer:
        return Signer(*(self._get(name) for name in KEY_SETTINGS))

    def _int(self, name: str, default: int) -> int:
        raw = self._get(name, str(default))
        try:
            return int(raw)
        except ValueError:
            raise SystemExit(f"{name} must be an integer, got {raw!r}")

    def get_dependency(self, worker_ctx):
        def make(account, dispatch) -> Bridge:
            return Bridge(account, self.repo, self.signer, self.exchange, dispatch,
                          min_grams=self.min_grams, claim_grace_seconds=self.claim_grace)
        return make
