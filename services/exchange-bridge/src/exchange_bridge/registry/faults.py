"""Faults on command, reproducible from a seed: what a real registry link does to the bridge.

REGISTRY_FAULTS="latency=0.05,error5xx=0.05,timeout_after_commit=0.05,duplicate=0.05,reject=0.02"
gives each kind's probability per bank request; REGISTRY_FAULT_SEED seeds one random stream.
Every bank request draws the same number of values from it (DRAWS), in arrival order,
whatever fires, so the same seed and the same requests give the same faults.

  latency               sleep up to `max_latency` seconds before handling
  error5xx              answer 500/502/503 `injected_fault` before doing anything
  timeout_after_commit  do the work, then drop the connection (or, with no socket to drop,
                        delay the answer by `timeout_seconds`, beyond the client's timeout)
  duplicate             the request is delivered twice: the authenticated operation runs a
                        second time and the second answer is the one returned
  reject                a new, valid batch is stored as rejected with reason `injected`; decided
                        per batch (from the seed and the batch id), not per request, so two
                        deliveries of one batch never get different verdicts, as at a real
                        registry whose verdict depends on the batch alone
"""

import random
import threading
from collections import Counter
from dataclasses import dataclass

KINDS = ("latency", "error5xx", "timeout_after_commit", "duplicate", "reject")
ERROR_STATUSES = (500, 502, 503)
DRAWS = 7


def parse_spec(text: str) -> dict:
    """ "kind=rate,…" -> {kind: rate}; ValueError for an unknown kind or a rate outside [0, 1]."""
    rates = {kind: 0.0 for kind in KINDS}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        kind, _, value = item.partition("=")
        kind = kind.strip()
        if kind not in rates:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(KINDS)})")
        rate = float(value)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate {kind}={value} outside [0, 1]")
        rates[kind] = rate
    return rates


@dataclass(frozen=True)
class Decision:
    delay: float = 0.0
    error: int = 0  # HTTP status to answer instead of working, 0 for none
    timeout: bool = False
    duplicate: bool = False
    reject: bool = False


class Faults:
    def __init__(self, rates: dict | str | None = None, seed: int = 0, max_latency=0.2, timeout_seconds=30.0):
        self.lock = threading.Lock()
        self.counters: Counter = Counter()
        self.requests = 0
        self.max_latency, self.timeout_seconds = max_latency, timeout_seconds
        self.configure(rates if rates is not None else {}, seed)

    def configure(self, rates: dict | str | None = None, seed: int | None = None, **timing) -> None:
        """Change rates (a spec or a dict, unnamed kinds 0) and/or reseed; counters are kept."""
        if rates is not None:  # everything parsed before anything changes
            rates = parse_spec(rates if isinstance(rates, str) else ",".join(f"{k}={v}" for k, v in rates.items()))
        seed = None if seed is None else int(seed)
        max_latency = float(timing.get("max_latency", self.max_latency))
        timeout_seconds = float(timing.get("timeout_seconds", self.timeout_seconds))
        with self.lock:
            if rates is not None:
                self.rates = rates
            if seed is not None:
                self.seed, self.rng = seed, random.Random(seed)
            self.max_latency, self.timeout_seconds = max_latency, timeout_seconds

    def decide(self) -> Decision:
        with self.lock:
            self.requests += 1
            d = [self.rng.random() for _ in range(DRAWS)]
            r = self.rates
            return Decision(
                delay=d[1] * self.max_latency if d[0] < r["latency"] else 0.0,
                error=ERROR_STATUSES[int(d[3] * len(ERROR_STATUSES))] if d[2] < r["error5xx"] else 0,
                timeout=d[4] < r["timeout_after_commit"],
                duplicate=d[5] < r["duplicate"],
                reject=d[6] < r["reject"],
            )

    def rejects(self, batch_id: str) -> bool:
        """Whether an injected rejection falls on this batch (the same answer for every delivery)."""
        with self.lock:
            rate, seed = self.rates["reject"], self.seed
        return rate > 0 and random.Random(f"{seed}:reject:{batch_id}").random() < rate

    def count(self, kind: str) -> None:
        """Record one fault actually injected (a drawn fault may not apply, e.g. reject on a GET)."""
        with self.lock:
            self.counters[kind] += 1

    def snapshot(self) -> dict:
        with self.lock:
            counters = {kind: self.counters[kind] for kind in KINDS}
            return {
                "rates": dict(self.rates),
                "seed": self.seed,
                "max_latency": self.max_latency,
                "timeout_seconds": self.timeout_seconds,
                "requests": self.requests,
                "injected": counters,
                "injected_total": sum(counters.values()),
            }
