"""Who may call the account gRPC API, and what: per-system credentials, per-method permissions.

Callers are bank systems listed in GRPC_CALLERS_FILE (JSON, re-read when it changes):

    {"callers": {
        "rewards-mall": {"token_sha256": "<64 hex>", "methods": ["read", "redeem"]},
        "core-banking": {"cert_cn": "core-banking.bank.example", "methods": ["read"]},
        "ops-console":  {"token_sm3": ["<new>", "<old>"], "cert_cn": "ops.bank.example",
                         "methods": ["read", "admin"]}}}

A caller presents every credential its entry lists: the bearer token (`authorization: Bearer
<token>` metadata; only its SHA-256 or SM3 digest is stored, compared in constant time; a list
holds several during a rotation) and/or a client certificate (mutual TLS) whose subject CN is
`cert_cn`. Permissions (METHOD_PERMISSIONS): "read" for the queries, "redeem" for Redeem,
"admin" for every other AccountService method (none today; a method added to the proto without
an entry here needs "admin" until classified — fail closed). grpc.health.v1 and server
reflection need no credential.

A refused call gets UNAUTHENTICATED (no or invalid credential) or PERMISSION_DENIED (method not
granted) before any handler runs, is counted in carbon_grpc_refused_total{method,code} and
written as one JSON line on logger "account.grpc.audit" (caller id or "anonymous", method,
code, reason, peer address; never the token). Allowed calls put the caller id in the span
attribute carbon.grpc.caller.

`python -m account.grpc_auth token` prints a new token and its digests; `… check FILE`
validates a callers file.
"""

import argparse
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import grpc
from opentelemetry import trace
from prometheus_client import Counter

from carbon_common.gm import sm3_digest

from account.grpc_tls import FileWatch

SERVICE = "carbon.account.v1.AccountService"
PUBLIC_SERVICES = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
)
PERMISSIONS = ("read", "redeem", "admin")
METHOD_PERMISSIONS = {
    "GetAccount": "read",
    "ListAccounts": "read",
    "GetBalance": "read",
    "ListEntries": "read",
    "GetStatement": "read",
    "GetTotals": "read",
    "Redeem": "redeem",
}
ANONYMOUS = "anonymous"
CALLER_ATTRIBUTE = "carbon.grpc.caller"
TOKEN_DIGESTS = {"token_sha256": lambda token: hashlib.sha256(token).digest(), "token_sm3": sm3_digest}
_CALLER_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_CALLER_KEYS = {"methods", "cert_cn", *TOKEN_DIGESTS}

audit_log = logging.getLogger("account.grpc.audit")
log = logging.getLogger("account.grpc_auth")
REFUSED = Counter(
    "carbon_grpc_refused_total", "gRPC calls refused by caller authentication or authorisation", ["method", "code"]
)


def method_name(full_method: str) -> str:
    """ "/carbon.account.v1.AccountService/Redeem" -> "Redeem" (a bounded metric label)."""
    return full_method.rsplit("/", 1)[-1]


def permission_for(full_method: str) -> str | None:
    """None for the public services (health, reflection), else the permission the method needs."""
    service, _, method = full_method.lstrip("/").partition("/")
    if service in PUBLIC_SERVICES:
        return None
    if service == SERVICE and method in METHOD_PERMISSIONS:
        return METHOD_PERMISSIONS[method]
    return "admin"


@dataclass(frozen=True)
class Caller:
    caller_id: str
    methods: frozenset
    token_digests: tuple = ()  # ((kind, digest bytes), …)
    cert_cn: str | None = None


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, detail: str, caller_id: str = ANONYMOUS):
        super().__init__(f"{reason}: {detail}")
        self.code, self.reason, self.caller_id = code, reason, caller_id


