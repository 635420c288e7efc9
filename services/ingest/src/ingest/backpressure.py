"""Load shedding: new records are refused (503 `overloaded`, Retry-After) while the pipeline
behind ingest holds more than INGEST_MAX_BACKLOG messages.

Accepting work the platform cannot credit in time only lengthens every record's wait and takes
CPU from the stages that would drain it: on the 2-core bench, 1,500 records/s offered
against a ~500/s pipeline credited 190/s while ingest kept accepting 940/s (ADR 0004). With
the intake bounded, a partner retries a little later (its records are idempotent) and the
backlog, hence the delay to the ledger, stays below about INGEST_MAX_BACKLOG / credit rate.

The backlog is the ready messages of calc's `behaviour_received` queue and account's
`reduction_calculated` shard queues (their retry and parking queues are not work waiting),
read at most every INGEST_BACKLOG_POLL_SECONDS per worker (by the request that finds the last
reading older) with passive queue declarations on one connection. If the broker cannot be asked, nothing is shed on that account (a publish
would then fail and answer 503 `unavailable` anyway).
"""

import logging
import threading
import time

from kombu import Connection

from carbon_common import topology

log = logging.getLogger(__name__)

PIPELINE = (
    topology.Route("ingest", "behaviour_received", "calc", "handle_behaviour_received"),
    topology.Route("calc", "reduction_calculated", "account", "handle_reduction_calculated"),
)


def pipeline_queues() -> list[str]:
    return [q.name for route in PIPELINE for q in topology.consumed_queues(route)]


class Backlog:
    def __init__(self, amqp_uri: str, limit: int, interval: float = 1.0, gauge=None):
        """limit 0: never shed. gauge: a prometheus Gauge set to each reading."""
        self.amqp_uri, self.limit, self.interval, self.gauge = amqp_uri, limit, interval, gauge
        self.queues = pipeline_queues()
        self.depth = 0
        self._read_at = float("-inf")
        self._conn = None
        self._lock = threading.Lock()

    def overloaded(self) -> bool:
        """The last reading against the bound; one request per interval refreshes it (the
        others go on with the last reading instead of waiting)."""
        if self.limit <= 0:
            return False
        now = time.monotonic()
        if now - self._read_at >= self.interval and self._lock.acquire(blocking=False):
            try:
                self._read_at = now
                self.depth = self._read()
            finally:
                self._lock.release()
        return self.depth >= self.limit

    def retry_after(self) -> int:
        return max(1, min(30, round(self.interval * 5)))

    def _read(self) -> int:
        try:
            if self._conn is None:  # opened on first use: after gunicorn forked the worker
                self._conn = Connection(self.amqp_uri, connect_timeout=2)
            channel = self._conn.default_channel
            depth = sum(channel.queue_declare(queue=name, passive=True).message_count for name in self.queues)
        except Exception as exc:  # noqa: BLE001 - broker away: shed nothing, ask again next interval
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.collect()
            log.warning("pipeline backlog unknown", extra={"error": repr(exc)})
            return 0
        if self.gauge is not None:
            self.gauge.set(depth)
        return depth
