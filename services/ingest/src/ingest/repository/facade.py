"""`Repository`: the one object the services, the relay and the app hold.

It is the four aggregates' stores under one name (each a class over its own collections, in its
own module, sharing nothing but the database), so a service calls `repo.get_partner(...)` or
`repo.store_receipts(...)` without knowing which module stores what, and a fake can stand in
for all of it (tests/ingest_fakes.py). What concerns the database as a whole lives here: the
indexes of every aggregate, created once, and the readiness ping.
"""

import pymongo
from pymongo.errors import PyMongoError

from ingest.repository.consents import ConsentStore
from ingest.repository.partners import PartnerStore
from ingest.repository.receipts import ReceiptStore
from ingest.repository.request_guards import RequestGuards

AGGREGATES = (PartnerStore, RequestGuards, ConsentStore, ReceiptStore)


class Repository(PartnerStore, RequestGuards, ConsentStore, ReceiptStore):
    """Every aggregate's methods on one object. The stores keep their state in attributes of
    their own (a unit test checks that no two of them use one name)."""

    def __init__(self, db):
        self.db = db
        for store in AGGREGATES:
            store.__init__(self, db)
        self._indexed = False

    def ensure_indexes_once(self) -> bool:
        """True once the indexes exist. A worker booting during a store outage must not die (its
        master would exit and take ingest down): it serves 503 until this succeeds."""
        if not self._indexed:
            try:
                with pymongo.timeout(2):
                    self.ensure_indexes()
            except PyMongoError:
                return False
        return True

    def ensure_indexes(self) -> None:
        self.create_indexes()
        self._indexed = True

    def create_indexes(self) -> None:
        """Every aggregate's indexes (each store's own `create_indexes`)."""
        for store in AGGREGATES:
            store.create_indexes(self)

    def ping(self) -> None:
        with pymongo.timeout(2):  # readiness answers within the probe's timeout
            self.db.command("ping")
