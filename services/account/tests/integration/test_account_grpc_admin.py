"""OpenAccount and SetStatus over the real `python -m account.grpc_server` process: idempotency,
the `admin` permission and the audit of admin calls; ListEntries time filters with offsets;
GetTotals without the pool. Bad input for these methods: test_account_grpc_bad_input.py."""

import hashlib
import json
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from carbon_common.accounts import pool_owner_for

from account import ledger
from carbon_dev.testing import wait_until

import test_account_grpc

call = test_account_grpc.call
grpc_process = test_account_grpc.grpc_process  # the server-process fixture, shared

READ_TOKEN, ADMIN_TOKEN = "statements-Vb7Qw2Lk9Tz4", "ops-console-Jr5Xp8Mn1Hc3"
ALICE = pb.AccountRef(owner_pid="pid-alice")


def stub_call(address, fn, metadata=()):
    """fn(stub, metadata) on a fresh channel; a refusal comes back as (code, details)."""

    def run(channel):
        try:
            return fn(pb_grpc.AccountServiceStub(channel), list(metadata))
        except grpc.RpcError as error:
            return error.code(), error.details()

    return call(address, run)


def admin_lines(log_path) -> list[dict]:
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "account.grpc.audit"]


def counts(repo):
    return repo.entries.count_documents({}), repo.outbox.count_documents({})


@pytest.fixture
def alice(ops, make_reduction):
    ops.pool_account()
    for grams in (100, 250):
        ops.credit(make_reduction(grams=grams))


def test_open_account_is_idempotent_and_keeps_the_alias_off_the_ledger(grpc_process, repo, alice):
    server = grpc_process()
    before = counts(repo)

    def open_twice(stub, _):
        request = pb.OpenAccountRequest(owner_pid="ent-42", kind="enterprise", alias="Zhang San 张三")
        return stub.OpenAccount(request, timeout=10), stub.OpenAccount(request, timeout=10)

    first, again = stub_call(server["grpc"], open_twice)
    account_id = ledger.account_id_for("ent-42")
    assert (first.account.account_id, first.account.kind, first.account.status) == (account_id, "enterprise", "open")
    assert first.account.balance_grams == 0 and again == first
    assert counts(repo) == (before[0] + 1, before[1] + 1)  # one "opened" entry, its outbox marker
    assert repo.get_account(account_id)["alias"] == "Zhang San 张三"
    opened = repo.entries.find_one({"account_id": account_id})
    assert "Zhang San" not in json.dumps(opened, ensure_ascii=False)

    default = stub_call(
        server["grpc"], lambda s, _: s.OpenAccount(pb.OpenAccountRequest(owner_pid="pid-bo"), timeout=10)
    )
    assert default.account.kind == "individual"
    mismatch = stub_call(
        server["grpc"], lambda s, _: s.OpenAccount(pb.OpenAccountRequest(owner_pid="ent-42"), timeout=10)
    )
    assert mismatch[0] == grpc.StatusCode.INVALID_ARGUMENT and mismatch[1].startswith("kind_mismatch:")


def test_freeze_unfreeze_close_over_grpc(grpc_process, repo, alice):
    server = grpc_process()

    def change(status, key, reason=""):
        request = pb.SetStatusRequest(account=ALICE, status=status, request_key=key, reason=reason)
        return lambda stub, _: stub.SetStatus(request, timeout=10)

    frozen = stub_call(server["grpc"], change("frozen", "ops-1", "fraud_check"))
    assert (frozen.entry.type, frozen.entry.code, frozen.replayed) == ("status_changed", "fraud_check", False)
    entries_now = counts(repo)[0]
    again = stub_call(server["grpc"], change("frozen", "ops-1", "fraud_check"))
    assert again.replayed and again.entry.entry_id == frozen.entry.entry_id and counts(repo)[0] == entries_now
    reused = stub_call(server["grpc"], change("closed", "ops-1"))
    assert reused[0] == grpc.StatusCode.ALREADY_EXISTS and reused[1].startswith("request_key_reused:")

    def balance_and_redeem(stub, _):
        status = stub.GetBalance(ALICE, timeout=5).status
        try:
            stub.Redeem(pb.RedeemRequest(account=ALICE, grams=10, request_key="r-1"), timeout=10)
        except grpc.RpcError as error:
            return status, error.code(), error.details()

    status, code, details = stub_call(server["grpc"], balance_and_redeem)
    assert status == "frozen" and code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("account_not_open")

    unfrozen = stub_call(server["grpc"], change("open", "ops-2"))
    assert unfrozen.entry.code == "open" and unfrozen.entry.seq == frozen.entry.seq + 1
    assert stub_call(server["grpc"], change("closed", "ops-3", "customer_left")).entry.code == "customer_left"
    reopened = stub_call(server["grpc"], change("open", "ops-4"))
    assert reopened[0] == grpc.StatusCode.FAILED_PRECONDITION and reopened[1].startswith("account_not_open")
    assert stub_call(server["grpc"], lambda s, _: s.GetAccount(ALICE, timeout=5).status) == "closed"

    # open mode (no callers file): every admin call is audited as "anonymous", whatever its outcome
    lines = wait_until(lambda: len(admin_lines(server["log"])) >= 6 and admin_lines(server["log"]), message="audit")
    assert [(a["caller_id"], a["grpc_method"].rsplit("/", 1)[1], a["grpc_code"]) for a in lines] == [
        ("anonymous", "SetStatus", "OK"),
        ("anonymous", "SetStatus", "OK"),
        ("anonymous", "SetStatus", "ALREADY_EXISTS"),
        ("anonymous", "SetStatus", "OK"),
        ("anonymous", "SetStatus", "OK"),
        ("anonymous", "SetStatus", "FAILED_PRECONDITION"),
    ]
    assert all(a["msg"] == "grpc admin call" and a["level"] == "info" for a in lines)
    assert "pid-alice" not in server["log"].read_text() and "fraud_check" not in server["log"].read_text()


