"""Bad input against the real `python -m account.grpc_server` process on FerretDB (issue 21).

For every AccountService method a table of (request, status code, error code): each request is
refused with that code, the error code first in the details ("<code>: …"), the answer stays
small whatever was sent (no echo: details < 300 bytes for a 20 KB or 1 MB field), and NOTHING
was written (accounts, entries, states, claims and outbox counted before and after each call).
A test of METHODS in this file fails when a method of the proto has no table here.
The rules themselves: account/grpc_validation.py (unit tests: unit/test_grpc_validation.py)."""

import grpc
import pytest

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account import ledger
from account.operations import LedgerOperations
from account.tiers import Tiers
from carbon_common.accounts import POOL_OWNERS

import test_account_grpc

call = test_account_grpc.call
grpc_process = test_account_grpc.grpc_process  # the server-process fixture, shared

IA, NF, FP, AE = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
)
MARK = "Zq9"  # what the big values are made of: never in an answer or the server log
BIG = MARK * 7000  # 21 KB
HUGE = MARK * 350_000  # 1 MB (under gRPC's default 4 MB message limit)
UNKNOWN_ID = "acc_" + "0" * 32
ALICE = ledger.account_id_for("pid-alice")
ENT = ledger.account_id_for("pid-ent")
CLOSED = ledger.account_id_for("pid-closed")
POOL = ledger.account_id_for(ledger.POOL_OWNER)


def ref(**kw):
    return pb.AccountRef(**kw)


# Bad account references: every method that names an account gets each of these.
BAD_REFS = [
    (ref(), IA, "missing_account"),
    (ref(account_id=BIG), IA, "invalid_account_id"),
    (ref(account_id="acc_" + "G" * 32), IA, "invalid_account_id"),
    (ref(account_id=ALICE.upper()), IA, "invalid_account_id"),
    (ref(account_id=ALICE + "\n"), IA, "invalid_account_id"),
    (ref(owner_pid=BIG), IA, "invalid_owner_pid"),
    (ref(owner_pid=""), IA, "invalid_owner_pid"),
    (ref(owner_pid="pid alice"), IA, "invalid_owner_pid"),
    (ref(owner_pid="pid-\u0430lice"), IA, "invalid_owner_pid"),  # a Cyrillic a
    (ref(owner_pid="p" * 129), IA, "invalid_owner_pid"),
    (ref(account_id=UNKNOWN_ID), NF, "account_not_found"),
    (ref(owner_pid="nobody"), NF, "account_not_found"),
]


def with_refs(make):
    return [(make(r), code, error) for r, code, error in BAD_REFS]


def entries(**kw):
    return pb.ListEntriesRequest(account=ref(owner_pid="pid-alice"), **kw)


def redeem(grams=10, request_key="r-new", reward_id="tea", account=None):
    return pb.RedeemRequest(
        account=account or ref(owner_pid="pid-alice"), grams=grams, request_key=request_key, reward_id=reward_id
    )


def set_status(status="frozen", request_key="s-new", reason="", account=None):
    return pb.SetStatusRequest(
        account=account or ref(owner_pid="pid-alice"), status=status, request_key=request_key, reason=reason
    )


def open_account(owner_pid="pid-new", kind="", alias=""):
    return pb.OpenAccountRequest(owner_pid=owner_pid, kind=kind, alias=alias)


def certificate(account=None, reduction_ids=(), format=""):
    return pb.GetRetirementCertificateRequest(
        account=account or ref(owner_pid="pid-alice"), reduction_ids=list(reduction_ids), format=format
    )


