"""nameko DependencyProvider: one ledger (appender cache, locks, repository) per process, and
its outbox relay loop, woken by the writer."""

import logging
from dataclasses import dataclass

import eventlet
from eventlet.event import Event

from carbon_common.config import setting
from carbon_common.events import BatchPublisher
from carbon_common.mongo import MongoDatabase

from account.operations import LedgerOperations
from account.outbox import Relay
from account.queries import Queries
from account.repository import Repository
from account.tiers import DEFAULT_THRESHOLDS, Tiers

DATABASE = "carbon_account"
RELAY_POLL_SECONDS = 2.0  # markers written by other processes (the gRPC server) are found this late
log = logging.getLogger(__name__)


@dataclass
class Ledger:
    repo: Repository
    ops: LedgerOperations
    queries: Queries


def build_ledger(database, tier_spec: str, on_outbox=lambda: None) -> Ledger:
    repo = Repository(database)
    repo.ensure_indexes()
    ops = LedgerOperations(repo, Tiers(tier_spec), on_outbox)
    ops.pool_account()  # the bank pool account exists before the first redemption
    return Ledger(repo, ops, Queries(repo, ops.appender))


class LedgerProvider(MongoDatabase):
    provides_ledger = True  # how the catalogue and enterprise providers find it (first_use.container_ledger)

    def __init__(self):
        super().__init__(DATABASE)
        self._wake = Event()
        self._stopping = False
        self._relay_thread = None

    def setup(self):
        super().setup()
        spec = setting("TIER_THRESHOLDS", DEFAULT_THRESHOLDS, self.container.config)
        self.ledger = build_ledger(self.database, spec, self.wake_relay)
        self.publisher = BatchPublisher(self.container.config["AMQP_URI"], self.container.service_name)
        self.relay = Relay(self.ledger.repo, self.ledger.ops, self.publisher)

    def start(self):
        self._relay_thread = self.container.spawn_managed_thread(self._relay_loop, identifier="outbox-relay")

    def stop(self):
        self._stopping = True
        self.wake_relay()
        if self._relay_thread is not None:
            self._relay_thread.wait()
        self.publisher.close()

    def kill(self):
        self._stopping = True
        if self._relay_thread is not None:
            self._relay_thread.kill()

    def wake_relay(self) -> None:
        if not self._wake.ready():
            self._wake.send(True)

    def _relay_loop(self):
        while not self._stopping:
            with eventlet.Timeout(RELAY_POLL_SECONDS, False):
                self._wake.wait()
            if self._wake.ready():
                self._wake.reset()
            try:
                while self.relay.relay_once() and not self._stopping:
                    pass
                if self.relay.settle_due_once():  # settled redemptions: announce their transfers
                    while self.relay.relay_once() and not self._stopping:
                        pass
            except Exception:  # noqa: BLE001 - broker/store down: the markers stay, try again later
                log.exception("outbox relay failed; will retry")
                eventlet.sleep(1.0)

    def get_dependency(self, worker_ctx):
        return self.ledger
