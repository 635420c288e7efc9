"""nameko DependencyProvider: one ledger (appender cache, locks, repository) per process."""
from dataclasses import dataclass


from carbon_common.config import setting
from carbon_common.mongo import MongoDatabase

from account.operations import LedgerOperations
from account.queries import Queries
from account.repository import Repository
from account.tiers import DEFAULT_THRESHOLDS, Tiers

DATABASE = "carbon_account"


@dataclass
class Ledger:
    repo: Repository
    ops: LedgerOperations
    queries: Queries


def build_ledger(database, tier_spec: str) -> Ledger:
    repo = Repository(database)
    repo.ensure_indexes()
    ops = LedgerOperations(repo, Tiers(tier_spec))
    ops.pool_account()  # the bank pool account exists before the first redemption
    return Ledger(repo, ops, Queries(repo, ops.appender))


class LedgerProvider(MongoDatabase):
    def __init__(self):
        super().__init__(DATABASE)

    def setup(self):
        super().setup()
        spec = self.container.config.get("TIER_THRESHOLDS") or setting("TIER_THRESHOLDS", DEFAULT_THRESHOLDS)
        self.ledger = build_ledger(self.database, spec)

    def get_dependency(self, worker_ctx):
        return self.ledger
