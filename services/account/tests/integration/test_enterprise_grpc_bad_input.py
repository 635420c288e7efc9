"""Bad input to the enterprise gRPC methods against the real `python -m account.grpc_server`
process on FerretDB (as test_account_grpc_bad_input.py does for the ledger's methods, whose
METHODS check counts these tables too): each request is refused with its status and error code
first in the details, the answer stays small whatever was sent (no echo), and NOTHING was
written — ledger and enterprise collections counted before and after each call."""

import pytest

from carbon.account.v1 import account_service_pb2 as pb

from account import ledger
from account.enterprise.enterprise import Enterprises
from account.enterprise.store import COLLECTIONS, EnterpriseStore

import test_account_grpc
import test_account_grpc_bad_input as base

grpc_process = test_account_grpc.grpc_process  # the server-process fixture, shared
world = base.world  # alice (open), ent (enterprise, frozen), closed, the pool
IA, NF, FP, AE = base.IA, base.NF, base.FP, base.AE
BIG, HUGE, MARK = base.BIG, base.HUGE, base.MARK
ALICE = base.ALICE
ACME = ledger.account_id_for("pid-acme")
ref, with_refs, attempt = base.ref, base.with_refs, base.attempt
CONSENTED = "2026-12-01T08:00:00+08:00"
ALICE_REF, ACME_REF = ref(owner_pid="pid-alice"), ref(owner_pid="pid-acme")


def link(employee=ALICE_REF, enterprise=ACME_REF, consent_ref="app-1", consented_at=CONSENTED, request_key="l-new"):
    return pb.LinkEnterpriseRequest(
        employee=employee,
        enterprise=enterprise,
        consent_ref=consent_ref,
        consented_at=consented_at,
        request_key=request_key,
    )


def unlink(employee=ref(owner_pid="pid-closed"), enterprise=ACME_REF, request_key="u-new", reason=""):
    return pb.UnlinkEnterpriseRequest(employee=employee, enterprise=enterprise, request_key=request_key, reason=reason)


def aggregate(enterprise=ACME_REF, month="2026-12"):
    return pb.GetEnterpriseAggregateRequest(enterprise=enterprise, month=month)


BAD_TIMES = [
    ("", "invalid_consented_at"),
    ("yesterday", "invalid_consented_at"),
    (BIG, "invalid_consented_at"),
    ("2026-13-01T00:00:00Z", "invalid_consented_at"),
    ("2026-12-01T00:00:00", "invalid_consented_at"),  # no zone
    ("2999-01-01T00:00:00Z", "invalid_consented_at"),  # in the future
]

METHODS = {
    "LinkEnterprise": [
        *[(link(employee=r), code, error) for r, code, error in base.BAD_REFS],
        *[(link(enterprise=r), code, error) for r, code, error in base.BAD_REFS],
        (
            pb.LinkEnterpriseRequest(enterprise=ACME_REF, consent_ref="a", consented_at=CONSENTED, request_key="k"),
            IA,
            "missing_employee",
        ),
        (
            pb.LinkEnterpriseRequest(employee=ALICE_REF, consent_ref="a", consented_at=CONSENTED, request_key="k"),
            IA,
            "missing_enterprise",
        ),
        (link(consent_ref=""), IA, "invalid_consent_ref"),
        (link(consent_ref=BIG), IA, "invalid_consent_ref"),
        (link(consent_ref="consent 1"), IA, "invalid_consent_ref"),
        (link(consent_ref="\u202e1"), IA, "invalid_consent_ref"),
        *[(link(consented_at=t), IA, code) for t, code in BAD_TIMES],
        (link(request_key=""), IA, "invalid_request_key"),
        (link(request_key=HUGE), IA, "invalid_request_key"),
        (link(enterprise=ALICE_REF, employee=ref(owner_pid="pid-closed")), IA, "not_enterprise"),
        (link(employee=ACME_REF), IA, "not_individual"),
        (link(employee=ref(owner_pid=ledger.POOL_OWNER)), IA, "not_individual"),
        (link(enterprise=ref(owner_pid="pid-ent")), FP, "account_not_open"),  # frozen
        (link(employee=ref(owner_pid="pid-closed")), FP, "account_not_open"),
        (link(), FP, "already_linked"),
        (link(request_key="l-used", consent_ref="another"), AE, "request_key_reused"),
    ],
    "UnlinkEnterprise": [
        *[(unlink(employee=r), code, error) for r, code, error in base.BAD_REFS],
        *[(unlink(enterprise=r), code, error) for r, code, error in base.BAD_REFS],
        (pb.UnlinkEnterpriseRequest(enterprise=ACME_REF, request_key="k"), IA, "missing_employee"),
        (pb.UnlinkEnterpriseRequest(employee=ALICE_REF, request_key="k"), IA, "missing_enterprise"),
        (unlink(request_key=""), IA, "invalid_request_key"),
        (unlink(request_key="key with spaces"), IA, "invalid_request_key"),
        (unlink(reason="left the firm"), IA, "invalid_reason"),
        (unlink(reason=HUGE), IA, "invalid_reason"),
        (unlink(enterprise=ref(owner_pid="pid-closed")), IA, "not_enterprise"),
        (unlink(employee=ACME_REF), IA, "not_individual"),
        (unlink(), FP, "not_linked"),
        (unlink(employee=ALICE_REF, request_key="l-used"), AE, "request_key_reused"),
    ],
    "ListEnterpriseLinks": [
        *[(pb.ListEnterpriseLinksRequest(employee=r), code, error) for r, code, error in base.BAD_REFS],
        (pb.ListEnterpriseLinksRequest(), IA, "missing_employee"),
        (pb.ListEnterpriseLinksRequest(employee=ACME_REF), IA, "not_individual"),
    ],
    "GetEnterpriseAggregate": [
        *[(aggregate(enterprise=r), code, error) for r, code, error in base.BAD_REFS],
        (pb.GetEnterpriseAggregateRequest(month="2026-12"), IA, "missing_enterprise"),
        (aggregate(month=""), IA, "invalid_month"),
        (aggregate(month="2026-13"), IA, "invalid_month"),
        (aggregate(month="2026-12-01"), IA, "invalid_month"),
        (aggregate(month=BIG), IA, "invalid_month"),
        (aggregate(enterprise=ALICE_REF), IA, "not_enterprise"),
        (aggregate(enterprise=ref(owner_pid=ledger.POOL_OWNER)), IA, "not_enterprise"),
    ],
}


@pytest.fixture
def enterprise_world(world, ops, repo):
    """base.world, and acme: an open enterprise alice is linked to (request key "l-used")."""
    ops.open_account("pid-acme", "enterprise")
    enterprises = Enterprises(ops, EnterpriseStore(repo.db))
    enterprises.link(ALICE, ACME, "l-used", "app-0", "2026-12-01T00:00:00.000000Z")
    return enterprises


def written(repo) -> dict:
    counts = base.written(repo)
    counts.update({name: repo.db[name].count_documents({}) for name in COLLECTIONS if name != "enterprise_meta"})
    return counts


@pytest.mark.parametrize("method", sorted(METHODS))
def test_bad_enterprise_input_is_refused_small_and_writes_nothing(method, grpc_process, repo, enterprise_world):
    server = grpc_process()
    assert base.refusals(server, method, METHODS[method], lambda: written(repo)) == []


def test_every_enterprise_method_has_a_table():
    methods = pb.DESCRIPTOR.services_by_name["AccountService"].methods_by_name
    assert {m for m in methods if "Enterprise" in m} == set(METHODS)
