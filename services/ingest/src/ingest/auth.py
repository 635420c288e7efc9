"""Authentication of partner and bank-app requests (SM2-signed), and of the admin API.

Order matters: cheap checks first (size, headers, timestamp, JSON shape, batch size) so bad
input is refused before any signature math; the nonce is only *checked* here — the caller
consumes it once the whole request has proven valid, so bad input leaves nothing behind.
"""
import hmac
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app, request
from opentelemetry import trace

from carbon_common import attributes

from ingest import domain, jsonsafe, signing
from ingest.errors import ApiError

NONCE_TTL = timedelta(seconds=2 * signing.WINDOW_SECONDS + 60)


@dataclass
class Caller:
    partner: dict
    key: dict
    auth: signing.AuthHeaders
    body: object          # the parsed JSON document
    now: datetime

    @property
    def partner_id(self) -> str:
        return self.partner["_id"]

    def consume_nonce(self) -> None:
        repo = current_app.extensions["ingest"].repo
        if not repo.consume_nonce(self.partner_id, self.auth.nonce, self.now, NONCE_TTL):
            raise ApiError("nonce_reused", "this nonce was already used")


def read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError("body_too_large", f"the body exceeds {limit} bytes", limit=limit)
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError("body_too_large", f"the body exceeds {limit} bytes", limit=limit)
    return body


def _json_content_type() -> None:
    if request.mimetype != "application/json":
        raise ApiError("unsupported_media_type", "Content-Type must be application/json")


def signed_request(kind: str, precheck=None) -> Caller:
    """Authenticate the current request as a signed call by a partner of `kind`."""
    ext = current_app.extensions["ingest"]
    settings = ext.settings
    if request.method == "GET":
        body = read_body(0)
    else:
        _json_content_type()
        body = read_body(settings.max_body_bytes)
    auth = signing.parse_headers(request.headers)
    now_ts = ext.clock()
    signing.check_timestamp(auth.timestamp, now_ts)
    document = None
    if auth.encryption is None and request.method != "GET":
        document = jsonsafe.parse(body)
        if precheck:
            precheck(document)
    partner = ext.repo.get_partner(auth.partner_id)
    if partner is None:
        raise ApiError("unknown_partner", "no partner with this id")
    key = ext.repo.get_key(auth.key_id)
    if key is None:
        raise ApiError("unknown_key", "no key with this id")
    if key["partner_id"] != partner["_id"]:
        raise ApiError("key_partner_mismatch", "this key belongs to another partner")
    now = datetime.fromtimestamp(now_ts, timezone.utc)
    problem = domain.key_state(key, now)
    if problem:
        raise ApiError(problem, "this key may no longer sign requests")
    message = signing.string_to_sign(request.method, request.path, auth.timestamp, auth.nonce, body)
    started = time.perf_counter()
    valid = signing.verify(key["public_key"], message, auth.signature)
    ext.metrics.verify_seconds.observe(time.perf_counter() - started)
    if not valid:
        raise ApiError("signature_invalid", "the signature does not match this request and key")
    trace.get_current_span().set_attribute(attributes.PARTNER_ID, partner["_id"])
    if partner.get("status") == "suspended":
        raise ApiError("partner_suspended", "this partner is suspended")
    if partner.get("kind") != kind:
        raise ApiError("forbidden_for_partner_kind", f"this endpoint is for {kind} clients")
    if auth.encryption is not None:
        plaintext = signing.decrypt_body(settings.platform_private_key, body, auth)
        if len(plaintext) > settings.max_body_bytes:
            raise ApiError("body_too_large", f"the decrypted body exceeds {settings.max_body_bytes} bytes")
        document = jsonsafe.parse(plaintext)
        if precheck:
            precheck(document)
    _rate_limit(ext, partner, now_ts)
    if ext.repo.nonce_seen(partner["_id"], auth.nonce, now):
        raise ApiError("nonce_reused", "this nonce was already used")
    return Caller(partner, key, auth, document, now)


def _rate_limit(ext, partner: dict, now_ts: float) -> None:
    limit = int(partner.get("rate_limit_per_minute") or 0)
    if limit <= 0:
        return
    window = int(now_ts // 60)
    expires = datetime.fromtimestamp((window + 2) * 60, timezone.utc)
    if not ext.repo.take_rate_slot(partner["_id"], window, limit, expires):
        retry_after = int((window + 1) * 60 - now_ts) + 1
        raise ApiError("rate_limited", f"more than {limit} requests this minute", retry_after=retry_after)


def require_admin() -> None:
    token = current_app.extensions["ingest"].settings.admin_token
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError("admin_unauthorized", "a valid admin bearer token is required")
