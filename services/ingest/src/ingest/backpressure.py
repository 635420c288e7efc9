"""Load shedding: new records are refused (503 `overloaded`, Retry-After) while the pipeline
behind ingest holds more than INGEST_MAX_BACKLOG messages.

Accepting work the platform cannot credit in time only lengthens every record's wait and takes
CPU from the stages that would drain it: on the 2-core bench, 1,500 records/s offered
against a ~500/s pipeline credited 190/s while ingest kept accepting 940/s (ADR 0004). With
the intake bounded, a partner retries a little later (its records are idempotent) and the
backlog, hence the delay to the ledger, stays below about INGEST_MAX_BACKLOG / credit rate.

The backlog is the ready messages of calc's `behaviour_received` queue and account's
`reduction_calculated` shard queues (their retry and parking queues are not work waiting),
read every INGEST_BACKLOG_POLL_SECONDS by a background thread of each worker with passive
queue declarations. If the broker cannot be asked, nothing is shed on that account (a publish
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
        self._thread = None
        self._lock = threading.Lock()

    def overloaded(self) -> bool:
        if self.limit <= 0:
            return False
        self._ensure_polling()  # started on first use: after gunicorn forked the worker
        return self.depth >= self.limit

    def retry_after(self) -> int:
        return max(1, min(30, round(self.interval * 5)))

    def _ensure_polling(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._poll_forever, name="backlog-poll", daemon=True)
                    self._thread.start()

    def read(self, conn) -> int:
        channel = conn.default_channel
        return sum(channel.queue_declare(queue=name, passive=True).message_count for name in self.queues)

    def _poll_forever(self) -> None:
        while True:
            try:
                with Connection(self.amqp_uri, connect_timeout=5) as conn:
                    while True:
                        self.depth = self.read(conn)
                        if self.gauge is not None:
                            self.gauge.set(self.depth)
                        time.sleep(self.interval)
            except Exception as exc:  # noqa: BLE001 - broker away: shed nothing, ask again later
                self.depth = 0
                log.warning("pipeline backlog unknown", extra={"error": repr(exc)})
                time.sleep(max(self.interval, 1.0))
