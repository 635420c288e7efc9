"""Benchmark of the ingest service: SM2 verify cost and signed-request throughput.

    .venv/bin/python tests/bench/bench_ingest.py [--seconds 8] [--clients 4] [--workers 2]

Runs a real gunicorn (gthread) against FerretDB and RabbitMQ, in a throwaway vhost and
database (both removed afterwards), first with the fast crypto backend (cryptography +
gmssl-pyx, what production runs) and then with gmssl 3.2.2's pure-Python SM2 (reference),
so the ratio shows what SM2 costs on the hot path. Prints figures and ratios.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from carbon_common import gm, topology
from carbon_common.gm import _reference, backend
from carbon_common.mongo import client as mongo_client
from carbon_dev.testing import free_port

from ingest import signing
from ingest.cli.admin import AdminClient
from ingest.sdk.client import IngestClient

ROOT = Path(__file__).resolve().parents[2]
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/?retryWrites=false")
RABBIT_API = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
CUSTOMERS = [f"62229999{n:08d}" for n in range(200)]


def say(text: str) -> None:
    print(text, flush=True)


def rate(fn, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - started)


def bench_verify(seconds: float) -> dict:
    private, public = gm.generate_sm2_keypair()
    message = signing.string_to_sign("POST", "/v1/records", "1795595400", "bench-nonce-0123456789", b"{}" * 200)
    signature = gm.sm2_sign(private, message)
    out = {}
    for name, impl in (("fast", backend.active), ("gmssl", _reference)):
        saved, backend.active = backend.active, impl
        try:
            assert gm.sm2_verify(public, message, signature)
            out[name] = rate(lambda: gm.sm2_verify(public, message, signature), seconds / 2)
            out[name + "_sign"] = rate(lambda: gm.sm2_sign(private, message), seconds / 4)
        finally:
            backend.active = saved
        say(
            f"  SM2 {name:5s}: verify {out[name]:8.0f}/s ({1000 / out[name]:.2f} ms)   sign {out[name + '_sign']:8.0f}/s"
        )
    return out


class Stack:
    """A throwaway vhost + database + gunicorn running ingest."""

    def __init__(self, workers: int, gm_backend: str):
        self.vhost = "bench_ingest_" + uuid.uuid4().hex[:8]
        self.db = "bench_ingest_" + uuid.uuid4().hex[:8]
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_hex(8)
        requests.put(f"{RABBIT_API}/api/vhosts/{self.vhost}", timeout=10).raise_for_status()
        requests.put(
            f"{RABBIT_API}/api/permissions/{self.vhost}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            timeout=10,
        ).raise_for_status()
        amqp = f"pyamqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        topology.declare(amqp)
        private, public = gm.generate_sm2_keypair()
        env = {
            **os.environ,
            "AMQP_URI": amqp,
            "MONGO_URI": MONGO_URI,
            "MONGO_DATABASE": self.db,
            "PSEUDONYM_KEY": secrets.token_hex(32),
            "PLATFORM_SM2_PRIVATE_KEY": private,
            "PLATFORM_SM2_PUBLIC_KEY": public,
            "CONTACT_SM4_KEY": secrets.token_hex(16),
            "ADMIN_TOKEN": self.admin_token,
            "INGEST_BIND": f"127.0.0.1:{self.port}",
            "INGEST_WORKERS": str(workers),
            "OTEL_SDK_DISABLED": "true",
            "CARBON_GM_BACKEND": gm_backend,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "services/ingest/gunicorn.conf.py"),
                "ingest.app:create_app()",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.base + "/readyz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("ingest did not become ready")
            time.sleep(0.2)

    def actors(self, clients: int):
        admin = AdminClient(self.base, self.admin_token)
        bank_private, bank_public = gm.generate_sm2_keypair()
        admin.register(
            "bench-bank", "Bench bank", "bank_app", [], 0, [("bench-bank-k1", bank_public)]
        ).raise_for_status()
        private, public = gm.generate_sm2_keypair()
        admin.register(
            "bench-metro", "Bench metro", "data_partner", ["metro_ride"], 0, [("bench-metro-k1", public)]
        ).raise_for_status()
        bank = IngestClient(self.base, "bench-bank", "bench-bank-k1", bank_private)
        for n, customer in enumerate(CUSTOMERS):
            bank.record_consent(
                f"c{n}",
                customer,
                "bench-metro",
                ["metro_ride"],
                "bench",
                (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        return [IngestClient(self.base, "bench-metro", "bench-metro-k1", private) for _ in range(clients)]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        mongo_client(MONGO_URI).drop_database(self.db)
        requests.delete(f"{RABBIT_API}/api/vhosts/{self.vhost}", timeout=10)


def records(prefix: str, count: int) -> list:
    occurred = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # after the consents: inside them
    return [
        {
            "record_id": f"{prefix}-{n}",
            "customer_ref": CUSTOMERS[n % len(CUSTOMERS)],
            "scenario": "metro_ride",
            "occurred_at": occurred,
            "activity": {"distance_km": "8.5", "city": "shenzhen"},
        }
        for n in range(count)
    ]


def drive(clients, batch: int, seconds: float, label: str) -> tuple[float, float]:
    """Parallel clients posting batches for `seconds`; returns (requests/s, records/s)."""
    done = {"requests": 0, "records": 0}
    prefix = uuid.uuid4().hex[:8]
    lock, stop = threading.Lock(), time.monotonic() + seconds

    def loop(n, client):
        i = 0
        while time.monotonic() < stop:
            response = client.send_batch(records(f"{prefix}-{n}-{i}", batch))
            assert response.status_code == 200, response.text[:300]
            accepted = sum(r["outcome"] == "accepted" for r in response.json()["results"])
            with lock:
                done["requests"] += 1
                done["records"] += accepted
            i += 1

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(n, c), daemon=True) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        sys.stdout.write(f"\r    {label}: {done['requests']} requests, {done['records']} records accepted")
        sys.stdout.flush()
    elapsed = time.monotonic() - started
    print()
    return done["requests"] / elapsed, done["records"] / elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    say(f"== SM2 signature cost (gm fast backend: {gm.BACKEND})")
    verify = bench_verify(args.seconds)
    say(
        f"  ratio fast/gmssl: verify x{verify['fast'] / verify['gmssl']:.0f}, sign x{verify['fast_sign'] / verify['gmssl_sign']:.0f}"
    )
    results = {}
    for gm_backend in ("fast", "reference"):
        say(
            f"== signed-request throughput, gunicorn {args.workers} workers x 4 threads, {args.clients} clients, "
            f"SM2 backend {gm_backend}"
        )
        stack = Stack(args.workers, gm_backend)
        try:
            clients = stack.actors(args.clients)
            results[gm_backend] = {
                "single": drive(clients, 1, args.seconds, f"{gm_backend} 1-record requests"),
                "batch": drive(clients, 100, args.seconds, f"{gm_backend} 100-record batches"),
            }
        finally:
            stack.close()
        single, batch = results[gm_backend]["single"], results[gm_backend]["batch"]
        say(f"  1-record requests: {single[0]:7.0f} signed requests/s")
        say(f"  100-record batches: {batch[0]:7.1f} requests/s = {batch[1]:7.0f} records/s")
    fast, ref = results["fast"], results["reference"]
    say("== ratios")
    say(f"  signed requests/s fast vs gmssl SM2: x{fast['single'][0] / ref['single'][0]:.1f}")
    say(f"  records/s (batches) fast vs gmssl SM2: x{fast['batch'][1] / ref['batch'][1]:.1f}")
    say(f"  SM2 verify share of a 1-record request (fast): {100 * fast['single'][0] / verify['fast']:.1f}% of one core")
    say(f"  records/s vs a CITIC-sized bank's ~2,000/s peak: {fast['batch'][1] / 2000:.2f}x")
    print(json.dumps({"verify_per_s": verify, "throughput": results}, default=lambda x: round(x, 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
