"""The calc nameko service: events in/out, RPC for previews and methodology listings."""

import logging

from nameko.rpc import rpc

from carbon_common.batching import batch_event_handler
from carbon_common.events import BatchDispatcher
from carbon_common.handlers import event_handler
from carbon_common.mongo import MongoDatabase
from carbon_common.schemas import check_envelope
from carbon_common import ops  # the module: `nameko run` would take an imported mixin class for a service
from carbon_common.tracing import Tracing

from calc import forgetting, queries
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
        work, dropped = forgetting.drop_forgotten(deliveries, self.repo)
        counts = handle_behaviours(work, self.catalog, self.repo, self.publisher) if work else {}
        scrubbed = forgetting.scrub_stored(work, self.repo)  # a deletion request landed meanwhile
        log.info(
            "records processed",
            extra={"records": len(deliveries), **counts, "forgotten": dropped, "scrubbed": scrubbed},
        )

    @event_handler("ingest", "personal_data_deleted")
    def handle_personal_data_deleted(self, envelope):
        """Drop every link from the pseudonym to the person's outcomes (calc.forgetting)."""
        check_envelope(envelope)  # a contract violation raises: retried, then dead-lettered
        data = envelope["data"]
        if envelope["event_type"] != "personal_data_deleted" or not data.get("user_pid"):
            raise ValueError("personal_data_deleted needs user_pid")
        done = self.repo.forget_person(data["user_pid"], data.get("requested_at", ""))
        log.info("personal data link removed", extra=done)

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