METHODS = {
    "GetAccount": with_refs(lambda r: r),
    "GetBalance": with_refs(lambda r: r),
    "ListAccounts": [
        (pb.ListAccountsRequest(page_token=BIG), IA, "invalid_page_token"),
        (pb.ListAccountsRequest(page_token="garbage"), IA, "invalid_page_token"),
        (pb.ListAccountsRequest(page_token="acc_" + "0" * 31), IA, "invalid_page_token"),
        (pb.ListAccountsRequest(page_token=" " + ALICE), IA, "invalid_page_token"),
        (pb.ListAccountsRequest(page_size=-1), IA, "invalid_page_size"),
        (pb.ListAccountsRequest(page_size=501), IA, "invalid_page_size"),
    ],
    "ListEntries": [
        *with_refs(lambda r: pb.ListEntriesRequest(account=r)),
        (pb.ListEntriesRequest(), IA, "missing_account"),
        (entries(posted_from="yesterday"), IA, "invalid_posted_from"),
        (entries(posted_from=BIG), IA, "invalid_posted_from"),
        (entries(posted_from="2026-11-01"), IA, "invalid_posted_from"),
        (entries(posted_from="2026-11-01T00:00:00"), IA, "invalid_posted_from"),  # no offset
        (entries(posted_to="tomorrow"), IA, "invalid_posted_to"),
        (entries(posted_to="2026-11-31T00:00:00Z"), IA, "invalid_posted_to"),
        (entries(posted_from="2026-11-02T00:00:00Z", posted_to="2026-11-01T00:00:00Z"), IA, "invalid_time_range"),
        (entries(posted_from="2026-11-01T09:00:00+08:00", posted_to="2026-11-01T00:00:00Z"), IA, "invalid_time_range"),
        (entries(page_token=BIG), IA, "invalid_page_token"),
        (entries(page_token="abc"), IA, "invalid_page_token"),
        (entries(page_token="-1"), IA, "invalid_page_token"),
        (entries(page_token="\u00b2"), IA, "invalid_page_token"),  # str.isdigit() says yes
        (entries(page_token="9" * 30), IA, "invalid_page_token"),
        (entries(types=[BIG]), IA, "invalid_type"),
        (entries(types=["bonus"]), IA, "invalid_type"),
        (entries(types=["credit"] * (len(ledger.ENTRY_TYPES) + 1)), IA, "invalid_type"),
        (entries(scenario=BIG), IA, "invalid_scenario"),
        (entries(scenario="metro ride"), IA, "invalid_scenario"),
        (entries(page_size=501), IA, "invalid_page_size"),
        (entries(page_size=-5), IA, "invalid_page_size"),
    ],
    "GetStatement": [
        *with_refs(lambda r: pb.GetStatementRequest(account=r, month="2026-11")),
        (pb.GetStatementRequest(month="2026-11"), IA, "missing_account"),
        (pb.GetStatementRequest(account=ref(owner_pid="pid-alice")), IA, "invalid_month"),
        (pb.GetStatementRequest(account=ref(owner_pid="pid-alice"), month=BIG), IA, "invalid_month"),
        (pb.GetStatementRequest(account=ref(owner_pid="pid-alice"), month="2026-13"), IA, "invalid_month"),
        (pb.GetStatementRequest(account=ref(owner_pid="pid-alice"), month="2026-11\n"), IA, "invalid_month"),
        (pb.GetStatementRequest(account=ref(owner_pid="pid-alice"), month="\uff12026-11"), IA, "invalid_month"),
    ],
    "GetTotals": with_refs(lambda r: pb.GetTotalsRequest(account=r)),
    "Redeem": [
        *with_refs(lambda r: redeem(account=r)),
        (pb.RedeemRequest(grams=10, request_key="r-x"), IA, "missing_account"),
        (redeem(reward_id=HUGE), IA, "invalid_reward_id"),
        (redeem(reward_id=BIG), IA, "invalid_reward_id"),
        (redeem(reward_id="t" * 65), IA, "invalid_reward_id"),
        (redeem(reward_id="tea leaf"), IA, "invalid_reward_id"),
        (redeem(reward_id="tea\x00"), IA, "invalid_reward_id"),
        (redeem(request_key=""), IA, "invalid_request_key"),
        (redeem(request_key=BIG), IA, "invalid_request_key"),
        (redeem(request_key="k" * 129), IA, "invalid_request_key"),
        (redeem(request_key="order 42"), IA, "invalid_request_key"),
        (redeem(request_key="\u8ba2\u535542"), IA, "invalid_request_key"),
        (redeem(grams=0), IA, "invalid_grams"),
        (redeem(grams=-1), IA, "invalid_grams"),
        (redeem(grams=341), FP, "insufficient_balance"),
        (redeem(grams=20, request_key="r-used"), AE, "request_key_reused"),
        (redeem(account=ref(owner_pid=ledger.POOL_OWNER)), IA, "invalid_account"),
        (redeem(account=ref(owner_pid="pid-ent")), FP, "account_not_open"),  # frozen
        (redeem(account=ref(owner_pid="pid-closed")), FP, "account_not_open"),
    ],
    "OpenAccount": [
        (pb.OpenAccountRequest(), IA, "invalid_owner_pid"),
        (open_account(owner_pid=BIG), IA, "invalid_owner_pid"),
        (open_account(owner_pid="new pid"), IA, "invalid_owner_pid"),
        (open_account(owner_pid="p" * 129), IA, "invalid_owner_pid"),
        (open_account(owner_pid=ledger.POOL_OWNER), IA, "invalid_owner_pid"),
        (open_account(owner_pid=ledger.POOL_OWNER, kind="pool"), IA, "invalid_owner_pid"),
        (open_account(owner_pid=ledger.POOL_OWNER + "/1"), IA, "invalid_owner_pid"),
        (open_account(kind="pool"), IA, "invalid_kind"),
        (open_account(kind="Individual"), IA, "invalid_kind"),
        (open_account(kind=BIG), IA, "invalid_kind"),
        (open_account(alias=BIG), IA, "invalid_alias"),
        (open_account(alias="Ann\nBob"), IA, "invalid_alias"),
        (open_account(alias="\u202eAnn"), IA, "invalid_alias"),  # right-to-left override
        (open_account(alias=" Ann"), IA, "invalid_alias"),
        (open_account(owner_pid="pid-ent", kind="individual"), IA, "kind_mismatch"),
    ],
    "SetStatus": [
        *with_refs(lambda r: set_status(account=r)),
        (pb.SetStatusRequest(status="frozen", request_key="s-x"), IA, "missing_account"),
        (set_status(status=""), IA, "invalid_status"),
        (set_status(status="suspended"), IA, "invalid_status"),
        (set_status(status="FROZEN"), IA, "invalid_status"),
        (set_status(status=BIG), IA, "invalid_status"),
        (set_status(request_key=""), IA, "invalid_request_key"),
        (set_status(request_key=BIG), IA, "invalid_request_key"),
        (set_status(reason=BIG), IA, "invalid_reason"),
        (set_status(reason="because I said so"), IA, "invalid_reason"),
        (set_status(account=ref(owner_pid=ledger.POOL_OWNER)), IA, "invalid_account"),
        (set_status(status="open", account=ref(owner_pid="pid-closed")), FP, "account_not_open"),
        (set_status(status="closed", request_key="s-used", account=ref(owner_pid="pid-ent")), AE, "request_key_reused"),
        (set_status(request_key="s-used", reason="other", account=ref(owner_pid="pid-ent")), AE, "request_key_reused"),
    ],
    # Every row is refused before the exchange bridge would be called (no RabbitMQ needed); the
    # bridge's own refusals: tests/e2e/test_exchange_batches.py and test_account_grpc_certificate.py.
    "GetRetirementCertificate": [
        *with_refs(lambda r: certificate(account=r)),
        (pb.GetRetirementCertificateRequest(), IA, "missing_account"),
        (certificate(reduction_ids=[BIG]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=[HUGE]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=[""]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=["r" * 129]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=["red 1"]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=["-red-1"]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=["red-1\n"]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=["\u202ered-1"]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=["red-ok", "red/1"]), IA, "invalid_reduction_id"),
        (certificate(reduction_ids=[f"r{n}" for n in range(1001)]), IA, "invalid_reduction_id"),
        (certificate(format="pdf"), IA, "invalid_format"),
        (certificate(format="JSON"), IA, "invalid_format"),
        (certificate(format=BIG), IA, "invalid_format"),
        (certificate(account=ref(owner_pid=ledger.POOL_OWNER)), IA, "invalid_account"),
        # alice redeemed 10 g of her first 100 g credit: no credit was consumed whole, so none of
        # her reductions can have reached the exchange (the closed account has none at all)
        (certificate(), FP, "no_retired_units"),
        (certificate(format="json_pdf"), FP, "no_retired_units"),
        (certificate(account=ref(owner_pid="pid-closed")), FP, "no_retired_units"),
    ],
}


