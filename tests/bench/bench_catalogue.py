"""Catalogue redemptions through the real gRPC server on FerretDB: 50 concurrent customers.

    MONGO_URI=mongodb://127.0.0.1:27017/ .venv/bin/python tests/bench/bench_catalogue.py
        [--customers 50] [--redemptions 20] [--workers 64]

Starts `python -m account.grpc_server` on free loopback ports against a throwaway database
(dropped afterwards), seeds the customers' grams in-process, then:

  0. the reference: every customer makes `--redemptions` plain Redeem calls (the ledger's
     debit alone), all at once;
  1. throughput: every customer redeems `--redemptions` units of one item (stock and a daily
     per-customer limit both claimed, the item's fulfilment "none"), all customers at once, one
     OS thread and one channel each: redemptions/s, latency, claim conflicts and ledger append
     conflicts per redemption (read from the server's /metrics);
  2. the race: the same customers want the last 10 units of another item at once: exactly 10
     succeed, the others are refused out_of_stock.

Then checks the invariants (every balance = the sum of its entries, each paid exactly what it
got, one stock claim per redemption, the limit never exceeded) and prints figures and ratios.
Target on the 2-core dev machine: >= 300 redemptions/s (docs/catalogue.md records the runs).
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import grpc
import requests

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account import ledger
from account.operations import LedgerOperations
from account.repository import Repository
from account.tiers import Tiers
from account.catalogue.store import CatalogueStore
from carbon_common.mongo import client
from carbon_dev import payloads
from carbon_dev.testing import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
PRICE = 10
TARGET = 300.0


def say(text: str) -> None:
    print(text, flush=True)


def start_server(database: str, workers: int, log_path: Path) -> tuple[subprocess.Popen, str, str]:
    grpc_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "MONGO_URI": MONGO_URI,
        "MONGO_DATABASE": database,
        "GRPC_ADDRESS": f"127.0.0.1:{grpc_port}",
        "METRICS_ADDRESS": f"127.0.0.1:{http_port}",
        "GRPC_MAX_WORKERS": str(workers),
        "OTEL_SDK_DISABLED": "true",
        "LOG_LEVEL": "WARNING",
    }
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "account.grpc_server"], env=env, stdout=subprocess.DEVNULL, stderr=log_file
        )
    http = f"http://127.0.0.1:{http_port}"

    def ready():
        assert process.poll() is None, log_path.read_text()
        try:
            return requests.get(http + "/health", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(ready, timeout=60, message="account gRPC server ready")
    return process, f"127.0.0.1:{grpc_port}", http


def counter(http: str, name: str) -> float:
    total = 0.0
    for line in requests.get(http + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_clients(address: str, customers: list[str], make_requests, method: str = "RedeemItem") -> tuple[list, float]:
    """One OS thread and one channel per customer, all started together -> ([(status, seconds)], wall)."""
    results: list = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(customers) + 1)

    def client_thread(pid):
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.AccountServiceStub(channel)
            grpc.channel_ready_future(channel).result(timeout=30)
            mine = []
            barrier.wait()
            for request in make_requests(pid):
                started = time.perf_counter()
                try:
                    getattr(stub, method)(request, timeout=120)
                    mine.append(("OK", time.perf_counter() - started, pid))
                except grpc.RpcError as error:
                    mine.append((error.details().split(":", 1)[0], time.perf_counter() - started, pid))
            with lock:
                results.extend(mine)

    threads = [threading.Thread(target=client_thread, args=(pid,), daemon=True) for pid in customers]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--redemptions", type=int, default=20, help="per customer, in the throughput phase")
    parser.add_argument("--workers", type=int, default=64, help="GRPC_MAX_WORKERS of the server (its default)")
    args = parser.parse_args()
    name = f"bench_catalogue_{uuid.uuid4().hex[:8]}"
    db = client(MONGO_URI)[name]
    customers = [f"pid-bench-{n:03d}" for n in range(args.customers)]
    total = args.customers * args.redemptions
    say(
        f"bench_catalogue: {args.customers} customers x {args.redemptions} redemptions through the gRPC server "
        f"({args.workers} workers), then {args.customers} customers racing for the last 10 units; database {name}"
    )
    process = None
    try:
        repo = Repository(db)
        repo.ensure_indexes()
        ops = LedgerOperations(repo, Tiers())
        ops.pool_account()
        grams = PRICE * (2 * args.redemptions + 1) + 1000
        ops.credit_many([payloads.reduction(pid, n, grams) for n, pid in enumerate(customers)])
        process, address, http = start_server(name, args.workers, Path(f"/tmp/{name}.log"))
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.AccountServiceStub(channel)
            for spec in (
                pb.CatalogueItemSpec(
                    item_id="bench-coupon",
                    title="Bench coupon",
                    kind="coupon",
                    price_grams=PRICE,
                    stock=total + 1000,
                    limit_count=args.redemptions,
                    limit_period="day",
                ),
                pb.CatalogueItemSpec(
                    item_id="last-units", title="Last units", kind="voucher", price_grams=PRICE, stock=10
                ),
            ):
                stub.PutCatalogueItem(pb.PutCatalogueItemRequest(item=spec, request_key="bench"), timeout=10)

        # 0. the reference: plain Redeem of the same grams (the ledger's debit alone)
        def plain(pid):
            return [
                pb.RedeemRequest(account=pb.AccountRef(owner_pid=pid), grams=PRICE, request_key=f"p-{k}")
                for k in range(args.redemptions)
            ]

        reference, reference_seconds = run_clients(address, customers, plain, method="Redeem")
        assert all(r[0] == "OK" for r in reference), {r[0] for r in reference}
        reference_rate = len(reference) / reference_seconds

        # 1. throughput
        claim_before = counter(http, "carbon_catalogue_claim_conflicts_total")
        append_before = counter(http, "carbon_account_append_conflicts_total")

        def coupons(pid):
            return [
                pb.RedeemItemRequest(account=pb.AccountRef(owner_pid=pid), item_id="bench-coupon", request_key=f"c-{k}")
                for k in range(args.redemptions)
            ]

        results, seconds = run_clients(address, customers, coupons)
        ok = [r for r in results if r[0] == "OK"]
        latencies = sorted(r[1] for r in ok)
        claim_conflicts = counter(http, "carbon_catalogue_claim_conflicts_total") - claim_before
        append_conflicts = counter(http, "carbon_account_append_conflicts_total") - append_before
        assert len(ok) == total, f"refused: {sorted({r[0] for r in results if r[0] != 'OK'})}"
        rate = len(ok) / seconds

        # 2. the race for the last 10 units
        def last(pid):
            return [
                pb.RedeemItemRequest(account=pb.AccountRef(owner_pid=pid), item_id="last-units", request_key="last")
            ]

        race, race_seconds = run_clients(address, customers, last)
        winners = {r[2] for r in race if r[0] == "OK"}
        refusals = {r[0] for r in race if r[0] != "OK"}
        assert len(winners) == min(10, args.customers), f"{len(winners)} won the last 10 units"
        assert refusals <= {"out_of_stock"}, refusals

        # invariants
        store = CatalogueStore(db)
        for pid in customers:
            account_id = ledger.account_id_for(pid)
            entries = repo.account_entries(account_id)
            paid = PRICE * (2 * args.redemptions + (1 if pid in winners else 0))
            assert sum(e["grams"] for e in entries) == entries[-1]["balance_after"] == grams - paid, pid
        assert store.claims.count_documents({"_id": {"$regex": "^bench-coupon:s"}}) == total
        assert store.claims.count_documents({"_id": {"$regex": "^last-units:s"}}) == len(winners)
        assert store.redemptions.count_documents({}) == total + len(winners)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        client(MONGO_URI).drop_database(name)

    say("invariants hold: balance = sum of entries, each paid for what it got, one stock claim per redemption")
    say(f"  {'redemptions':28} {total} in {seconds:.1f} s")
    say(f"  {'redemptions_per_second':28} {rate:.1f}  (target {TARGET:.0f}: {rate / TARGET:.2f}x)")
    say(
        f"  {'plain Redeem per second':28} {reference_rate:.1f}  (catalogue / plain: {rate / reference_rate:.2f}; "
        "the ledger's debit alone, same customers)"
    )
    say(
        f"  {'latency_ms p50 / p95 / max':28} {statistics.median(latencies) * 1000:.0f} / "
        f"{latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} / {latencies[-1] * 1000:.0f}"
    )
    say(f"  {'claim_conflicts':28} {claim_conflicts:.0f}  ({claim_conflicts / total:.2f} per redemption)")
    say(f"  {'ledger_append_conflicts':28} {append_conflicts:.0f}  ({append_conflicts / total:.2f} per redemption)")
    say(
        f"  {'race for the last 10':28} {len(winners)} redeemed, {len(race) - len(winners)} out_of_stock "
        f"in {race_seconds:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
