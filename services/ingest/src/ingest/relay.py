"""Relay: publishes receipts whose publish failed (the partner got 503) without waiting for a replay.

    python -m ingest.relay [--once]

Every RELAY_INTERVAL_SECONDS (5) it reads the `unpublished` hints (one per request, listing its
record keys) older than RELAY_GRACE_SECONDS (90: longer than a request may live under gunicorn's
60 s timeout, so it does not race the request that is publishing them right now), republishes
each receipt stored under those hints as `behaviour_received` with its deterministic event_id
(the record key; consumers dedupe on it anyway) and deletes the hints, which makes the receipts
published. A key without a receipt (the request died between the two inserts) or whose receipt
was stored under another hint (that hint tracks it) is simply dropped. Receipts stored before
hints carried no `hint` field: they are republished unless they have a legacy `published`
marker, which they then get. Hints are taken in groups of about RELAY_BATCH (500) records: one
`$in` read of the receipts (two if some predate hints) and one confirm wait (BatchPublisher)
per group.

Timer work that must stay off the request path also runs here: expired nonces and rate slots
are purged every RELAY_PURGE_SECONDS (300; FerretDB has no TTL index), and consents stored
before the consent index existed are listed in it once (then a marker says it is complete).

METRICS_ADDRESS (127.0.0.1:8081) serves GET /health (readiness: 200 when Mongo and AMQP
answer), GET /healthz (liveness: 200 while passes keep finishing, even failed ones) and
GET /metrics. Plain Python (threads), not eventlet. Env: AMQP_URI, MONGO_URI (required),
MONGO_DATABASE (carbon_ingest), RELAY_BATCH (500), RELAY_PURGE_SECONDS (300), OTEL_*.
"""

import argparse
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge

from carbon_common.clock import utc_now
from carbon_common.config import int_setting, require, setting
from carbon_common.events import PublishError
from carbon_common.logs import configure_logging
from carbon_common.ops_http import serve_ops
from carbon_common.mongo import connect_database
from carbon_common.telemetry import setup_telemetry

from ingest import domain
from ingest.bus import Bus
from ingest.repository import Repository

log = logging.getLogger("ingest.relay")
SERVICE_NAME = "ingest-relay"

REPUBLISHED = Counter("ingest_relay_republished_total", "Receipts the relay published after their request failed to")
PENDING = Gauge("ingest_relay_pending", "Receipts waiting to be published (hints), as of the last pass")
OLDEST_PENDING = Gauge(
    "ingest_relay_oldest_pending_seconds", "Age of the oldest receipt still unpublished after the last pass (0 if none)"
)
FAILED_PASSES = Counter("ingest_relay_failed_passes_total", "Passes stopped by a broker or database error")


@dataclass
class PassResult:
    republished: list = field(default_factory=list)  # record keys
    dropped: int = 0  # keys of published or missing receipts
    failed: bool = False  # the broker refused: the rest waits


