"""The Flask adapter of authentication: partner and bank-app requests (SM2-signed) and the admin API.

It only reads the Flask request and the app's extension and reports to metrics and tracing;
every rule is a pure step of `ingest.authentication` (tested without Flask).
"""

import hmac

from flask import current_app, request
from opentelemetry import trace

from carbon_common import attributes

from ingest import authentication, signing
from ingest.authentication import Caller, SignedRequest
from ingest.errors import ApiError

__all__ = ["Caller", "read_body", "require_admin", "signed_request"]


class _Telemetry(authentication.Observer):
    def __init__(self, metrics):
        self.metrics = metrics

    def verify_seconds(self, seconds: float) -> None:
        self.metrics.verify_seconds.observe(seconds)

    def signature_verified(self, partner_id: str) -> None:
        trace.get_current_span().set_attribute(attributes.PARTNER_ID, partner_id)


def read_body(limit: int) -> bytes:
    return authentication.read_body(request.content_length, request.stream, limit)


def signed_target() -> str:
    """What the signature covers of the URL: the path, and `?` with the query string exactly
    as sent when there is one (signing.request_target)."""
    return signing.request_target(request.path, request.query_string.decode("latin-1"))


def signed_request(kind: str, precheck=None) -> Caller:
    """Authenticate the current request as a signed call by a partner of `kind`."""
    ext = current_app.extensions["ingest"]
    if request.method != "GET":
        authentication.check_content_type(request.mimetype)
    body = read_body(authentication.body_limit(request.method, ext.settings.max_body_bytes))
    return authentication.authenticate(
        SignedRequest(request.method, signed_target(), request.headers, body),
        kind,
        repo=ext.repo,
        settings=ext.settings,
        now_ts=ext.clock(),
        precheck=precheck,
        observer=_Telemetry(ext.metrics),
    )


def require_admin() -> None:
    token = current_app.extensions["ingest"].settings.admin_token
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError("admin_unauthorized", "a valid admin bearer token is required")
