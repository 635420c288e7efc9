"""End-to-end load: the whole platform as `make run` runs it, tracing on, under a ramp of load.

    .venv/bin/python tests/bench/bench_platform.py [--steps 250:20,500:30,1000:60,1200:60,1000:60,500:30]
        [--replicas calc=2,account=2] [--ingest-workers 2] [--customers 1000] [--clients 4]
        [--label NAME] [--sample 0.1] [--keep]

A fresh platform instance ("bench", its own vhost, databases and ports) runs every process
under supervisord, exporting spans to the local Jaeger. Several client threads stream signed
100-record batches at the offered rate of each step; a queue of our own bound to
`account.events` (as a bank system would bind one) receives the ledger's decision for each
record (account_credited / reduction_capped / reduction_declined). Per step it reports offered,
accepted and credited records/s, the latency from the HTTP 2xx to the account event (p50, p95,
p99) and the CPU of every process. In the same run it measures the raw FerretDB insert_many and
RabbitMQ confirmed-publish rates and prints the ratios, then the idle CPU of the whole platform
and what the decision queue saw of exactly-once (repeated event ids, records decided twice or never).
Writes bench/results/platform-<label>.json and bench/results/platform-<label>.png.
"""

import argparse
import json
import os
import random
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import amqp
import orjson
from kombu import Connection, Queue, binding

from carbon_common import amqp_frames, topology
from carbon_dev.instance import Instance
from carbon_common.mongo import client as mongo_client

