"""One Catalogue per process, next to the process's ledger (account.dependencies.Ledger).

The gRPC server's servicer and the nameko service both build it on first use from the ledger
they already hold, so the catalogue shares the ledger's appender (its caches and locks)."""

import threading
from datetime import timedelta

from nameko.extensions import DependencyProvider

from carbon_common.config import int_setting

from account.catalogue.catalogue import GRACE, Catalogue
from account.catalogue.store import CatalogueStore
from account.first_use import OnFirstUse, container_ledger

_lock = threading.Lock()


def build_catalogue(ledger, config=None) -> Catalogue:
    """ledger: account.dependencies.Ledger. CATALOGUE_CLAIM_GRACE_SECONDS (600): how long a
    claim counts without its redemption (docs/catalogue.md)."""
    store = CatalogueStore(ledger.repo.db)
    store.ensure_indexes()
    grace = timedelta(seconds=int_setting("CATALOGUE_CLAIM_GRACE_SECONDS", int(GRACE.total_seconds()), config))
    return Catalogue(ledger.ops, store, grace=grace)


def catalogue_of(ledger, config=None) -> Catalogue:
    """The process's Catalogue for this ledger (built once)."""
    found = getattr(ledger, "_catalogue", None)
    if found is None:
        with _lock:
            found = getattr(ledger, "_catalogue", None)
            if found is None:
                found = build_catalogue(ledger, config)
                ledger._catalogue = found
    return found


class CatalogueProvider(DependencyProvider):
    """nameko: the Catalogue of the service's LedgerProvider ledger (built on first use)."""

    def get_dependency(self, worker_ctx):
        return OnFirstUse(lambda: catalogue_of(container_ledger(self.container), self.container.config))