class Relay:
    def __init__(
        self, repo: Repository, bus, grace: timedelta, batch: int = 500, purge_every: timedelta = timedelta(minutes=5)
    ):
        self.repo, self.bus, self.grace, self.batch = repo, bus, grace, batch
        self.purge_every = purge_every.total_seconds()
        self.last_pass_end = time.monotonic()  # liveness: the loop is not stuck
        self.last_purge = None

    def housekeeping(self, now: datetime | None = None) -> None:
        """Timer work kept off the request path: list consents stored before the consent index
        existed (once), and purge expired nonces and rate slots (FerretDB has no TTL index)."""
        now = now or utc_now()
        if not self.repo.consent_index_ready():
            log.info("consent index backfilled", extra={"consents": self.repo.backfill_consent_index()})
        if self.last_purge is None or time.monotonic() - self.last_purge >= self.purge_every:
            purged = self.repo.purge_expired(now)
            self.last_purge = time.monotonic()
            if purged:
                log.info("expired nonces and rate slots purged", extra={"count": purged})

    def run_once(self, now: datetime | None = None) -> PassResult:
        """One pass: drain every hint older than the grace period, about `batch` records at a time."""
        now = now or utc_now()
        result = PassResult()
        while not result.failed:
            hints = self.repo.unpublished_before(now - self.grace, self.batch)
            progressed = False
            for group in self._groups(hints):
                confirmed = self._relay(group, result)
                if result.failed:
                    break
                self.repo.mark_published(confirmed, now)  # only receipts stored before hints get a marker
                self.repo.clear_unpublished([hint["_id"] for hint in group])
                result.republished.extend(r["_id"] for r in confirmed)
                REPUBLISHED.inc(len(confirmed))
                progressed = True
            if len(hints) < self.batch or not progressed:
                break
        self._observe(now)
        self.last_pass_end = time.monotonic()
        return result

    def _groups(self, hints):
        """Consecutive hints holding about `batch` record keys together (one hint at least)."""
        group, size = [], 0
        for hint in hints:
            if group and size + len(self.repo.hint_keys(hint)) > self.batch:
                yield group
                group, size = [], 0
            group.append(hint)
            size += len(self.repo.hint_keys(hint))
        if group:
            yield group

    def _relay(self, hints, result: PassResult) -> list:
        """Republish the pending receipts these hints list, with one confirm wait: -> those receipts.

        A receipt is pending while the hint it was stored under exists: here, one of `hints`
        (read just now). One stored under another hint is that hint's business."""
        traceparents = {}
        for hint in hints:
            for key in self.repo.hint_keys(hint):
                traceparents.setdefault(key, hint.get("traceparent") or None)
        keys = list(traceparents)
        ours = {hint["_id"] for hint in hints}
        receipts = self.repo.get_receipts(keys)
        legacy_published = self.repo.published_among([k for k, r in receipts.items() if "hint" not in r])
        pending = [
            key
            for key in keys
            if key in receipts
            and (receipts[key]["hint"] in ours if "hint" in receipts[key] else key not in legacy_published)
        ]
        try:
            self.bus.publish_many(
                [
                    ("behaviour_received", domain.behaviour_received(receipts[key]), key, traceparents[key])
                    for key in pending
                ]
            )
        except PublishError:
            log.warning("republish not confirmed; retrying next pass", extra={"records": len(pending)})
            result.failed = True
            FAILED_PASSES.inc()
            return []
        for key in pending:
            log.info("receipt republished", extra={"record_key": key, "partner_id": receipts[key]["partner_id"]})
        result.dropped += len(keys) - len(pending)
        return [receipts[key] for key in pending]

    def _observe(self, now: datetime) -> None:
        PENDING.set(self.repo.count_unpublished())
        oldest = self.repo.unpublished_before(now + timedelta(days=1), 1)
        OLDEST_PENDING.set((now - domain.aware(oldest[0]["created_at"])).total_seconds() if oldest else 0)

    def checks(self) -> dict:
        return {"mongo": self.repo.ping, "amqp": self.bus.ping}

    def liveness(self, stuck_after: float):
        """Alive while passes keep finishing (a broker outage is readiness, not liveness)."""

        def alive() -> tuple[bool, dict]:
            idle = time.monotonic() - self.last_pass_end
            return idle < stuck_after, {"seconds_since_pass": round(idle, 1)}

        return alive


def build_relay() -> Relay:
    amqp_uri, mongo_uri = require("AMQP_URI"), require("MONGO_URI")
    repo = Repository(connect_database("carbon_ingest", uri=mongo_uri))
    repo.ensure_indexes()
    grace = timedelta(seconds=int_setting("RELAY_GRACE_SECONDS", 90))
    return Relay(
        repo,
        Bus(amqp_uri),
        grace,
        batch=int_setting("RELAY_BATCH", 500),
        purge_every=timedelta(seconds=int_setting("RELAY_PURGE_SECONDS", 300)),
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest.relay", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run one pass and exit (no HTTP server)")
    args = parser.parse_args(argv)
    configure_logging(SERVICE_NAME)
    setup_telemetry(SERVICE_NAME)
    relay = build_relay()
    if args.once:
        result = relay.run_once()
        relay.housekeeping()
        print(json.dumps({"republished": len(result.republished), "dropped": result.dropped, "failed": result.failed}))
        raise SystemExit(1 if result.failed else 0)
    interval = int_setting("RELAY_INTERVAL_SECONDS", 5)
    address = setting("METRICS_ADDRESS", "127.0.0.1:8081")
    http = serve_ops(address, relay.checks(), relay.liveness(stuck_after=max(120.0, 10.0 * interval)))
    log.info(
        "relay started",
        extra={"metrics_address": address, "interval_s": interval, "grace_s": relay.grace.total_seconds()},
    )
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    while not stopped.is_set():
        try:
            relay.run_once()
        except Exception:  # noqa: BLE001 - a database outage must not kill the loop
            FAILED_PASSES.inc()
            relay.last_pass_end = time.monotonic()  # failing is not being stuck: /health says why
            log.exception("relay pass failed; retrying next interval")
        try:  # on its own: failing housekeeping must not hold up republishing
            relay.housekeeping()
        except Exception:  # noqa: BLE001
            log.exception("relay housekeeping failed; retrying next interval")
        stopped.wait(interval)
    http.shutdown()
    relay.bus.close()


if __name__ == "__main__":
    main()
