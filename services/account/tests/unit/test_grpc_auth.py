"""The gRPC caller check without a server: callers file validation (account.grpc_callers),
identification, per-method permissions, the interceptor's refusal path (audit line, counter,
span attribute; account.grpc_auth), the start-up exposure rule and the callers-file CLI."""

import hashlib
import json
import logging

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from carbon_common.gm import sm3_hex

from account import grpc_auth, grpc_callers
from account.cli.grpc_callers import main
from account.grpc_auth import ANONYMOUS, AuthInterceptor, Authoriser, CallersFile, Refused
from account.grpc_callers import parse_callers, permission_for
from account.grpc_server import check_exposure, is_loopback

SVC = "/carbon.account.v1.AccountService/"
READ_TOKEN, REDEEM_TOKEN, OLD_TOKEN, SM3_TOKEN = "read-token-0123456789", "redeem-token-abc", "old-token", "sm3-tok"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


DOCUMENT = {
    "callers": {
        "statements": {"token_sha256": sha(READ_TOKEN), "methods": ["read"]},
        "rewards-mall": {"token_sha256": [sha(REDEEM_TOKEN), sha(OLD_TOKEN)], "methods": ["read", "redeem"]},
        "core-banking": {"cert_cn": "core.bank.example", "methods": ["read"]},
        "ops-console": {
            "token_sm3": sm3_hex(SM3_TOKEN.encode()),
            "cert_cn": "ops.bank.example",
            "methods": ["read", "admin"],
        },
    }
}


@pytest.fixture
def authoriser():
    return Authoriser(parse_callers(DOCUMENT, mutual_tls=True))


def bearer(token):
    return [("authorization", f"Bearer {token}"), ("user-agent", "test")]


def refusal(fn) -> Refused:
    with pytest.raises(Refused) as caught:
        fn()
    return caught.value


def test_method_permission_table_covers_the_proto_and_fails_closed():
    from carbon.account.v1 import account_service_pb2 as pb

    methods = pb.DESCRIPTOR.services_by_name["AccountService"].methods_by_name
    assert set(methods) == set(grpc_callers.METHOD_PERMISSIONS), "classify every new method in METHOD_PERMISSIONS"
    admin = {"OpenAccount", "SetStatus", "PutCatalogueItem", "RetireCatalogueItem", "ListCatalogueItemVersions"}
    catalogue = {"ListCatalogue", "RedeemItem", "GetCatalogueRedemption"}
    enterprise = {"LinkEnterprise", "UnlinkEnterprise", "ListEnterpriseLinks"}
    assert {permission_for(SVC + m) for m in methods if m not in admin | catalogue | enterprise | {"Redeem"}} == {
        "read"
    }
    assert {permission_for(SVC + m) for m in enterprise} == {"enterprise"}
    assert permission_for(SVC + "Redeem") == "redeem"
    assert {permission_for(SVC + m) for m in catalogue} == {"catalogue"}
    assert {permission_for(SVC + m) for m in admin} == {"admin"}
    assert permission_for(SVC + "NotYetClassified") == "admin"  # fail closed: admin only
    assert permission_for("/other.v1.Thing/Do") == "admin"
    assert permission_for("/grpc.health.v1.Health/Check") is None
    assert permission_for("/grpc.health.v1.Health/Watch") is None
    assert permission_for("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is None


def test_read_caller_reads_but_may_not_redeem(authoriser):
    assert authoriser.authorise(SVC + "GetBalance", bearer(READ_TOKEN)) == "statements"
    refused = refusal(lambda: authoriser.authorise(SVC + "Redeem", bearer(READ_TOKEN)))
    assert (refused.code, refused.reason, refused.caller_id) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "method_not_allowed",
        "statements",
    )
    assert "'redeem'" in str(refused)


def test_missing_malformed_and_unknown_credentials_are_unauthenticated(authoriser):
    cases = {"missing_credentials": [], "invalid_credentials": bearer("guess")}
    for reason, metadata in cases.items():
        refused = refusal(lambda metadata=metadata: authoriser.authorise(SVC + "GetBalance", metadata))
        assert (refused.code, refused.reason, refused.caller_id) == (grpc.StatusCode.UNAUTHENTICATED, reason, ANONYMOUS)
    for metadata in (
        [("authorization", READ_TOKEN)],
        [("authorization", f"Basic {READ_TOKEN}")],
        [("authorization", "Bearer ")],
        bearer(READ_TOKEN) + bearer(REDEEM_TOKEN),
    ):
        refused = refusal(lambda metadata=metadata: authoriser.authorise(SVC + "GetBalance", metadata))
        assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_credentials")
    # a token is never echoed into the refusal
    assert "guess" not in str(refusal(lambda: authoriser.authorise(SVC + "GetBalance", bearer("guess"))))