def test_admin_methods_need_the_admin_permission(grpc_process, repo, alice, tmp_path):
    def sha(token):
        return hashlib.sha256(token.encode()).hexdigest()

    callers = tmp_path / "callers.json"
    callers.write_text(
        json.dumps(
            {
                "callers": {
                    "statements": {"token_sha256": sha(READ_TOKEN), "methods": ["read", "redeem"]},
                    "ops-console": {"token_sha256": sha(ADMIN_TOKEN), "methods": ["admin"]},
                }
            }
        )
    )
    server = grpc_process(GRPC_CALLERS_FILE=str(callers))  # plaintext tokens: loopback only
    before = counts(repo)
    as_reader = [("authorization", f"Bearer {READ_TOKEN}")]
    as_admin = [("authorization", f"Bearer {ADMIN_TOKEN}")]
    open_request = pb.OpenAccountRequest(owner_pid="pid-new")
    freeze = pb.SetStatusRequest(account=ALICE, status="frozen", request_key="k-1")

    def refused(stub, md):
        out = []
        for rpc, request in ((stub.OpenAccount, open_request), (stub.SetStatus, freeze)):
            try:
                rpc(request, timeout=10, metadata=md)
            except grpc.RpcError as error:
                out.append((error.code(), error.details().split(":")[0]))
        return out

    assert (
        stub_call(server["grpc"], refused, as_reader) == [(grpc.StatusCode.PERMISSION_DENIED, "method_not_allowed")] * 2
    )
    assert counts(repo) == before
    opened = stub_call(server["grpc"], lambda s, md: s.OpenAccount(open_request, timeout=10, metadata=md), as_admin)
    assert opened.account.owner_pid == "pid-new"
    denied = stub_call(server["grpc"], lambda s, md: s.GetBalance(ALICE, timeout=5, metadata=md), as_admin)
    assert denied[0] == grpc.StatusCode.PERMISSION_DENIED  # admin does not imply read
    lines = wait_until(lambda: len(admin_lines(server["log"])) >= 4 and admin_lines(server["log"]), message="audit")
    assert [(a["caller_id"], a["grpc_method"].rsplit("/", 1)[1], a["grpc_code"]) for a in lines] == [
        ("statements", "OpenAccount", "PERMISSION_DENIED"),
        ("statements", "SetStatus", "PERMISSION_DENIED"),
        ("ops-console", "OpenAccount", "OK"),
        ("ops-console", "GetBalance", "PERMISSION_DENIED"),
    ]


def test_list_entries_time_filters_honour_the_offset(grpc_process, alice):
    """posted_at is stored in UTC: a bound given with an offset is converted, not compared as text."""
    server = grpc_process()
    now = datetime.now(timezone.utc)

    def rfc3339(moment, hours):
        return moment.astimezone(timezone(timedelta(hours=hours))).isoformat()

    def count(**bounds):
        request = pb.ListEntriesRequest(account=ALICE, **bounds)
        return stub_call(server["grpc"], lambda s, _: len(s.ListEntries(request, timeout=5).entries))

    assert count() == 3  # opened, two credits
    assert count(posted_from=rfc3339(now - timedelta(minutes=10), 8)) == 3
    assert count(posted_from=rfc3339(now + timedelta(minutes=10), -5)) == 0
    assert count(posted_to=rfc3339(now - timedelta(minutes=10), 8)) == 0
    assert count(posted_to=rfc3339(now + timedelta(minutes=10), -5)) == 3
    window = {
        "posted_from": rfc3339(now - timedelta(minutes=10), 14),
        "posted_to": rfc3339(now + timedelta(minutes=10), -12),
    }
    assert count(**window) == 3


def test_totals_exclude_the_pool(grpc_process, ops, alice):
    ops.open_account("pid-ent", "enterprise")
    redemption, _ = ops.redeem(ledger.account_id_for("pid-alice"), 100, "r-1", "tea")
    ops.settle(redemption["_id"])  # what the account service's relay does (ADR 0005 §3)
    shard = pool_owner_for(redemption["_id"])  # the pool chain it settled to
    server = grpc_process()

    def totals(stub, _):
        return (
            stub.GetTotals(pb.GetTotalsRequest(), timeout=5),
            stub.GetTotals(pb.GetTotalsRequest(account=pb.AccountRef(owner_pid=shard)), timeout=5),
            stub.GetTotals(pb.GetTotalsRequest(account=ALICE), timeout=5),
        )

    platform, pool, alice_totals = stub_call(server["grpc"], totals)
    assert (platform.accounts, platform.credited_grams, platform.redeemed_grams, platform.balance_grams) == (
        2,
        350,
        100,
        250,
    )
    assert platform.pool_grams == 100
    assert (pool.accounts, pool.credited_grams, pool.redeemed_grams, pool.balance_grams, pool.pool_grams) == (
        0,
        0,
        0,
        0,
        100,
    )
    assert (alice_totals.accounts, alice_totals.balance_grams, alice_totals.pool_grams) == (1, 250, 0)
