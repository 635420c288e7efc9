"""Security of the real `python -m account.grpc_server` process on FerretDB: TLS, mutual TLS,
bearer tokens, per-method permissions, the audit of refusals, rotation without restart, the
example client of docs/grpc.md and the start-up refusal of an exposed insecure server."""

import datetime
import hashlib
import ipaddress
import json
import os
import pathlib
import subprocess
import sys

import grpc
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account.grpc_tls import ReloadingCredentials
from carbon_dev.testing import free_port, wait_until

import test_account_grpc

call = test_account_grpc.call
grpc_process = test_account_grpc.grpc_process  # the server-process fixture, shared

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "grpc_client.py"
READ_TOKEN, REDEEM_TOKEN, NEW_TOKEN = "statements-3q9Zb1Xr7Lm2", "mall-Hk4Tz8Vw1Qp6", "mall-rotated-Pp0Rr9"
SVC = "carbon.account.v1.AccountService"
ALICE = pb.AccountRef(owner_pid="pid-alice")


# --- a throwaway PKI, made at test time -------------------------------------------------------


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(cn, issuer=None, *, ca=False, server=False):
    """(certificate, key) for `cn`, signed by issuer=(cert, key), or self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    signer_cert, signer_key = issuer or (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(signer_cert.subject if signer_cert else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("account-grpc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    return builder.sign(signer_key, hashes.SHA256()), key


class Pki:
    def __init__(self, directory: pathlib.Path):
        self.dir = directory
        self.certs = {}
        ca, ca2, rogue = issue("Test Bank CA", ca=True), issue("Test Bank CA 2", ca=True), issue("Rogue CA", ca=True)
        for name, pair in {
            "ca": ca,
            "ca2": ca2,
            "rogue-ca": rogue,
            "server": issue("account-grpc", ca, server=True),
            "server2": issue("account-grpc", ca2, server=True),
            "core": issue("core.bank.example", ca),
            "mall": issue("mall.bank.example", ca),
            "rogue": issue("core.bank.example", rogue),
        }.items():
            self.certs[name] = pair
            self.path(name).write_bytes(pair[0].public_bytes(serialization.Encoding.PEM))
            self.key_path(name).write_bytes(
                pair[1].private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )

    def path(self, name) -> pathlib.Path:
        return self.dir / f"{name}.pem"

    def key_path(self, name) -> pathlib.Path:
        return self.dir / f"{name}-key.pem"

    def pem(self, name) -> bytes:
        return self.path(name).read_bytes()

    def credentials(self, trust="ca", client=None, token=None):
        transport = grpc.ssl_channel_credentials(
            self.pem(trust),
            self.key_path(client).read_bytes() if client else None,
            self.pem(client) if client else None,
        )
        return (
            grpc.composite_channel_credentials(transport, grpc.access_token_call_credentials(token))
            if token
            else transport
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def callers_file(directory: pathlib.Path, *, mutual: bool, extra_mall_token: str | None = None) -> pathlib.Path:
    def sha(token):
        return hashlib.sha256(token.encode()).hexdigest()

    callers = {
        "statements": {"token_sha256": sha(READ_TOKEN), "methods": ["read"]},
        "rewards-mall": {
            "token_sha256": [sha(t) for t in (REDEEM_TOKEN, extra_mall_token) if t],
            "methods": ["read", "redeem"],
        },
    }
    if mutual:
        callers["core-banking"] = {"cert_cn": "core.bank.example", "methods": ["read"]}
    path = directory / "callers.json"
    path.write_text(json.dumps({"callers": callers}))
    return path


# --- helpers ------------------------------------------------------------------------------------


def outcome(address, credentials, rpc):
    """The status code of one call on a fresh channel (a fresh TLS handshake), and its response."""

    def run(channel):
        try:
            return grpc.StatusCode.OK, rpc(pb_grpc.AccountServiceStub(channel))
        except grpc.RpcError as error:
            return error.code(), error.details()

    return call(address, run, credentials, options=[("grpc.ssl_target_name_override", "account-grpc")])


def balance(stub):
    return stub.GetBalance(ALICE, timeout=5).balance_grams


def redeem(key, grams=100):
    return lambda stub: stub.Redeem(pb.RedeemRequest(account=ALICE, grams=grams, request_key=key), timeout=10)


def health(address, credentials=None):
    return call(
        address,
        lambda ch: health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=SVC), timeout=5).status,
        credentials,
        options=[("grpc.ssl_target_name_override", "account-grpc")],
    )


def audit_lines(log_path: pathlib.Path) -> list[dict]:
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "account.grpc.audit"]


def refused_counts(http) -> dict:
    text = requests.get(http + "/metrics", timeout=5).text
    return {
        (s.labels["method"], s.labels["code"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "carbon_grpc_refused"
        for s in family.samples
        if s.name.endswith("_total")
    }


def ledger_snapshot(repo):
    return repo.entries.count_documents({}), repo.entries.count_documents({"type": "redemption"})


@pytest.fixture
def alice(ops, make_reduction):
    for grams in (100, 250):
        ops.credit(make_reduction(grams=grams))


# --- tests --------------------------------------------------------------------------------------


def test_refused_calls_change_nothing_and_are_audited(pki, grpc_process, repo, alice, tmp_path):
    server = grpc_process(
        GRPC_TLS_CERT_FILE=str(pki.path("server")),
        GRPC_TLS_KEY_FILE=str(pki.key_path("server")),
        GRPC_CALLERS_FILE=str(callers_file(tmp_path, mutual=False)),
    )
    address, before = server["grpc"], ledger_snapshot(repo)

    assert outcome(address, pki.credentials(), balance)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert (
        outcome(address, pki.credentials(token="not-a-token"), redeem("r-wrong"))[0] == grpc.StatusCode.UNAUTHENTICATED
    )
    code, details = outcome(address, pki.credentials(token=READ_TOKEN), redeem("r-read-only"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and details.startswith("method_not_allowed")

    assert ledger_snapshot(repo) == before  # no entry of any kind was appended
    assert outcome(address, pki.credentials(token=READ_TOKEN), balance) == (grpc.StatusCode.OK, 350)
    assert health(address, pki.credentials()) == health_pb2.HealthCheckResponse.SERVING  # no token needed

    audited = wait_until(
        lambda: len(audit_lines(server["log"])) >= 3 and audit_lines(server["log"]), message="three audit lines"
    )
    assert [(a["caller_id"], a["grpc_method"].rsplit("/", 1)[1], a["grpc_code"], a["reason"]) for a in audited] == [
        ("anonymous", "GetBalance", "UNAUTHENTICATED", "missing_credentials"),
        ("anonymous", "Redeem", "UNAUTHENTICATED", "invalid_credentials"),
        ("statements", "Redeem", "PERMISSION_DENIED", "method_not_allowed"),
    ]
    assert all(a["peer"].startswith("ipv4:127.0.0.1:") and a["level"] == "warning" for a in audited)
    log_text = server["log"].read_text()
    assert READ_TOKEN not in log_text and "not-a-token" not in log_text and "pid-alice" not in log_text
    assert refused_counts(server["http"]) == {
        ("GetBalance", "UNAUTHENTICATED"): 1,
        ("Redeem", "UNAUTHENTICATED"): 1,
        ("Redeem", "PERMISSION_DENIED"): 1,
    }

    # the redeem caller may: the ledger moves only now
    code, response = outcome(address, pki.credentials(token=REDEEM_TOKEN), redeem("r-ok"))
    assert code == grpc.StatusCode.OK and response.entry.balance_after == 250
    assert ledger_snapshot(repo)[1] == before[1] + 1


def test_tls_refuses_plaintext_and_untrusted_servers(pki, grpc_process, alice, tmp_path):
    server = grpc_process(
        GRPC_TLS_CERT_FILE=str(pki.path("server")),
        GRPC_TLS_KEY_FILE=str(pki.key_path("server")),
        GRPC_CALLERS_FILE=str(callers_file(tmp_path, mutual=False)),
    )
    assert outcome(server["grpc"], None, balance)[0] == grpc.StatusCode.UNAVAILABLE  # plaintext client
    assert (
        outcome(server["grpc"], pki.credentials(trust="ca2", token=READ_TOKEN), balance)[0]
        == grpc.StatusCode.UNAVAILABLE
    )  # server not trusted
    assert audit_lines(server["log"]) == []  # nothing reached the API


def test_mutual_tls_identities_and_plaintext_health_port(pki, grpc_process, repo, alice, tmp_path):
    health_port = free_port()
    server = grpc_process(
        GRPC_TLS_CERT_FILE=str(pki.path("server")),
        GRPC_TLS_KEY_FILE=str(pki.key_path("server")),
        GRPC_TLS_CLIENT_CA_FILE=str(pki.path("ca")),
        GRPC_CALLERS_FILE=str(callers_file(tmp_path, mutual=True)),
        GRPC_HEALTH_ADDRESS=f"127.0.0.1:{health_port}",
    )
    address, before = server["grpc"], ledger_snapshot(repo)
    # certificate-only caller: reads, may not redeem
    assert outcome(address, pki.credentials(client="core"), balance) == (grpc.StatusCode.OK, 350)
    assert outcome(address, pki.credentials(client="core"), redeem("m-1"))[0] == grpc.StatusCode.PERMISSION_DENIED
    # no client certificate, or one from another CA: the handshake fails, whatever the token
    for credentials in (pki.credentials(token=REDEEM_TOKEN), pki.credentials(client="rogue", token=REDEEM_TOKEN)):
        assert outcome(address, credentials, redeem("m-2"))[0] == grpc.StatusCode.UNAVAILABLE
    # a valid certificate that maps to no caller, and no token
    assert outcome(address, pki.credentials(client="mall"), balance)[0] == grpc.StatusCode.UNAUTHENTICATED
    assert ledger_snapshot(repo) == before
    # token caller over mutual TLS
    assert outcome(address, pki.credentials(client="mall", token=REDEEM_TOKEN), redeem("m-3"))[0] == grpc.StatusCode.OK
    # the probe port serves health only, in plaintext
    probe = f"127.0.0.1:{health_port}"
    assert health(probe) == health_pb2.HealthCheckResponse.SERVING
    assert outcome(probe, None, balance)[0] == grpc.StatusCode.UNIMPLEMENTED
    assert [(a["caller_id"], a["grpc_code"]) for a in audit_lines(server["log"])] == [
        ("core-banking", "PERMISSION_DENIED"),
        ("anonymous", "UNAUTHENTICATED"),
    ]


def test_example_client_over_mutual_tls(pki, grpc_process, alice, tmp_path):
    server = grpc_process(
        GRPC_TLS_CERT_FILE=str(pki.path("server")),
        GRPC_TLS_KEY_FILE=str(pki.key_path("server")),
        GRPC_TLS_CLIENT_CA_FILE=str(pki.path("ca")),
        GRPC_CALLERS_FILE=str(callers_file(tmp_path, mutual=True)),
    )
    token_file = tmp_path / "token"
    token_file.write_text(REDEEM_TOKEN + "\n")
    base = [
        sys.executable,
        str(EXAMPLE),
        "--address",
        server["grpc"],
        "--server-name",
        "account-grpc",
        "--ca-file",
        str(pki.path("ca")),
        "--cert-file",
        str(pki.path("mall")),
        "--key-file",
        str(pki.key_path("mall")),
    ]

    def example(*args, token=None):
        env = {**os.environ, **({"CARBON_GRPC_TOKEN": token} if token else {})}
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=60, env=env)

    ok = example(
        "--token-file",
        str(token_file),
        "redeem",
        "--owner-pid",
        "pid-alice",
        "--grams",
        "120",
        "--request-key",
        "order-42",
        "--reward-id",
        "tea",
    )
    assert ok.returncode == 0, ok.stderr
    entry = json.loads(ok.stdout)["entry"]
    assert (entry["grams"], entry["balance_after"]) == ("-120", "230")  # int64 as JSON strings
    read = example("balance", "--owner-pid", "pid-alice", token=READ_TOKEN)
    assert read.returncode == 0 and json.loads(read.stdout)["balance_grams"] == "230"
    refused = example("redeem", "--owner-pid", "pid-alice", "--grams", "1", "--request-key", "x", token=READ_TOKEN)
    assert refused.returncode == 2 and json.loads(refused.stderr)["code"] == "PERMISSION_DENIED"
    assert READ_TOKEN not in refused.stdout + refused.stderr


def k8s_secret_dir(root: pathlib.Path, files: dict[str, bytes]) -> None:
    """Writes files the way the kubelet updates a mounted Secret: a new timestamped directory,
    then one atomic swap of the `..data` symlink that the visible names point through."""
    version = root / f"..2026_{len(list(root.glob('..2026_*')))}"
    version.mkdir()
    for name, content in files.items():
        (version / name).write_bytes(content)
        if not (root / name).is_symlink():
            (root / name).symlink_to(pathlib.Path("..data") / name)
    tmp = root / "..data_tmp"
    tmp.symlink_to(version.name)
    os.replace(tmp, root / "..data")


def test_certificates_and_callers_rotate_without_restart(pki, grpc_process, alice, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    k8s_secret_dir(
        secret,
        {
            "tls.crt": pki.pem("server"),
            "tls.key": pki.key_path("server").read_bytes(),
            "callers.json": callers_file(tmp_path, mutual=False).read_bytes(),
        },
    )
    server = grpc_process(
        GRPC_TLS_CERT_FILE=str(secret / "tls.crt"),
        GRPC_TLS_KEY_FILE=str(secret / "tls.key"),
        GRPC_CALLERS_FILE=str(secret / "callers.json"),
    )
    address, pid = server["grpc"], server["process"].pid
    assert outcome(address, pki.credentials(token=REDEEM_TOKEN), balance) == (grpc.StatusCode.OK, 350)
    assert outcome(address, pki.credentials(trust="ca2", token=REDEEM_TOKEN), balance)[0] == grpc.StatusCode.UNAVAILABLE
    assert outcome(address, pki.credentials(token=NEW_TOKEN), balance)[0] == grpc.StatusCode.UNAUTHENTICATED

    k8s_secret_dir(
        secret,
        {
            "tls.crt": pki.pem("server2"),
            "tls.key": pki.key_path("server2").read_bytes(),
            "callers.json": callers_file(tmp_path, mutual=False, extra_mall_token=NEW_TOKEN).read_bytes(),
        },
    )
    wait_until(
        lambda: outcome(address, pki.credentials(trust="ca2", token=NEW_TOKEN), balance)[0] == grpc.StatusCode.OK,
        timeout=10,
        message="new certificate and token served",
    )
    assert outcome(address, pki.credentials(token=REDEEM_TOKEN), balance)[0] == grpc.StatusCode.UNAVAILABLE
    assert outcome(address, pki.credentials(trust="ca2", token=REDEEM_TOKEN), balance)[0] == grpc.StatusCode.OK

    # a half-updated pair (new certificate, old key) is not taken: the current pair keeps serving
    k8s_secret_dir(
        secret,
        {
            "tls.crt": pki.pem("server"),
            "tls.key": pki.key_path("server2").read_bytes(),
            "callers.json": (secret / "callers.json").read_bytes(),
        },
    )
    assert outcome(address, pki.credentials(trust="ca2", token=NEW_TOKEN), balance)[0] == grpc.StatusCode.OK
    assert "cannot be used; still serving the previous certificate" in server["log"].read_text()
    assert server["process"].poll() is None and server["process"].pid == pid


def test_reloading_credentials_fetch(pki, tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(pki.pem("server"))
    key.write_bytes(pki.key_path("server").read_bytes())
    credentials = ReloadingCredentials(str(cert), str(key))
    assert credentials.fetch() is None and not credentials.mutual
    key.write_bytes(pki.key_path("core").read_bytes())  # not the certificate's key
    assert credentials.fetch() is None and credentials.bundle.chain == pki.pem("server")
    cert.write_bytes(pki.pem("core"))  # now a matching pair
    assert credentials.fetch() is not None and credentials.reloads == 1
    assert "CN=core.bank.example" == credentials.bundle.subject
    with pytest.raises(ValueError, match="not the private key"):
        ReloadingCredentials(str(cert), str(pki.key_path("server")))


@pytest.mark.parametrize(
    "env, message",
    [
        ({"GRPC_ADDRESS": "0.0.0.0:{port}"}, "refusing to serve gRPC on 0.0.0.0"),
        ({"GRPC_ALLOW_INSECURE": "false"}, "refusing to serve gRPC"),
        ({"GRPC_TLS_CERT_FILE": "{pki}/server.pem"}, "set both GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE"),
        ({"GRPC_TLS_CERT_FILE": "{pki}/server.pem", "GRPC_TLS_KEY_FILE": "{pki}/core-key.pem"}, "not the private key"),
        ({"GRPC_CALLERS_FILE": "{pki}/missing.json"}, "GRPC_CALLERS_FILE"),
    ],
)
def test_refuses_to_start_when_insecure_beyond_loopback_or_misconfigured(pki, env, message):
    port = free_port()
    env = {k: v.format(port=port, pki=pki.dir) for k, v in env.items()}
    result = subprocess.run(
        [sys.executable, "-m", "account.grpc_server"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "MONGO_URI": "mongodb://127.0.0.1:27017/",
            "OTEL_SDK_DISABLED": "true",
            "GRPC_ADDRESS": f"127.0.0.1:{port}",
            "METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
            **env,
        },
    )
    assert result.returncode != 0 and message in result.stderr
