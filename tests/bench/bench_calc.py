"""calc throughput: pure domain calculations/s, and end-to-end events/s through the real broker
(behaviour_received published -> calc service -> reduction_calculated received) with FerretDB.

Bounded: BENCH_CALC_RECORDS domain calculations (default 20,000) and BENCH_CALC_EVENTS events
(default 1,000) end to end, each with a deadline; progress lines while it runs. Uses a throwaway
RabbitMQ vhost and Mongo database (both removed afterwards). Needs `bash scripts/deps.sh start`.
Ratios compare with a bank's scale: a CITIC-sized bank ≈350 records/s average, ≈2,000/s peak.
Run: .venv/bin/python tests/bench/bench_calc.py
"""

import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("LOG_LEVEL", "WARNING")  # figures, not one log line per record
import uuid  # noqa: E402

import requests  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402

from carbon_common import topology  # noqa: E402
from carbon_common.events import EventPublisher  # noqa: E402
from carbon_common.mongo import client  # noqa: E402
from carbon_dev.testing import EventListener  # noqa: E402

from calc.domain import calculate  # noqa: E402
from calc.loader import load_catalog  # noqa: E402
from calc.schemas import record_from_event  # noqa: E402
from carbon_dev.calc_fixtures import behaviour  # noqa: E402

RECORDS = int(os.environ.get("BENCH_CALC_RECORDS", "20000"))
EVENTS = int(os.environ.get("BENCH_CALC_EVENTS", "1000"))
DEADLINE_S = float(os.environ.get("BENCH_CALC_DEADLINE", "120"))
RABBIT_API = os.environ.get("RABBIT_API", "http://guest:guest@127.0.0.1:15672")
AMQP_BASE = os.environ.get("BENCH_AMQP_BASE", "pyamqp://guest:guest@127.0.0.1:5672")
MONGO_URI = os.environ.get("TEST_MONGO_URI", "mongodb://127.0.0.1:27017/?retryWrites=false")
AVERAGE_TARGET, PEAK_TARGET = 350, 2000

MIX = [  # one of each scenario, cycled
    dict(scenario="metro_ride", distance_km="12.4", city="sz"),
    dict(scenario="bus_ride", distance_km="6.2", city="sz"),
    dict(scenario="bike_ride", distance_km="2.5", city="bj"),
    dict(scenario="walking", steps="10432"),
    dict(scenario="utility_bill_payment", bill_account="E-1"),
    dict(scenario="e_statement", statement_id="ST-1"),
    dict(scenario="ev_charging", kwh="31.7", region="east"),
    dict(scenario="household_electricity", kwh="80", baseline_kwh="95", region="south", period_days="30"),
]


def payload(n: int) -> dict:
    spec = dict(MIX[n % len(MIX)])
    scenario = spec.pop("scenario")
    return behaviour(n, scenario=scenario, occurred_at=f"2026-03-{1 + n % 28:02d}T08:{n % 60:02d}:00+08:00", **spec)


def bench_domain() -> float:
    catalog = load_catalog()
    records = [record_from_event(payload(n)) for n in range(len(MIX) * 50)]
    start, done = time.perf_counter(), 0
    while done < RECORDS and time.perf_counter() - start < DEADLINE_S:
        calculate(records[done % len(records)], catalog)
        done += 1
        if done % 5000 == 0:
            print(f"  domain: {done}/{RECORDS}", flush=True)
    rate = done / (time.perf_counter() - start)
    print(f"domain calculations: {done} in {done / rate:.2f} s = {rate:,.0f}/s (incl. SM3 dedup key)")
    return rate


def bench_end_to_end() -> float:
    from calc.service import CalcService

    vhost = f"bench_calc_{uuid.uuid4().hex[:8]}"
    requests.put(f"{RABBIT_API}/api/vhosts/{vhost}", timeout=10).raise_for_status()
    requests.put(
        f"{RABBIT_API}/api/permissions/{vhost}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}, timeout=10
    ).raise_for_status()
    amqp_uri, db_name = f"{AMQP_BASE}/{vhost}", f"bench_calc_{uuid.uuid4().hex[:8]}"
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    container = None
    try:
        topology.declare(amqp_uri)
        listener = EventListener(amqp_uri, "calc", "reduction_calculated")
        publisher = EventPublisher(amqp_uri, "ingest")
        start = time.perf_counter()
        for n in range(EVENTS):  # a backlog: calc's own drain rate is measured below
            publisher.publish("behaviour_received", payload(n), event_id=f"bench-{n}")
            if (n + 1) % 250 == 0:
                print(f"  e2e: published {n + 1}/{EVENTS}", flush=True)
        published = time.perf_counter() - start
        print(
            f"  e2e: {EVENTS} behaviour_received published (confirmed, one publisher) at {EVENTS / published:,.0f}/s",
            flush=True,
        )
        container = ServiceContainer(
            CalcService,
            {
                "AMQP_URI": amqp_uri,
                "MONGO_URI": MONGO_URI,
                "MONGO_DATABASE": db_name,
                "WEB_SERVER_ADDRESS": "127.0.0.1:0",
                "max_workers": 32,
            },
        )
        start = time.perf_counter()
        container.start()
        last = 0
        while len(listener.drain()) < EVENTS:
            if time.perf_counter() - start > DEADLINE_S:
                print(f"  e2e: deadline reached with {len(listener.received)}/{EVENTS} results")
                break
            if len(listener.received) - last >= 250:
                last = len(listener.received)
                print(f"  e2e: {last}/{EVENTS} reduction_calculated received", flush=True)
            eventlet.sleep(0.05)
        elapsed = time.perf_counter() - start
        received = len(listener.received)
        rate = received / elapsed
        print(
            f"end-to-end: calc drained {received} queued behaviour_received into reduction_calculated in "
            f"{elapsed:.2f} s = {rate:,.0f} events/s (FerretDB group commit + confirmed publish, 32 workers)"
        )
        listener.close()
        return rate
    finally:
        if container is not None:
            container.stop()
        client(MONGO_URI).drop_database(db_name)
        requests.delete(f"{RABBIT_API}/api/vhosts/{vhost}", timeout=10)


def main() -> int:
    domain = bench_domain()
    e2e = bench_end_to_end()
    print("ratios:")
    print(f"  domain / end-to-end            {domain / e2e:8.1f}x  (the broker + store dominate)")
    print(f"  end-to-end / 350/s average     {e2e / AVERAGE_TARGET:8.2f}x")
    print(f"  end-to-end / 2,000/s peak      {e2e / PEAK_TARGET:8.2f}x")
    print(f"  domain / 2,000/s peak          {domain / PEAK_TARGET:8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