def _digests(caller_id: str, kind: str, value) -> list[tuple[str, bytes]]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise ValueError(f"caller {caller_id}: {kind} must be a hex digest or a non-empty list of them")
    out = []
    for hexdigest in values:
        if not isinstance(hexdigest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", hexdigest):
            raise ValueError(f"caller {caller_id}: {kind} entries must be 64 hex characters")
        out.append((kind, bytes.fromhex(hexdigest)))
    return out


def parse_callers(document: object, mutual_tls: bool) -> dict[str, Caller]:
    """Validates a callers document strictly (an unknown key is a typo, not something to ignore)."""
    if not isinstance(document, dict) or set(document) != {"callers"} or not isinstance(document["callers"], dict):
        raise ValueError('a callers file is {"callers": {"<caller id>": {…}, …}}')
    callers, seen_digests, seen_cns = {}, set(), set()
    for caller_id, entry in document["callers"].items():
        if not _CALLER_ID.match(caller_id):
            raise ValueError(f"caller id {caller_id!r}: lower-case letters, digits, '.', '_', '-', at most 63")
        if not isinstance(entry, dict) or set(entry) - _CALLER_KEYS:
            raise ValueError(f"caller {caller_id}: allowed keys are {sorted(_CALLER_KEYS)}")
        methods = entry.get("methods")
        if not isinstance(methods, list) or not methods or set(methods) - set(PERMISSIONS):
            raise ValueError(f"caller {caller_id}: methods is a non-empty list of {list(PERMISSIONS)}")
        digests = [d for kind in TOKEN_DIGESTS if kind in entry for d in _digests(caller_id, kind, entry[kind])]
        cert_cn = entry.get("cert_cn")
        if cert_cn is not None and (not isinstance(cert_cn, str) or not cert_cn):
            raise ValueError(f"caller {caller_id}: cert_cn must be a non-empty string")
        if not digests and cert_cn is None:
            raise ValueError(f"caller {caller_id}: needs a token digest (token_sha256/token_sm3) or cert_cn")
        if cert_cn is not None and not mutual_tls:
            raise ValueError(f"caller {caller_id}: cert_cn needs mutual TLS (GRPC_TLS_CLIENT_CA_FILE)")
        if seen_digests & set(digests) or (cert_cn is not None and cert_cn in seen_cns):
            raise ValueError(f"caller {caller_id}: shares a token digest or cert_cn with another caller")
        seen_digests |= set(digests)
        seen_cns |= {cert_cn} - {None}
        callers[caller_id] = Caller(caller_id, frozenset(methods), tuple(digests), cert_cn)
    return callers


def _bearer(metadata: Iterable[tuple[str, str]]) -> str | None:
    values = [v for k, v in metadata if k.lower() == "authorization"]
    if not values:
        return None
    scheme, _, token = values[0].partition(" ")
    if len(values) > 1 or scheme.lower() != "bearer" or not token.strip():
        raise Refused(
            grpc.StatusCode.UNAUTHENTICATED,
            "invalid_credentials",
            "send one 'authorization: Bearer <token>' metadata entry",
        )
    return token.strip()


class Authoriser:
    """Pure decision: (method, metadata, verified client-certificate CN) -> caller id, or Refused.

    `callers=None` is the open mode (no callers file, loopback or GRPC_ALLOW_INSECURE only):
    every call is allowed as "anonymous".
    """

    def __init__(self, callers: Mapping[str, Caller] | None):
        self.callers = callers
        self.by_cn = {c.cert_cn: c for c in (callers or {}).values() if c.cert_cn}
        self.kinds = {kind for c in (callers or {}).values() for kind, _ in c.token_digests}

    def _by_token(self, token: str) -> Caller | None:
        raw = token.encode("utf-8")
        presented = {kind: TOKEN_DIGESTS[kind](raw) for kind in self.kinds}
        found = None
        for caller in self.callers.values():  # every digest is compared: no early exit
            for kind, digest in caller.token_digests:
                if hmac.compare_digest(presented[kind], digest) and found is None:
                    found = caller
        return found

    def identify(self, metadata: Iterable[tuple[str, str]], client_cn: str | None) -> Caller:
        token = _bearer(metadata)
        if token is not None:
            caller = self._by_token(token)
            if caller is None:
                raise Refused(grpc.StatusCode.UNAUTHENTICATED, "invalid_credentials", "unknown token")
            if caller.cert_cn is not None and caller.cert_cn != client_cn:
                raise Refused(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "invalid_credentials",
                    "this caller must also present its client certificate",
                    caller.caller_id,
                )
            return caller
        if client_cn is not None:
            caller = self.by_cn.get(client_cn)
            if caller is None:
                raise Refused(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "invalid_credentials",
                    "no caller is registered for this client certificate",
                )
            if caller.token_digests:
                raise Refused(
                    grpc.StatusCode.UNAUTHENTICATED,
                    "missing_credentials",
                    "this caller must also send its token",
                    caller.caller_id,
                )
            return caller
        raise Refused(
            grpc.StatusCode.UNAUTHENTICATED,
            "missing_credentials",
            "send 'authorization: Bearer <token>' metadata or a client certificate",
        )

    def authorise(self, full_method: str, metadata: Iterable[tuple[str, str]], client_cn: str | None = None) -> str:
        permission = permission_for(full_method)
        if permission is None or self.callers is None:
            return ANONYMOUS
        caller = self.identify(metadata, client_cn)
        if permission not in caller.methods:
            raise Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                "method_not_allowed",
                f"{method_name(full_method)} needs the {permission!r} permission",
                caller.caller_id,
            )
        return caller.caller_id