from ingest.cli.admin import AdminClient
from carbon_dev.ingest_demo import demo_key
from ingest.sdk.client import IngestClient

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
DECISIONS = ("account_credited", "reduction_capped", "reduction_declined")
PARTNER = "bench-metro"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(text: str, end="\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


# --- CPU of processes (with their children: gunicorn workers, supervised groups) -------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def cpu_seconds(pid: int, tree: dict[int, list[int]]) -> float:
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
        stack.extend(tree.get(p, []))
    return total


def pid_of(pidfile: Path) -> int:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return 0


def rabbit_pid() -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "beam.smp":
                    return int(entry)
            except OSError:
                continue
    return 0


class CpuMeter:
    """CPU seconds of every platform process and dependency between two snapshots."""

    def __init__(self, instance: Instance, names: list[str]):
        self.instance, self.names = instance, names

    def pids(self) -> dict[str, int]:
        out = {name: self.instance.pid(name) for name in self.names}
        out.update(
            {
                "rabbitmq": rabbit_pid(),
                "ferretdb": pid_of(ROOT / ".data" / "ferretdb.pid"),
                "jaeger": pid_of(ROOT / ".data" / "jaeger.pid"),
                "bench-clients": os.getpid(),
            }
        )
        return {k: v for k, v in out.items() if v}

    def snapshot(self) -> tuple[float, dict[str, float]]:
        tree = _children()
        return time.monotonic(), {name: cpu_seconds(pid, tree) for name, pid in self.pids().items()}

    @staticmethod
    def percent(before, after) -> dict[str, float]:
        seconds = max(after[0] - before[0], 1e-6)
        return {k: round(100 * (after[1][k] - before[1].get(k, 0.0)) / seconds, 1) for k in after[1]}


# --- the bank system's view: decisions as they arrive -----------------------------------------
class DecisionListener(threading.Thread):
    def __init__(self, amqp_uri: str):
        super().__init__(daemon=True)
        self.arrived: dict[str, float] = {}
        self.event_ids: dict[str, list] = {}
        self.lock = threading.Lock()
        self.stopping = False
        self.conn = Connection(amqp_uri)
        channel = self.conn.channel()
        exchange = topology.event_exchange("account")
        queue = Queue(
            f"bench-decisions-{uuid.uuid4().hex[:8]}",
            exclusive=True,
            durable=False,
            bindings=[binding(exchange, routing_key=rk) for rk in DECISIONS],
        )
        queue(channel).declare()
        amqp_frames.buffer_reads(self.conn.connection)
        self.channel, self.queue_name = channel, queue.name

    def on_message(self, message):
        # py-amqp's own consumer and orjson: kombu's Consumer and JSON decode cost ~3x as much
        # per event, CPU the bench's clients would take from the platform they measure.
        body = orjson.loads(message.body)
        key = (body.get("data") or {}).get("record_key")
        if key:
            now = time.monotonic()
            with self.lock:
                self.arrived.setdefault(key, now)
                self.event_ids.setdefault(key, []).append(body.get("event_id"))

    def exactly_once(self, accepted) -> dict:
        """What a bank consumer saw: repeats of one event id are absorbed by event_id dedupe;
        one record decided under two event ids, or an accepted record never decided, are not."""
        with self.lock:
            ids = {k: list(v) for k, v in self.event_ids.items()}
        return {
            "decision_events": sum(len(v) for v in ids.values()),
            "records_decided": len(ids),
            "repeated_event_ids": sum(len(v) - len(set(v)) for v in ids.values()),
            "records_with_two_event_ids": sum(1 for v in ids.values() if len(set(v)) > 1),
            "records_accepted_not_decided": sum(1 for k in accepted if k not in ids),
        }

    def run(self):
        self.channel.basic_consume(self.queue_name, callback=self.on_message, no_ack=True)
        while not self.stopping:
            try:
                self.conn.drain_events(timeout=0.5)
            except socket.timeout:
                pass

    def count_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(1 for t in self.arrived.values() if start <= t < end)


# --- partners' clients -------------------------------------------------------------------------
def records_for(customers: list[str], n: int, run: str) -> list[dict]:
    rng = random.Random(f"{run}:{n}")
    day = datetime.now(timezone.utc)  # after the consents (setup_partner): ingest refuses earlier ones
    out = []
    for _ in range(100):
        out.append(
            {
                "record_id": f"{run}-{uuid.uuid4().hex[:16]}",
                "customer_ref": rng.choice(customers),
                "scenario": "metro_ride",
                "occurred_at": (day + timedelta(seconds=rng.randint(0, 240))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "activity": {
                    "distance_km": f"{rng.uniform(2, 30):.1f}",
                    "city": "shenzhen",
                    "entry_station": "S01",
                    "exit_station": "S09",
                },
            }
        )
    return out


class Load:
    """Client threads sending 100-record batches at an offered rate, noting each record's 2xx."""

    def __init__(self, clients: list[IngestClient], customers: list[str], run: str):
        self.clients, self.customers, self.run = clients, customers, run
        self.accepted: dict[str, float] = {}
        self.lock = threading.Lock()
        self.errors: dict[str, int] = {}
        self.sent = 0

    def step(self, rate: float, seconds: float) -> tuple[float, float]:
        """-> (start, end) monotonic times of the step."""
        batches_per_s = rate / 100.0
        interval = len(self.clients) / batches_per_s
        start = time.monotonic()
        threads = [
            threading.Thread(target=self._client, args=(c, i, start, interval, seconds), daemon=True)
            for i, c in enumerate(self.clients)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            elapsed = time.monotonic() - start
            say(
                f"\r   offering {rate:.0f} records/s: {elapsed:4.0f}/{seconds:.0f} s, {len(self.accepted)} accepted so far",
                end="",
            )
        say("")
        return start, start + seconds

    def _client(self, client: IngestClient, index: int, start: float, interval: float, seconds: float):
        n = 0
        next_at = start + index * interval / len(self.clients)
        while True:
            now = time.monotonic()
            if now >= start + seconds:
                return
            if now < next_at:
                time.sleep(min(next_at - now, 0.05))
                continue
            next_at += interval
            n += 1
            batch = records_for(self.customers, hash((index, n, self.run)), f"{self.run}-{index}-{n}")
            try:
                response = client.send_batch(batch)
                done = time.monotonic()
                body = response.json()
            except Exception as exc:  # noqa: BLE001 - count it, keep the load going
                with self.lock:
                    self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
                continue
            with self.lock:
                self.sent += len(batch)
                if "results" not in body:  # the whole request refused, e.g. 503 overloaded after the SDK's retries
                    code = body.get("code", str(response.status_code))
                    self.errors[code] = self.errors.get(code, 0) + len(batch)
                for result in body.get("results", []):
                    if result.get("outcome") == "accepted":
                        self.accepted[result["record_key"]] = done
                    else:
                        code = result.get("code") or result.get("outcome")
                        self.errors[code] = self.errors.get(code, 0) + 1


def cpu_ms_per_credited(row: dict) -> float:
    platform = sum(v for k, v in row["cpu_percent"].items() if k != "bench-clients")  # % of one core
    return round(platform * 10 / max(row["credited_per_s"], 1e-9), 2)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(int(q * len(values)), len(values) - 1)]


# --- raw rates of the real dependencies, measured in the same run -------------------------------
def raw_insert_many(mongo_uri: str, seconds: float = 4.0) -> float:
    db = mongo_client(mongo_uri)[f"bench_raw_{uuid.uuid4().hex[:8]}"]
    doc = {"account_id": "acc_x", "grams": 123, "payload": "x" * 600}
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        db.raw.insert_many([{**doc, "_id": uuid.uuid4().hex} for _ in range(128)], ordered=False)
        count += 128
    rate = count / (time.perf_counter() - started)
    mongo_client(mongo_uri).drop_database(db.name)
    return rate


def raw_publish(amqp_uri: str, seconds: float = 4.0, batch: int = 500) -> float:
    """Persistent messages into a durable queue, one wait for the confirms of each 500."""
    with Connection(amqp_uri) as conn:
        conn.connect()
        channel = conn.connection.channel()  # the py-amqp channel under kombu
        name = f"bench-raw-{uuid.uuid4().hex[:8]}"
        channel.queue_declare(name, durable=True, auto_delete=False)
        channel.confirm_select()
        acked = []
        channel.events["basic_ack"].add(lambda tag, multiple: acked.append(tag))
        body = json.dumps({"event_type": "reduction_calculated", "data": {"grams": 100, "pad": "x" * 400}}).encode()
        count, tag, started = 0, 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(batch):
                channel.basic_publish(amqp.Message(body, delivery_mode=2), exchange="", routing_key=name)
            tag += batch
            while not acked or max(acked) < tag:
                conn.connection.drain_events(timeout=10)
            count += batch
        rate = count / (time.perf_counter() - started)
        channel.queue_delete(name)
    return rate


# --- the run -------------------------------------------------------------------------------------
def setup_partner(instance: Instance, customers: list[str]) -> list:
    base = f"http://{instance.address(8080)}"
    admin = AdminClient(base, instance.secrets()["ADMIN_TOKEN"])
    private, public = demo_key(PARTNER)
    admin.register(PARTNER, "Bench metro", "data_partner", ["metro_ride"], 0, [(f"{PARTNER}-k1", public)])
    bank_private, bank_public = demo_key("bench-bank-app")
    admin.register("bench-bank-app", "Bench bank app", "bank_app", [], 0, [("bench-bank-app-k1", bank_public)])
    bank = IngestClient(base, "bench-bank-app", "bench-bank-app-k1", bank_private)
    expiry = f"{datetime.now(timezone.utc).year + 1}-12-31T23:59:59Z"
    for n, customer in enumerate(customers, 1):
        response = bank.record_consent(f"bench-{customer}", customer, PARTNER, ["metro_ride"], "bench", expiry)
        if response.status_code not in (200, 201):
            raise SystemExit(f"consent refused: {response.status_code} {response.text[:200]}")
        if n % 100 == 0:
            say(f"\r   consents recorded: {n}/{len(customers)}", end="")
    say("")
    return [IngestClient(base, PARTNER, f"{PARTNER}-k1", private) for _ in range(4)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_platform.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # the last step repeats an earlier rate on a ledger that has grown by the whole ramp (~200k
    # entries before it when the platform keeps up with 1,000/s)
    parser.add_argument(
        "--steps", default=os.environ.get("BENCH_STEPS", "250:20,500:30,1000:60,1200:60,1000:60,500:30")
    )
    parser.add_argument("--replicas", default=os.environ.get("BENCH_REPLICAS", ""))
    parser.add_argument("--ingest-workers", type=int, default=int(os.environ.get("BENCH_INGEST_WORKERS", "2")))
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--label", default=os.environ.get("BENCH_LABEL", "single"))
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument(
        "--sample",
        type=float,
        default=float(os.environ.get("BENCH_SAMPLE", "1")),
        help="fraction of journeys traced (1: every one; else parentbased_traceidratio, decided at ingest)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the bench instance running")
    parser.add_argument("--compare-with", default="", help="label of an earlier run: print the scale-out ratio")
    args = parser.parse_args(argv)
    steps = [(float(r), float(s)) for r, s in (item.split(":") for item in args.steps.split(","))]

    os.environ["CARBON_REPLICAS"] = args.replicas
    os.environ["INGEST_WORKERS"] = str(args.ingest_workers)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if args.sample < 1:  # the standard variables, as an operator would set them on every process
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = str(args.sample)
    instance = Instance("bench", port_offset=3000)
    say(
        f"== platform load bench ({args.label}): fresh instance, replicas [{args.replicas or 'none'}], "
        f"{args.ingest_workers} ingest workers, tracing on (Jaeger), {args.sample:.0%} of journeys sampled"
    )
    instance.reset()
    processes = instance.start(progress=lambda line: say("   " + line))
    meter = CpuMeter(instance, [p.name for p in processes])
    customers = [f"62228888{n:08d}" for n in range(args.customers)]
    clients = setup_partner(instance, customers)[: args.clients]
    while len(clients) < args.clients:
        clients.append(clients[0])
    listener = DecisionListener(instance.amqp_uri)
    listener.start()
    load = Load(clients, customers, uuid.uuid4().hex[:6])

    results = {
        "label": args.label,
        "replicas": args.replicas,
        "ingest_workers": args.ingest_workers,
        "customers": args.customers,
        "clients": args.clients,
        "traces_sampled": args.sample,
        "steps": [],
        "machine": {"cpus": os.cpu_count()},
        "at": datetime.now(timezone.utc).isoformat(),
    }
    for rate, seconds in steps:
        before_keys = set(load.accepted)
        errors_before = dict(load.errors)
        cpu0 = meter.snapshot()
        start, end = load.step(rate, seconds)
        cpu1 = meter.snapshot()
        step_keys = [k for k in load.accepted if k not in before_keys]
        deadline = time.monotonic() + max(30.0, seconds)
        while time.monotonic() < deadline:
            missing = sum(1 for k in step_keys if k not in listener.arrived)
            say(f"\r   waiting for the ledger: {len(step_keys) - missing}/{len(step_keys)} decided", end="")
            if not missing:
                break
            time.sleep(0.5)
        say("")
        latencies = [listener.arrived[k] - load.accepted[k] for k in step_keys if k in listener.arrived]
        row = {
            "offered_per_s": rate,
            "seconds": seconds,
            "accepted_per_s": round(len(step_keys) / seconds, 1),
            "credited_per_s": round(listener.count_between(start, end) / seconds, 1),
            "credited_total": len(latencies),
            "accepted_total": len(step_keys),
            "latency_s": {
                "p50": round(percentile(latencies, 0.50), 3),
                "p95": round(percentile(latencies, 0.95), 3),
                "p99": round(percentile(latencies, 0.99), 3),
            },
            "cpu_percent": CpuMeter.percent(cpu0, cpu1),
            "refused": {k: v - errors_before.get(k, 0) for k, v in load.errors.items() if v > errors_before.get(k, 0)},
        }
        results["steps"].append(row)
        say(
            f"   offered {rate:6.0f}/s  accepted {row['accepted_per_s']:7.1f}/s  credited {row['credited_per_s']:7.1f}/s  "
            f"latency p50 {row['latency_s']['p50']:.2f} s p95 {row['latency_s']['p95']:.2f} s p99 {row['latency_s']['p99']:.2f} s"
        )
        if row["refused"]:
            say("   refused records: " + ", ".join(f"{k} {v}" for k, v in sorted(row["refused"].items())))
        say("   cpu %: " + ", ".join(f"{k} {v}" for k, v in sorted(row["cpu_percent"].items(), key=lambda kv: -kv[1])))
        row["cpu_ms_per_credited"] = cpu_ms_per_credited(row)  # the figure that varies least between runs
        say(f"   platform CPU per credited record {row['cpu_ms_per_credited']} ms (all processes but the clients)")
    results["errors"] = load.errors
    entries = mongo_client(instance.mongo_uri)[f"carbon_{instance.name}_account"]["entries"].estimated_document_count()
    results["ledger_entries"] = entries

    say(f"== idle: {args.idle_seconds:.0f} s with {entries} ledger entries")
    instance.wait_drained(timeout=600, progress=lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    time.sleep(3)  # let the last flushes settle
    cpu0 = meter.snapshot()
    time.sleep(args.idle_seconds)
    idle = CpuMeter.percent(cpu0, meter.snapshot())
    idle.pop("bench-clients", None)
    results["idle_cpu_percent"] = idle
    results["idle_cpu_total_percent"] = round(sum(idle.values()), 1)
    say(
        f"   idle cpu total {results['idle_cpu_total_percent']}% of one core: "
        + ", ".join(f"{k} {v}" for k, v in sorted(idle.items(), key=lambda kv: -kv[1]))
    )
    listener.stopping = True
    once = results["exactly_once"] = listener.exactly_once(load.accepted)
    say(
        f"== exactly once (as a bank consumer saw it): {once['decision_events']} decision events for "
        f"{once['records_decided']} records; {once['repeated_event_ids']} repeats of an event id (absorbed by "
        f"event_id dedupe); {once['records_with_two_event_ids']} records decided under two event ids and "
        f"{once['records_accepted_not_decided']} accepted records never decided (both must be 0)"
    )

    say("== raw rates of the dependencies (same run)")
    results["raw"] = {
        "ferretdb_insert_many_docs_per_s": round(raw_insert_many(instance.mongo_uri)),
        "rabbitmq_confirmed_publish_per_s": round(raw_publish(instance.amqp_uri)),
    }
    best = max(results["steps"], key=lambda r: r["credited_per_s"])
    results["ratios"] = {
        "best_credited_per_s": best["credited_per_s"],
        "credited_vs_ferretdb_insert_many": round(
            best["credited_per_s"] / results["raw"]["ferretdb_insert_many_docs_per_s"], 3
        ),
        "credited_vs_rabbitmq_publish": round(
            best["credited_per_s"] / results["raw"]["rabbitmq_confirmed_publish_per_s"], 3
        ),
    }
    say(
        f"   FerretDB insert_many {results['raw']['ferretdb_insert_many_docs_per_s']} docs/s, RabbitMQ confirmed publish "
        f"{results['raw']['rabbitmq_confirmed_publish_per_s']} msgs/s; best credited {best['credited_per_s']}/s = "
        f"{results['ratios']['credited_vs_ferretdb_insert_many']:.1%} of the store's raw insert rate, "
        f"{results['ratios']['credited_vs_rabbitmq_publish']:.1%} of the broker's"
    )

    # Cost as data grows: each offered rate that was repeated, early and on the grown ledger. Above
    # saturation the credited rate also reflects the backlog the earlier steps left; the platform's
    # CPU per credited record (clients excluded) is the cost itself.
    results["ratios"]["same_rate_late_vs_early"] = {}
    for rate in sorted({r["offered_per_s"] for r in results["steps"]}):
        same_rate = [r for r in results["steps"] if r["offered_per_s"] == rate]
        if len(same_rate) < 2:
            continue
        early, late = same_rate[0], same_rate[-1]
        cost = [cpu_ms_per_credited(r) for r in (early, late)]
        ratio = {
            "credited": round(late["credited_per_s"] / max(early["credited_per_s"], 1e-9), 3),
            "cpu_ms_per_credited_record": cost,
            "cost": round(cost[1] / max(cost[0], 1e-9), 3),
        }
        results["ratios"]["same_rate_late_vs_early"][str(int(rate))] = ratio
        if rate == results["steps"][-1]["offered_per_s"]:
            results["ratios"]["credited_late_vs_early_same_rate"] = ratio["credited"]
        say(
            f"   {rate:.0f}/s offered, early vs after {entries} entries: credited {early['credited_per_s']}/s -> "
            f"{late['credited_per_s']}/s (ratio {ratio['credited']}); platform CPU per credited record "
            f"{cost[0]} -> {cost[1]} ms (ratio {ratio['cost']})"
        )
    if args.compare_with and (RESULTS / f"platform-{args.compare_with}.json").exists():
        other = json.loads((RESULTS / f"platform-{args.compare_with}.json").read_text())
        ratio = best["credited_per_s"] / max(other["ratios"]["best_credited_per_s"], 1e-9)
        results["ratios"][f"best_credited_vs_{args.compare_with}"] = round(ratio, 3)
        say(
            f"   scale-out: best credited {best['credited_per_s']}/s with [{args.replicas}] vs "
            f"{other['ratios']['best_credited_per_s']}/s ({args.compare_with}): ratio {ratio:.2f}"
        )
        # The best of both can be capped by the offered rate (500 offered, ~500 credited each):
        # the first step offered at each rate, side by side, shows where scaling out helps.
        per_rate = {}
        for mine, theirs in zip(results["steps"], other["steps"]):
            if mine["offered_per_s"] == theirs["offered_per_s"] and mine["offered_per_s"] not in per_rate:
                per_rate[mine["offered_per_s"]] = round(mine["credited_per_s"] / max(theirs["credited_per_s"], 1e-9), 3)
                say(
                    f"   at {mine['offered_per_s']:.0f}/s offered: credited {mine['credited_per_s']}/s vs "
                    f"{theirs['credited_per_s']}/s ({args.compare_with}): ratio {per_rate[mine['offered_per_s']]:.2f}"
                )
        results["ratios"][f"credited_vs_{args.compare_with}_by_offered_rate"] = {
            f"{k:.0f}": v for k, v in per_rate.items()
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"platform-{args.label}.json"
    out.write_text(json.dumps(results, indent=2))
    chart(results, RESULTS / f"platform-{args.label}.png")
    say(f"   results: {out}  chart: {out.with_suffix('.png')}")
    if not args.keep:
        instance.stop()
    return 0


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = results["steps"]
    offered = [s["offered_per_s"] for s in steps]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(offered, offered, "k:", label="offered")
    top.plot(offered, [s["accepted_per_s"] for s in steps], "o-", label="accepted (HTTP 2xx)")
    top.plot(offered, [s["credited_per_s"] for s in steps], "s-", label="credited (account event)")
    top.set_ylabel("records/s")
    top.legend()
    top.set_title(f"platform load ({results['label']}, replicas: {results['replicas'] or 'none'})")
    for q in ("p50", "p95", "p99"):
        bottom.plot(offered, [s["latency_s"][q] for s in steps], "o-", label=q)
    bottom.set_yscale("log")
    bottom.set_ylabel("2xx → account event (s)")
    bottom.set_xlabel("offered records/s")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