@pytest.fixture
def world(ops, make_reduction):
    """alice: open, 340 g (one redemption, key "r-used"); ent: enterprise, frozen with key
    "s-used" and reason "audit"; closed: closed; the pool."""
    ops.pool_account()
    for grams in (100, 250):
        ops.credit(make_reduction(grams=grams))
    ops.redeem(ALICE, 10, "r-used", "tea")
    ops.open_account("pid-ent", "enterprise")
    ops.set_status(ENT, "frozen", "s-used", "audit")
    ops.open_account("pid-closed")
    ops.set_status(CLOSED, "closed", "close-1")


def written(repo) -> dict:
    """What a refused call must not change."""
    return {
        name: getattr(repo, name).count_documents({}) for name in ("accounts", "entries", "states", "claims", "outbox")
    }


def attempt(address, method, request):
    """(code, details, trailing metadata) of one call."""

    def run(channel):
        try:
            getattr(pb_grpc.AccountServiceStub(channel), method)(request, timeout=10)
            return grpc.StatusCode.OK, "", ()
        except grpc.RpcError as error:
            return error.code(), error.details() or "", tuple(error.trailing_metadata() or ())

    return call(address, run)


def test_every_method_has_a_table():
    import test_catalogue_grpc_bad_input as catalogue  # the catalogue's methods have their tables there
    import test_enterprise_grpc_bad_input as enterprise  # and the enterprise methods there

    assert set(METHODS) | set(catalogue.METHODS) | set(enterprise.METHODS) == set(
        pb.DESCRIPTOR.services_by_name["AccountService"].methods_by_name
    )


