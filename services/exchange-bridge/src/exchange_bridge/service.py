"""nameko service `exchange_bridge` (skeleton: operations endpoints; batching comes next).

The batching/submission flow (ARCHITECTURE.md §2) is not built yet; the service already runs
under `make run` and in the chart so that topology, health and tracing are in place.
"""
from carbon_common.mongo import MongoDatabase
from carbon_common import ops
from carbon_common.tracing import Tracing

# `ops.OperationsMixin`, not an imported name: `nameko run` treats every class with
# entrypoints in this module's namespace as a service.


class ExchangeBridgeService(ops.OperationsMixin):
    name = "exchange_bridge"
    db = MongoDatabase("carbon_exchange_bridge")
    tracing = Tracing()