def test_redeem_caller_with_both_rotation_tokens_and_an_sm3_digest(authoriser):
    for token in (REDEEM_TOKEN, OLD_TOKEN):
        assert authoriser.authorise(SVC + "Redeem", bearer(token)) == "rewards-mall"
    assert authoriser.authorise(SVC + "GetTotals", bearer(SM3_TOKEN), "ops.bank.example") == "ops-console"
    assert authoriser.authorise(SVC + "SetStatus", bearer(SM3_TOKEN), "ops.bank.example") == "ops-console"
    assert (
        refusal(lambda: authoriser.authorise(SVC + "SetStatus", bearer(REDEEM_TOKEN))).code
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_certificate_identities(authoriser):
    assert authoriser.authorise(SVC + "ListEntries", [], "core.bank.example") == "core-banking"
    assert (
        refusal(lambda: authoriser.authorise(SVC + "Redeem", [], "core.bank.example")).code
        == grpc.StatusCode.PERMISSION_DENIED
    )
    unknown = refusal(lambda: authoriser.authorise(SVC + "GetBalance", [], "someone.else"))
    assert (unknown.code, unknown.caller_id) == (grpc.StatusCode.UNAUTHENTICATED, ANONYMOUS)
    # ops-console lists a token and a certificate: it must present both, and the right certificate
    for metadata, cn in (([], "ops.bank.example"), (bearer(SM3_TOKEN), None), (bearer(SM3_TOKEN), "core.bank.example")):
        refused = refusal(lambda metadata=metadata, cn=cn: authoriser.authorise(SVC + "GetBalance", metadata, cn))
        assert (refused.code, refused.caller_id) == (grpc.StatusCode.UNAUTHENTICATED, "ops-console")
    # a token-only caller is not tied to a certificate
    assert authoriser.authorise(SVC + "GetBalance", bearer(READ_TOKEN), "core.bank.example") == "statements"


def test_public_services_and_open_mode_need_no_credential(authoriser):
    assert authoriser.authorise("/grpc.health.v1.Health/Check", []) == ANONYMOUS
    assert Authoriser(None).authorise(SVC + "Redeem", []) == ANONYMOUS


@pytest.mark.parametrize(
    "document, message",
    [
        ({}, "callers"),
        ({"callers": {"Bad Id": {"token_sha256": sha("x"), "methods": ["read"]}}}, "caller id"),
        ({"callers": {"a": {"token_sha256": sha("x"), "methods": ["read"], "method": []}}}, "allowed keys"),
        ({"callers": {"a": {"token_sha256": sha("x"), "methods": ["write"]}}}, "methods"),
        ({"callers": {"a": {"token_sha256": sha("x"), "methods": []}}}, "methods"),
        ({"callers": {"a": {"token_sha256": "abc", "methods": ["read"]}}}, "64 hex"),
        ({"callers": {"a": {"token_sha256": [], "methods": ["read"]}}}, "non-empty list"),
        ({"callers": {"a": {"methods": ["read"]}}}, "needs a token digest"),
        ({"callers": {"a": {"cert_cn": "", "methods": ["read"]}}}, "cert_cn"),
        (
            {
                "callers": {
                    "a": {"token_sha256": sha("x"), "methods": ["read"]},
                    "b": {"token_sha256": sha("x"), "methods": ["redeem"]},
                }
            },
            "shares",
        ),
        (
            {"callers": {"a": {"cert_cn": "x", "methods": ["read"]}, "b": {"cert_cn": "x", "methods": ["read"]}}},
            "shares",
        ),
    ],
)
def test_callers_file_is_validated_strictly(document, message):
    with pytest.raises(ValueError, match=message):
        parse_callers(document, mutual_tls=True)


def test_certificate_callers_need_mutual_tls():
    with pytest.raises(ValueError, match="GRPC_TLS_CLIENT_CA_FILE"):
        parse_callers({"callers": {"a": {"cert_cn": "x", "methods": ["read"]}}}, mutual_tls=False)


def test_callers_file_reloads_on_change_and_keeps_the_last_good_one(tmp_path, caplog):
    path = tmp_path / "callers.json"
    path.write_text(json.dumps({"callers": {"a": {"token_sha256": sha("one"), "methods": ["read"]}}}))
    callers = CallersFile(str(path), mutual_tls=False, interval=0)
    assert callers().authorise(SVC + "GetBalance", bearer("one")) == "a"
    path.write_text(json.dumps({"callers": {"b": {"token_sha256": sha("two"), "methods": ["redeem"]}}}))
    assert callers().authorise(SVC + "Redeem", bearer("two")) == "b"
    assert (
        refusal(lambda: callers().authorise(SVC + "GetBalance", bearer("one"))).code == grpc.StatusCode.UNAUTHENTICATED
    )
    path.write_text("{not json")
    with caplog.at_level(logging.ERROR, logger="account.grpc_auth"):
        assert callers().authorise(SVC + "Redeem", bearer("two")) == "b"
    assert "previous callers stay in force" in caplog.text


class FakeContext:
    def __init__(self, metadata=(), cn=None):
        self.metadata, self.cn, self.aborted = list(metadata), cn, None

    def invocation_metadata(self):
        return self.metadata

    def auth_context(self):
        return {"x509_common_name": [self.cn.encode()]} if self.cn else {}

    def peer(self):
        return "ipv4:10.1.2.3:40000"

    def abort(self, code, details):
        self.aborted = (code, details)
        raise RuntimeError("aborted")


class Details:
    def __init__(self, method):
        self.method, self.invocation_metadata = method, ()


def handler_for(method, authoriser, calls):
    def behaviour(request, context):
        calls.append(request)
        return "response"

    original = grpc.unary_unary_rpc_method_handler(behaviour)
    return original, AuthInterceptor(lambda: authoriser).intercept_service(lambda _d: original, Details(method))


def refused_count(method, code):
    return REGISTRY.get_sample_value("carbon_grpc_refused_total", {"method": method, "code": code}) or 0


def test_interceptor_refuses_before_the_handler_audits_and_counts(authoriser, caplog):
    calls = []
    _, handler = handler_for(SVC + "Redeem", authoriser, calls)
    before = refused_count("Redeem", "PERMISSION_DENIED")
    context = FakeContext(bearer(READ_TOKEN))
    with caplog.at_level(logging.INFO, logger="account.grpc.audit"), pytest.raises(RuntimeError):
        handler.unary_unary("request", context)
    assert calls == [] and context.aborted[0] == grpc.StatusCode.PERMISSION_DENIED
    assert context.aborted[1].startswith("method_not_allowed:")
    assert refused_count("Redeem", "PERMISSION_DENIED") == before + 1
    [record] = [r for r in caplog.records if r.name == "account.grpc.audit"]
    assert (record.caller_id, record.grpc_method, record.grpc_code, record.reason, record.peer) == (
        "statements",
        SVC + "Redeem",
        "PERMISSION_DENIED",
        "method_not_allowed",
        "ipv4:10.1.2.3:40000",
    )
    assert READ_TOKEN not in json.dumps(record.__dict__, default=str)


def test_interceptor_passes_public_methods_untouched_and_tags_allowed_calls(authoriser):
    calls = []
    original, handler = handler_for("/grpc.health.v1.Health/Check", authoriser, calls)
    assert handler is original
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _, handler = handler_for(SVC + "Redeem", authoriser, calls)
    with provider.get_tracer("test").start_as_current_span("rpc"):
        assert handler.unary_unary("request", FakeContext(bearer(REDEEM_TOKEN))) == "response"
    assert calls == ["request"]
    assert exporter.get_finished_spans()[0].attributes[grpc_auth.CALLER_ATTRIBUTE] == "rewards-mall"


@pytest.mark.parametrize(
    "address, loopback",
    [
        ("127.0.0.1:50051", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("127.0.0.2:1", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        ("10.0.0.5:50051", False),
        ("account-grpc:50051", False),
    ],
)
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback


def test_exposure_rule():
    assert check_exposure("0.0.0.0:50051", tls=True, authenticated=True, allow_insecure="false") == []
    assert len(check_exposure("127.0.0.1:50051", tls=False, authenticated=False, allow_insecure="")) == 2
    assert check_exposure("0.0.0.0:50051", tls=False, authenticated=True, allow_insecure="true") == [
        "TLS (GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE)"
    ]
    for address, tls, authenticated, allow in (
        ("0.0.0.0:50051", False, True, ""),
        ("0.0.0.0:50051", True, False, ""),
        ("127.0.0.1:50051", False, True, "false"),
        ("127.0.0.1:50051", True, True, "yes"),
    ):
        with pytest.raises(SystemExit):
            check_exposure(address, tls, authenticated, allow)


def test_token_command_prints_matching_digests(capsys, tmp_path):
    assert main(["token"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["token_sha256"] == sha(printed["token"]) and len(printed["token"]) >= 43
    assert printed["token_sm3"] == sm3_hex(printed["token"].encode())
    path = tmp_path / "callers.json"
    path.write_text(json.dumps(DOCUMENT))
    assert main(["check", str(path)]) == 1  # cert callers without --mutual-tls
    assert main(["check", str(path), "--mutual-tls"]) == 0
    assert "rewards-mall: methods=['read', 'redeem'] token=yes cert_cn=-" in capsys.readouterr().out