def load_callers_file(path: str, mutual_tls: bool) -> dict[str, Caller]:
    with open(path, encoding="utf-8") as f:
        try:
            document = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON: {exc}") from None
    return parse_callers(document, mutual_tls)


class CallersFile:
    """The Authoriser for GRPC_CALLERS_FILE, rebuilt when the file changes (checked at most
    every `interval` seconds). A changed file that does not validate is logged and ignored:
    the previous callers stay in force."""

    def __init__(self, path: str, mutual_tls: bool, interval: float = 1.0):
        self.path, self.mutual_tls, self.interval = path, mutual_tls, interval
        self.watch = FileWatch(path)
        self.authoriser = Authoriser(load_callers_file(path, mutual_tls))
        self.next_check = time.monotonic() + interval
        self.lock = threading.Lock()

    def __call__(self) -> Authoriser:
        if time.monotonic() >= self.next_check and self.lock.acquire(blocking=False):
            try:
                self.next_check = time.monotonic() + self.interval
                if self.watch.changed():
                    self.authoriser = Authoriser(load_callers_file(self.path, self.mutual_tls))
                    log.info("gRPC callers reloaded", extra={"callers": sorted(self.authoriser.callers)})
            except (OSError, ValueError) as exc:
                log.error(
                    "gRPC callers file changed but is invalid; the previous callers stay in force",
                    extra={"error": str(exc)},
                )
                self.watch.seen = None  # try again at the next check
            finally:
                self.lock.release()
        return self.authoriser


def client_cn(context) -> str | None:
    """The subject CN of the client certificate gRPC verified (mutual TLS), else None."""
    names = (context.auth_context() or {}).get("x509_common_name") or []
    return names[0].decode("utf-8", "replace") if names else None


def audit_refusal(full_method: str, refused: Refused, peer: str) -> None:
    REFUSED.labels(method_name(full_method), refused.code.name).inc()
    audit_log.warning(
        "grpc call refused",
        extra={
            "caller_id": refused.caller_id,
            "grpc_method": full_method,
            "grpc_code": refused.code.name,
            "reason": refused.reason,
            "peer": peer,
        },
    )


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks every non-public call before its handler runs. `authoriser` returns the Authoriser
    in force (a CallersFile, or a constant)."""

    _KINDS = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler),
        ("unary_stream", grpc.unary_stream_rpc_method_handler),
        ("stream_unary", grpc.stream_unary_rpc_method_handler),
        ("stream_stream", grpc.stream_stream_rpc_method_handler),
    )

    def __init__(self, authoriser: Callable[[], Authoriser]):
        self.authoriser = authoriser

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        full_method = handler_call_details.method
        if handler is None or permission_for(full_method) is None:
            return handler
        for kind, make in self._KINDS:
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return make(
                    self._guard(full_method, behaviour),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler

    def _guard(self, full_method: str, behaviour):
        def guarded(request, context):
            span = trace.get_current_span()
            try:
                caller_id = self.authoriser().authorise(full_method, context.invocation_metadata(), client_cn(context))
            except Refused as refused:
                span.set_attribute(CALLER_ATTRIBUTE, refused.caller_id)
                audit_refusal(full_method, refused, context.peer())
                context.abort(refused.code, str(refused))
            span.set_attribute(CALLER_ATTRIBUTE, caller_id)
            return behaviour(request, context)

        return guarded


def authoriser_from_env(mutual_tls: bool, env: Mapping[str, str] = os.environ) -> Callable[[], Authoriser] | None:
    """The callers in force, or None when GRPC_CALLERS_FILE is unset (open mode)."""
    path = env.get("GRPC_CALLERS_FILE", "").strip()
    if not path:
        return None
    try:
        return CallersFile(path, mutual_tls)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"GRPC_CALLERS_FILE: {exc}")


def _describe(callers: Mapping[str, Caller]) -> Sequence[str]:
    return [
        f"{c.caller_id}: methods={sorted(c.methods)} token={'yes' if c.token_digests else 'no'} "
        f"cert_cn={c.cert_cn or '-'}"
        for c in callers.values()
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m account.grpc_auth")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("token", help="print a new random token and the digests to put in the callers file")
    check = sub.add_parser("check", help="validate a callers file")
    check.add_argument("path")
    check.add_argument("--mutual-tls", action="store_true", help="the server runs with GRPC_TLS_CLIENT_CA_FILE")
    args = parser.parse_args(argv)
    if args.command == "token":
        token = secrets.token_urlsafe(32)
        print(
            json.dumps(
                {"token": token, **{kind: fn(token.encode()).hex() for kind, fn in TOKEN_DIGESTS.items()}}, indent=2
            )
        )
        return 0
    try:
        callers = load_callers_file(args.path, args.mutual_tls)
    except (OSError, ValueError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print("\n".join(_describe(callers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
