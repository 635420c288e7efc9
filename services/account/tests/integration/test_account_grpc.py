"""The gRPC API served by the real `python -m account.grpc_server` process (incl. health).
Transport security and callers: test_account_grpc_security.py (which reuses `grpc_process`)."""

import os
import subprocess
import sys

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account import ledger
from carbon_dev.testing import free_port, wait_until


@pytest.fixture
def grpc_process(repo, tmp_path):
    """start(**env) runs `python -m account.grpc_server` on free loopback ports against the test
    database and returns once /health answers; its JSON log goes to a file. Stopped afterwards."""
    started = []

    def start(**extra_env):
        grpc_port, http_port = free_port(), free_port()
        env = {
            **os.environ,
            "MONGO_URI": "mongodb://127.0.0.1:27017/",
            "MONGO_DATABASE": repo.db.name,
            "GRPC_ADDRESS": f"127.0.0.1:{grpc_port}",
            "METRICS_ADDRESS": f"127.0.0.1:{http_port}",
            "OTEL_SDK_DISABLED": "true",
            **extra_env,
        }
        log_path = tmp_path / f"account-grpc-{len(started)}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "account.grpc_server"], env=env, stdout=subprocess.DEVNULL, stderr=log_file
            )
        started.append(process)

        def healthy():
            try:
                return requests.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200
            except requests.ConnectionError:
                assert process.poll() is None, log_path.read_text()
                return False

        wait_until(healthy, timeout=30, message="account gRPC server ready")
        return {
            "grpc": f"127.0.0.1:{grpc_port}",
            "http": f"http://127.0.0.1:{http_port}",
            "log": log_path,
            "process": process,
        }

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def server(grpc_process, ops, make_reduction):
    ops.open_account("pid-ent", "enterprise")
    for grams in (100, 250):
        ops.credit(make_reduction(grams=grams))
    return grpc_process()


def call(address, fn, credentials=None, options=()):
    """grpc blocks the eventlet hub in the test process: run calls on a real OS thread."""
    from eventlet import tpool

    def run():
        channel = (
            grpc.secure_channel(address, credentials, options)
            if credentials
            else grpc.insecure_channel(address, options)
        )
        with channel:
            return fn(channel)

    return tpool.execute(run)


def test_health_and_metrics(server):
    status = call(
        server["grpc"],
        lambda ch: (
            health_pb2_grpc.HealthStub(ch)
            .Check(health_pb2.HealthCheckRequest(service="carbon.account.v1.AccountService"), timeout=5)
            .status
        ),
    )
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert "carbon_account_grpc_calls_total" in requests.get(server["http"] + "/metrics", timeout=5).text
    # no TLS vars, no callers file: allowed on loopback only, and said so (docs/grpc.md)
    assert "account gRPC serving WITHOUT TLS" in server["log"].read_text()


def test_balance_entries_statement_and_totals(server):
    ref = pb.AccountRef(owner_pid="pid-alice")

    def read(ch):
        stub = pb_grpc.AccountServiceStub(ch)
        month = ledger.utc_now_iso()[:7]
        first = stub.ListEntries(pb.ListEntriesRequest(account=ref, page_size=2), timeout=5)
        rest = stub.ListEntries(
            pb.ListEntriesRequest(account=ref, page_size=2, page_token=first.next_page_token), timeout=5
        )
        return (
            stub.GetBalance(ref, timeout=5),
            first,
            rest,
            stub.GetStatement(pb.GetStatementRequest(account=ref, month=month), timeout=5),
            stub.GetTotals(pb.GetTotalsRequest(), timeout=5),
            stub.ListAccounts(pb.ListAccountsRequest(), timeout=5),
        )

    balance, first, rest, statement, totals, accounts = call(server["grpc"], read)
    assert balance.balance_grams == 350 and balance.as_of_seq == 3 and balance.status == "open"
    assert [e.type for e in first.entries] == ["credit", "credit"] and first.entries[0].grams == 250
    assert [e.type for e in rest.entries] == ["opened"] and rest.next_page_token == ""
    assert first.entries[0].methodology_version == "1.0.0"
    assert statement.closing_balance == 350 and statement.scenarios[0].credited_count == 2
    assert (totals.accounts, totals.balance_grams) == (2, 350)
    assert {a.kind for a in accounts.accounts} == {"individual", "enterprise", "pool"}


def test_redeem_over_grpc_is_idempotent_and_never_overdraws(server, ops, repo):
    ref = pb.AccountRef(owner_pid="pid-alice")

    def redeem(ch):
        stub = pb_grpc.AccountServiceStub(ch)
        req = pb.RedeemRequest(account=ref, grams=300, request_key="grpc-1", reward_id="tea")
        first, again = stub.Redeem(req, timeout=10), stub.Redeem(req, timeout=10)
        with pytest.raises(grpc.RpcError) as overdraw:
            stub.Redeem(pb.RedeemRequest(account=ref, grams=51, request_key="grpc-2"), timeout=10)
        with pytest.raises(grpc.RpcError) as unknown:
            stub.GetBalance(pb.AccountRef(owner_pid="nobody"), timeout=5)
        with pytest.raises(grpc.RpcError) as bad:
            stub.Redeem(pb.RedeemRequest(account=ref, grams=0, request_key="grpc-3"), timeout=10)
        return first, again, overdraw.value, unknown.value, bad.value, stub.GetTotals(pb.GetTotalsRequest(), timeout=5)

    first, again, overdraw, unknown, bad, totals = call(server["grpc"], redeem)
    assert (first.entry.grams, first.entry.balance_after, first.replayed) == (-300, 50, False)
    assert again.replayed and again.entry.entry_id == first.entry.entry_id
    assert overdraw.code() == grpc.StatusCode.FAILED_PRECONDITION and "insufficient_balance" in overdraw.details()
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and bad.details().startswith("invalid_grams")
    # debited at once; the pool receives the grams when the account service's relay settles
    assert (totals.redeemed_grams, totals.pool_grams, totals.balance_grams) == (300, 0, 50)
    ops.settle_redemptions([repo.get_entry(first.entry.entry_id)])
    settled = call(
        server["grpc"], lambda ch: pb_grpc.AccountServiceStub(ch).GetTotals(pb.GetTotalsRequest(), timeout=5)
    )
    assert (settled.redeemed_grams, settled.pool_grams, settled.balance_grams) == (300, 300, 50)