def refusals(server, method: str, table, counts) -> list:
    """Each bad request of `table` against the running server: its status and error code, an
    answer under 300 bytes that echoes nothing, and no write (`counts()` unchanged) -> the
    mismatches (empty when every refusal is right). Shared by the catalogue and enterprise tables."""
    before, mismatches = counts(), []
    for n, (request, code, error) in enumerate(table):
        got_code, details, trailers = attempt(server["grpc"], method, request)
        answer = details + "".join(f"{k}{v}" for k, v in trailers)
        if got_code != code or not (details == error or details.startswith(error + ":")):
            mismatches.append((n, code.name, error, got_code.name, details[:120]))
        elif len(answer.encode()) >= 300 or MARK * 2 in answer:
            mismatches.append((n, "an answer < 300 bytes without echo", len(answer.encode()), answer[:120]))
        elif counts() != before:
            mismatches.append((n, "nothing written", before, counts()))
            before = counts()
    if MARK * 2 in server["log"].read_text():
        mismatches.append(("log", "the server's log echoes a request"))
    return mismatches


@pytest.mark.parametrize("method", sorted(METHODS))
def test_bad_input_is_refused_small_and_writes_nothing(method, grpc_process, repo, world):
    server = grpc_process()
    assert refusals(server, method, METHODS[method], lambda: written(repo)) == []


def test_a_not_found_names_only_the_validated_id(grpc_process, world):
    server = grpc_process()
    code, details, _ = attempt(server["grpc"], "GetBalance", ref(account_id=UNKNOWN_ID))
    assert (code, details) == (NF, f"account_not_found: no account {UNKNOWN_ID}")


def test_invalid_utf8_is_refused_before_the_handler(grpc_process, repo, world):
    """A string field that is not UTF-8 (proto3 requires it) never reaches the service code, and
    is the caller's error (INVALID_ARGUMENT), not grpcio's INTERNAL "Exception deserializing"."""
    server = grpc_process()
    before = written(repo)
    raw_redeem = (
        b"\x0a\x0b\x12\x09pid-alice"  # account { owner_pid: "pid-alice" }
        + b"\x10\x0a"  # grams: 10
        + b"\x1a\x03k-1"  # request_key
        + b"\x22\x04t\xff\xfeX"  # reward_id: not UTF-8
    )

    def run(channel):
        rpc = channel.unary_unary(
            "/carbon.account.v1.AccountService/Redeem",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        try:
            rpc(raw_redeem, timeout=10)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            return error.code(), error.details() or ""

    code, details = call(server["grpc"], run)
    assert code == IA and details.startswith("invalid_request:") and len(details) < 300
    assert written(repo) == before


def test_four_redemptions_with_huge_reward_ids_are_refused_and_entries_stay_readable(grpc_process, repo, world):
    """Before issue 21, four redemptions with 1 MB reward ids were sealed into the ledger and
    every ListEntries of the account answered RESOURCE_EXHAUSTED (gRPC's default 4 MB) forever."""
    server = grpc_process()
    before = written(repo)
    for n in range(4):
        code, details, _ = attempt(server["grpc"], "Redeem", redeem(grams=1, request_key=f"big-{n}", reward_id=HUGE))
        assert code == IA and details.startswith("invalid_reward_id:") and len(details) < 300
    assert written(repo) == before

    # the longest legal values still redeem, and the account's entries stay small and readable
    for n in range(4):
        code, _, _ = attempt(
            server["grpc"], "Redeem", redeem(grams=1, request_key=f"{n}" * 128, reward_id=f"r{n}" + "x" * 62)
        )
        assert code == grpc.StatusCode.OK

    # settled (what the account service's relay does): the pool's shards carry the reward ids too
    redemptions = [e for e in repo.account_entries(ledger.account_id_for("pid-alice")) if e["type"] == "redemption"]
    LedgerOperations(repo, Tiers()).settle_redemptions(redemptions)

    def read(channel):
        stub = pb_grpc.AccountServiceStub(channel)  # default limits: 4 MB per message
        return (
            stub.ListEntries(entries(page_size=500), timeout=10),
            [
                stub.ListEntries(pb.ListEntriesRequest(account=ref(owner_pid=owner)), timeout=10)
                for owner in POOL_OWNERS
            ],
        )

    alice, pools = call(server["grpc"], read)
    assert [e.type for e in alice.entries[:4]] == ["redemption"] * 4 and alice.ByteSize() < 16_000
    pooled = {e.reward_id for pool in pools for e in pool.entries if e.type == "redemption_transfer"}
    assert {f"r{n}" + "x" * 62 for n in range(4)} <= pooled
