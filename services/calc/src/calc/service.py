"""The calc nameko service: events in/out, RPC for previews and methodology listings."""

import logging

from nameko.rpc import rpc

from carbon_common.batching import batch_event_handler
from carbon_common.events import BatchDispatcher
from carbon_common.handlers import event_handler
from carbon_common.mongo import MongoDatabase
from carbon_common import ops  # the module: `nameko run` would take an imported mixin class for a service
from carbon_common.tracing import Tracing

from calc import queries
from calc.dependencies import MethodologyCatalog, Repository
from calc.domain import InvalidRecord
from calc.processing import handle_behaviours

log = logging.getLogger(__name__)
DATABASE = "carbon_calc"


class UnknownVersion(LookupError):
    """No methodology / factor set with that id and version."""


def _found(document: dict | None, missing: str) -> dict:
    if document is None:
        raise UnknownVersion(missing)
    return document


class CalcService(ops.OperationsMixin):
    name = "calc"

    tracing = Tracing()
    db = MongoDatabase(DATABASE)
    repo = Repository(DATABASE)
    catalog = MethodologyCatalog()
    publisher = BatchDispatcher()

    @batch_event_handler("ingest", "behaviour_received", max_batch=500, span_per="parent")
    def handle_behaviour_received(self, deliveries):
        counts = handle_behaviours(deliveries, self.catalog, self.repo, self.publisher)
        log.info("records processed", extra={"records": len(deliveries), **counts})

    @event_handler("exchange_bridge", "exchange_batch_registered")
    def handle_exchange_batch_registered(self, envelope):
        data = envelope["data"]
        new = self.repo.lock(data.get("reduction_ids") or [], data.get("batch_id", ""))
        log.info("reductions locked at the exchange", extra={"batch_id": data.get("batch_id"), "new_locks": new})

    @rpc(expected_exceptions=(InvalidRecord,))
    def preview(self, record):
        """What would this record earn? {eligible, grams, breakdown…} or {eligible: false, code, message}."""
        return queries.preview(record, self.catalog)

    @rpc
    def list_methodologies(self):
        return queries.methodology_summaries(self.catalog)

    @rpc(expected_exceptions=(UnknownVersion,))
    def get_methodology(self, id, version):
        return _found(queries.methodology_document(self.catalog, id, version), f"no methodology {id} version {version}")

    @rpc
    def list_factor_sets(self):
        return queries.factor_set_summaries(self.catalog)

    @rpc(expected_exceptions=(UnknownVersion,))
    def get_factor_set(self, id, version):
        return _found(queries.factor_set_document(self.catalog, id, version), f"no factor set {id} version {version}")
