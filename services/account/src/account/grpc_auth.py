"""The account gRPC server's caller check: every non-public call is identified and authorised
before its handler runs.

Who the callers are and what they may call comes from the callers file (account.grpc_callers,
GRPC_CALLERS_FILE, re-read when it changes). A caller sends its bearer token as
`authorization: Bearer <token>` metadata (compared by digest, in constant time) and/or presents
a client certificate (mutual TLS, account.grpc_tls).

A refused call gets UNAUTHENTICATED (no or invalid credential) or PERMISSION_DENIED (method not
granted) before any handler runs, is counted in carbon_grpc_refused_total{method,code} and
written as one JSON line on logger "account.grpc.audit" (caller id or "anonymous", method,
code, reason, peer address; never the token). Allowed calls put the caller id in the span
attribute carbon.grpc.caller. Allowed calls that need the "admin" permission (OpenAccount,
SetStatus: they change accounts) are audited too, once they ended: one line "grpc admin call"
on the same logger (level info) with the caller id, method, the status code they ended with and
the peer; never the request.
"""

import hmac
import logging
import threading
import time
from typing import Callable, Iterable, Mapping

import grpc
from opentelemetry import trace
from prometheus_client import Counter

from carbon_common.config import setting

from account.grpc_callers import TOKEN_DIGESTS, Caller, load_callers_file, permission_for
from account.grpc_tls import FileWatch

ANONYMOUS = "anonymous"
AUDITED_PERMISSIONS = frozenset({"admin"})  # allowed calls needing these are audited as well
CALLER_ATTRIBUTE = "carbon.grpc.caller"
audit_log = logging.getLogger("account.grpc.audit")
log = logging.getLogger("account.grpc_auth")
REFUSED = Counter(
    "carbon_grpc_refused_total", "gRPC calls refused by caller authentication or authorisation", ["method", "code"]
)


def method_name(full_method: str) -> str:
    """ "/carbon.account.v1.AccountService/Redeem" -> "Redeem" (a bounded metric label)."""
    return full_method.rsplit("/", 1)[-1]


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, detail: str, caller_id: str = ANONYMOUS):
        super().__init__(f"{reason}: {detail}")
        self.code, self.reason, self.caller_id = code, reason, caller_id


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


def audit_call(full_method: str, caller_id: str, code: str, peer: str) -> None:
    """The audit line of an allowed call that needs an AUDITED_PERMISSIONS permission."""
    audit_log.info(
        "grpc admin call",
        extra={"caller_id": caller_id, "grpc_method": full_method, "grpc_code": code, "peer": peer},
    )


def _ended_with(context) -> str:
    """The status a handler ended with when it raised (context.abort sets it first)."""
    try:
        code = context.code()
    except RuntimeError:  # a grpcio without ServicerContext.code()
        code = None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


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
        audited = permission_for(full_method) in AUDITED_PERMISSIONS

        def guarded(request, context):
            span = trace.get_current_span()
            try:
                caller_id = self.authoriser().authorise(full_method, context.invocation_metadata(), client_cn(context))
            except Refused as refused:
                span.set_attribute(CALLER_ATTRIBUTE, refused.caller_id)
                audit_refusal(full_method, refused, context.peer())
                context.abort(refused.code, str(refused))
            span.set_attribute(CALLER_ATTRIBUTE, caller_id)
            if not audited:
                return behaviour(request, context)
            try:
                response = behaviour(request, context)
            except Exception:
                audit_call(full_method, caller_id, _ended_with(context), context.peer())
                raise
            audit_call(full_method, caller_id, "OK", context.peer())
            return response

        return guarded


def authoriser_from_env(mutual_tls: bool, config: Mapping | None = None) -> Callable[[], Authoriser] | None:
    """The callers in force, or None when GRPC_CALLERS_FILE is unset (open mode).
    A value in `config` wins over the environment (carbon_common.config)."""
    path = setting("GRPC_CALLERS_FILE", "", config)
    if not path:
        return None
    try:
        return CallersFile(path, mutual_tls)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"GRPC_CALLERS_FILE: {exc}")
