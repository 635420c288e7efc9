"""The ingest processes' event publisher (exchange ingest.events): confirmed, mandatory, batched.

`publish_many` sends a request's (or a relay pass's) events and waits once for the broker's
confirms of all of them (carbon_common.events.BatchPublisher): a confirm per message capped a
publisher near 1,500 msgs/s. Each BatchPublisher holds one AMQP connection under a lock, so the
Bus keeps a small pool of them: the threads of a gthread worker do not queue behind one
another's confirm wait. The pool grows to the number of threads publishing at once.
"""

import threading
import time

from kombu import Connection

from carbon_common.events import BatchPublisher, PublishError

PRODUCER = "ingest"


class Bus:
    # A connection left idle across a broker restart fails at once on its next use: such a
    # failure is retried once on a fresh connection (same event ids: a message that did get
    # through is deduped by its consumers). A slow failure (no confirm) is not retried.
    STALE_FAILURE_SECONDS = 1.0

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._lock = threading.Lock()
        self._idle: list[BatchPublisher] = []
        self._connected: dict[int, bool] = {}  # id(publisher) -> its last publish went through
        self._all: list[BatchPublisher] = []

    def publish_many(self, items) -> list[dict]:
        """items: (event_type, data, event_id, traceparent) -> envelopes, all confirmed; else
        PublishError (then nothing may be acknowledged)."""
        items = list(items)
        if not items:
            return []
        publisher = self._acquire()
        try:
            started = time.monotonic()
            try:
                envelopes = publisher.publish_many(items)
            except PublishError:
                was_connected, self._connected[id(publisher)] = self._connected[id(publisher)], False
                if not was_connected or time.monotonic() - started > self.STALE_FAILURE_SECONDS:
                    raise
                envelopes = publisher.publish_many(items)
            self._connected[id(publisher)] = True
            return envelopes
        finally:
            with self._lock:
                self._idle.append(publisher)

    def publish(self, event_type: str, data: dict, event_id: str, traceparent: str | None = None) -> dict:
        return self.publish_many([(event_type, data, event_id, traceparent)])[0]

    def _acquire(self) -> BatchPublisher:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            publisher = BatchPublisher(self.amqp_uri, PRODUCER)
            self._all.append(publisher)
            self._connected[id(publisher)] = False
            return publisher

    def ping(self) -> None:
        with Connection(self.amqp_uri, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=0)

    def close(self) -> None:
        with self._lock:
            publishers, self._all, self._idle = self._all, [], []
        for publisher in publishers:
            publisher.close()
