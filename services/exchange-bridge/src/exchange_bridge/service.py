"""nameko service `exchange_bridge`: batches the bank pool's redeemed grams for the exchange.

A timer (BRIDGE_INTERVAL_SECONDS, default 30) and RPC `run_batch()` run the same resumable
flow (exchange_bridge.bridge): claim new pool credits, form an SM2-signed batch, submit it,
announce `exchange_batch_registered`. Two instances may run at once: claims are unique inserts.
"""

import logging

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from carbon_common import ops
from carbon_common.config import int_setting
from carbon_common.events import EventDispatcher
from carbon_common.mongo import MongoDatabase
from carbon_common.tracing import Tracing

from exchange_bridge.dependencies import DATABASE, BridgeProvider

log = logging.getLogger(__name__)
INTERVAL_SECONDS = int_setting("BRIDGE_INTERVAL_SECONDS", 30)


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
            log.exception("bridge run failed")

    @rpc
    def run_batch(self):
        """Run one bridge pass now: {"registered": [batch ids announced], "failed": submissions left pending}."""
        return self.bridge(self.account, self.dispatch).run()
