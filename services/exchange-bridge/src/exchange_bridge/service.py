"""nameko service `exchange_bridge`: batches the reductions behind the bank pool's redeemed
grams for the exchange registry, and moves the units issued for them.

A timer (BRIDGE_INTERVAL_SECONDS, default 30) and RPC `run_batch()` run the same resumable
pass (exchange_bridge.bridge). Two instances may run at once: every step is a unique insert.
"""

import logging
import time

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from carbon_common import ops
from carbon_common.config import int_setting
from carbon_common.events import EventDispatcher
from carbon_common.mongo import MongoDatabase
from carbon_common.tracing import Tracing

from exchange_bridge import reconciliation
from exchange_bridge import certificate_pdf
from exchange_bridge.dependencies import DATABASE, BridgeProvider
from exchange_bridge.errors import EXPECTED

log = logging.getLogger(__name__)
INTERVAL_SECONDS = int_setting("BRIDGE_INTERVAL_SECONDS", 30)
RECONCILE_SECONDS = int_setting("BRIDGE_RECONCILE_SECONDS", 300)
# the first reconciliation within a minute of the start (the last-run gauge reads 0 until then)
RECONCILE_TICK = min(RECONCILE_SECONDS, 60)
_reconciled = {"at": None}  # monotonic time of this process's last scheduled run


# `ops.OperationsMixin`, not an imported name: `nameko run` treats every class with
# entrypoints in this module's namespace as a service.
class ExchangeBridgeService(ops.OperationsMixin):
    name = "exchange_bridge"
    db = MongoDatabase(DATABASE)
    tracing = Tracing()
    account = RpcProxy("account")
    dispatch = EventDispatcher()
    bridge = BridgeProvider()

    @timer(interval=INTERVAL_SECONDS)
    def scheduled_batch(self):
        try:
            self.run_batch()
        except Exception:  # the next tick resumes where this one stopped
            log.exception("bridge pass failed")

    def _bridge(self):
        return self.bridge(self.account, self.dispatch)

    @timer(interval=RECONCILE_TICK)
    def scheduled_reconciliation(self):
        last = _reconciled["at"]
        if last is not None and time.monotonic() - last < RECONCILE_SECONDS - RECONCILE_TICK / 2:
            return
        _reconciled["at"] = time.monotonic()
        try:
            self.reconcile()
        except Exception:  # not counted as a run: the last-run gauge goes stale, and alerts
            log.exception("exchange reconciliation could not complete")

    @rpc
    def reconcile(self):
        """The registry against the bridge's records and the ledger: the report (README,
        "Reconciliation"); differences are logged and set the gauges, never fixed."""
        result = reconciliation.for_bridge(self._bridge(), self.account).run()
        reconciliation.publish(result)
        return result

    @rpc
    def run_batch(self):
        """One pass now: {registered: batch ids issued, failed: batches waiting, formed, rejected,
        released, written_off, waiting, intake: {links, reductions}}."""
        return self._bridge().run()

    @rpc(expected_exceptions=EXPECTED)
    def transfer_units(self, batch_id, units, to_holder, request_key):
        return self._bridge().units.transfer(batch_id, units, to_holder, request_key)

    @rpc(expected_exceptions=EXPECTED)
    def retire_units(self, batch_id, units, beneficiary, reason, request_key):
        return self._bridge().units.retire(batch_id, units, beneficiary, reason, request_key)

    @rpc(expected_exceptions=EXPECTED)
    def cancel_units(self, batch_id, units, reason, request_key):
        return self._bridge().units.cancel(batch_id, units, reason, request_key)

    @rpc
    def batch_status(self, batch_id):
        """The batch as the bridge stores it (states, reductions, unit operations), or None."""
        return self._bridge().batch_status(batch_id)

    @rpc
    def overview(self):
        return self._bridge().overview()

    @rpc(expected_exceptions=EXPECTED)
    def certificate(self, owner_pid, reduction_ids):
        """The owner's retirement certificate (docs/certificate.md, carbon-retirement-certificate/2)
        over the batches that issued these reductions and whose units were retired."""
        return self._bridge().certificate(owner_pid, reduction_ids)

    @rpc(expected_exceptions=EXPECTED)
    def certificate_pdf(self, owner_pid, reduction_ids, with_pdf=True):
        """The same certificate and a PDF of it for people (docs/certificate.md §8): {certificate,
        pdf_base64, pdf_filename, json_filename, digest, bank_key_fingerprint,
        registry_key_fingerprint}. `with_pdf` false: everything checked the same, no PDF rendered
        (`pdf_base64` empty) — for callers that asked for the JSON only."""
        bridge = self._bridge()
        doc = bridge.certificate(owner_pid, reduction_ids)
        return certificate_pdf.answer(
            doc,
            bridge.lifecycle.signer.public_hex,
            bridge.lifecycle.registry,
            bank_keys=certificate_pdf.stored_bank_keys(doc, bridge.repo),  # each batch's own signer
            with_pdf=bool(with_pdf),
        )
