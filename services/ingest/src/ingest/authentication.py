"""Authentication of a signed partner or bank-app request, as pure steps: no Flask, no server.

    read the body (size) -> parse the auth headers and timestamp -> parse the JSON (if in clear)
    -> look up partner and key -> key policy -> SM2 verify -> partner policy (status, kind)
    -> decrypt the body (if enveloped) -> rate limit -> nonce not yet used

Order matters: cheap checks first (size, headers, timestamp, JSON shape, batch size) so bad
input is refused before any signature math. The nonce is only *checked* here: the caller
consumes it (`Caller.consume_nonce`) once the whole request has proven valid, so bad input
leaves nothing behind. Each step takes plain values (and the repository, for the lookups) and
raises ApiError with the machine-readable code of docs/partner-api.md §6; `ingest.views.auth`
is the thin Flask adapter that feeds them.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from ingest import domain, jsonsafe, signing
from ingest.errors import ApiError

NONCE_TTL = timedelta(seconds=2 * signing.WINDOW_SECONDS + 60)


@dataclass(frozen=True)
class SignedRequest:
    """What authentication needs of an HTTP request (the body already read, within its limit)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class Observer:
    """Where the steps report (metrics, tracing); this one reports nowhere."""

    def verify_seconds(self, seconds: float) -> None:
        """An SM2 verification took `seconds`."""

    def signature_verified(self, partner_id: str) -> None:
        """The request is signed by this partner's key (its status and kind not yet checked)."""


@dataclass
class Caller:
    """An authenticated request: who sent it, with which key, its document and its time."""

    partner: dict
    key: dict
    auth: signing.AuthHeaders
    body: object  # the parsed JSON document (None for a GET)
    now: datetime
    repo: object  # where the nonce is consumed

    @property
    def partner_id(self) -> str:
        return self.partner["_id"]

    def consume_nonce(self) -> None:
        consume_nonce(self.repo, self.partner_id, self.auth.nonce, self.now)


# ---- the request envelope -------------------------------------------------------------------


def check_content_type(mimetype: str) -> None:
    if mimetype != "application/json":
        raise ApiError("unsupported_media_type", "Content-Type must be application/json")


def body_limit(method: str, max_body_bytes: int) -> int:
    """A GET carries no body; anything else at most `max_body_bytes`."""
    return 0 if method == "GET" else max_body_bytes


def read_body(declared_length: int | None, stream, limit: int) -> bytes:
    """At most `limit` bytes of `stream` (a file-like), refusing a longer body declared or sent."""
    if declared_length is not None and declared_length > limit:
        raise ApiError("body_too_large", f"the body exceeds {limit} bytes", limit=limit)
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise ApiError("body_too_large", f"the body exceeds {limit} bytes", limit=limit)
    return body


def parse_auth(headers: Mapping[str, str], now_ts: float) -> signing.AuthHeaders:
    auth = signing.parse_headers(headers)
    signing.check_timestamp(auth.timestamp, now_ts)
    return auth


def parse_document(raw: bytes, precheck: Callable | None = None):
    document = jsonsafe.parse(raw)
    if precheck:
        precheck(document)
    return document


# ---- who signed it --------------------------------------------------------------------------


def lookup(repo, auth: signing.AuthHeaders) -> tuple[dict, dict]:
    """(partner, key) named by the headers; the key must be this partner's."""
    partner = repo.get_partner(auth.partner_id)
    if partner is None:
        raise ApiError("unknown_partner", "no partner with this id")
    key = repo.get_key(auth.key_id)
    if key is None:
        raise ApiError("unknown_key", "no key with this id")
    if key["partner_id"] != partner["_id"]:
        raise ApiError("key_partner_mismatch", "this key belongs to another partner")
    return partner, key


def check_key(key: dict, now: datetime) -> None:
    problem = domain.key_state(key, now)
    if problem:
        raise ApiError(problem, "this key may no longer sign requests")


def verify_signature(
    key: dict, request: SignedRequest, auth: signing.AuthHeaders, observer: Observer = Observer()
) -> None:
    message = signing.string_to_sign(request.method, request.path, auth.timestamp, auth.nonce, request.body)
    started = time.perf_counter()
    valid = signing.verify(key["public_key"], message, auth.signature)
    observer.verify_seconds(time.perf_counter() - started)
    if not valid:
        raise ApiError("signature_invalid", "the signature does not match this request and key")


def check_partner(partner: dict, kind: str) -> None:
    if partner.get("status") == "suspended":
        raise ApiError("partner_suspended", "this partner is suspended")
    if partner.get("kind") != kind:
        raise ApiError("forbidden_for_partner_kind", f"this endpoint is for {kind} clients")


def decrypt(private_key: str, body: bytes, auth: signing.AuthHeaders, max_body_bytes: int) -> bytes:
    plaintext = signing.decrypt_body(private_key, body, auth)
    if len(plaintext) > max_body_bytes:
        raise ApiError("body_too_large", f"the decrypted body exceeds {max_body_bytes} bytes")
    return plaintext


# ---- rate and replay ------------------------------------------------------------------------


def rate_limit(repo, partner: dict, now_ts: float) -> None:
    """One slot of this minute per request, exact across workers (unique inserts); 0 = unlimited."""
    limit = int(partner.get("rate_limit_per_minute") or 0)
    if limit <= 0:
        return
    window = int(now_ts // 60)
    expires = datetime.fromtimestamp((window + 2) * 60, timezone.utc)
    if not repo.take_rate_slot(partner["_id"], window, limit, expires):
        retry_after = int((window + 1) * 60 - now_ts) + 1
        raise ApiError("rate_limited", f"more than {limit} requests this minute", retry_after=retry_after)


def check_nonce(repo, partner_id: str, nonce: str, now: datetime) -> None:
    if repo.nonce_seen(partner_id, nonce, now):
        raise ApiError("nonce_reused", "this nonce was already used")


def consume_nonce(repo, partner_id: str, nonce: str, now: datetime) -> None:
    if not repo.consume_nonce(partner_id, nonce, now, NONCE_TTL):
        raise ApiError("nonce_reused", "this nonce was already used")


# ---- all of it, in order --------------------------------------------------------------------


def authenticate(
    request: SignedRequest,
    kind: str,
    *,
    repo,
    settings,
    now_ts: float,
    precheck: Callable | None = None,
    observer: Observer = Observer(),
) -> Caller:
    """The request as a signed call by a partner of `kind`, or ApiError (nothing written).

    `settings`: max_body_bytes and platform_private_key (ingest.config.Settings)."""
    auth = parse_auth(request.headers, now_ts)
    document = None
    if auth.encryption is None and request.method != "GET":
        document = parse_document(request.body, precheck)
    partner, key = lookup(repo, auth)
    now = datetime.fromtimestamp(now_ts, timezone.utc)
    check_key(key, now)
    verify_signature(key, request, auth, observer)
    observer.signature_verified(partner["_id"])
    check_partner(partner, kind)
    if auth.encryption is not None:
        plaintext = decrypt(settings.platform_private_key, request.body, auth, settings.max_body_bytes)
        document = parse_document(plaintext, precheck)
    rate_limit(repo, partner, now_ts)
    check_nonce(repo, partner["_id"], auth.nonce, now)
    return Caller(partner, key, auth, document, now, repo)
