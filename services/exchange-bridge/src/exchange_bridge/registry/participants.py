"""Participants (banks), their SM2 keys, and the authentication of every bank request.

Insert-only: a key is added once under a key id and never changes; revoking inserts a
revocation document with the same `_id` (so a revoked key id can never be reused). A request
nonce is inserted only when the request is about to write (`Caller.commit`), so a refused
request stores nothing, and the same nonce is refused afterwards.
"""

import hmac
import time
from dataclasses import dataclass, field

from carbon_common.clock import utc_now_iso
from carbon_common.gm.curve import parse_public_key
from carbon_common.mongo import insert_new, insert_or_get
from exchange_bridge.registry import signing
from exchange_bridge.registry.errors import ApiError


@dataclass
class Caller:
    """An authenticated bank request; `commit()` spends its nonce (once) before the first write."""

    participant: str
    key_id: str
    nonce_doc: dict
    db: object = field(repr=False)
    committed: bool = False

    def commit(self) -> None:
        if self.committed:
            return
        if insert_new(self.db.nonces, [self.nonce_doc]):
            raise ApiError("nonce_reused", "this nonce was used before: sign each request with a fresh one")
        self.committed = True


def key_doc_id(participant: str, key_id: str) -> str:
    return f"{participant}/{key_id}"


class Participants:
    def __init__(self, db, clock=time.time):
        self.db, self.clock = db, clock

    def register(self, participant: str, name: str) -> tuple[dict, bool]:
        if not signing.PARTICIPANT_ID.fullmatch(participant or ""):
            raise ApiError("invalid_request", f"participant_id must match {signing.PARTICIPANT_ID.pattern}")
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ApiError("invalid_request", "name must be 1-200 characters")
        doc = {"_id": participant, "participant_id": participant, "name": name, "registered_at": utc_now_iso()}
        stored, created = insert_or_get(self.db.participants, doc)
        if not created and stored["name"] != name:
            raise ApiError("participant_conflict", f"participant {participant} is registered under another name")
        return stored, created

    def add_key(self, participant: str, key_id: str, public_key: str, before_write=None) -> tuple[dict, bool]:
        if self.db.participants.find_one({"_id": participant}) is None:
            raise ApiError("not_found", f"no participant {participant}")
        if not isinstance(key_id, str) or not signing.KEY_ID.fullmatch(key_id):
            raise ApiError("invalid_request", f"key_id must match {signing.KEY_ID.pattern}")
        try:
            parse_public_key(public_key)
        except (ValueError, TypeError):
            raise ApiError("invalid_request", "public_key must be 128 hex characters X||Y (no 04) on the SM2 curve")
        doc = {
            "_id": key_doc_id(participant, key_id),
            "participant": participant,
            "key_id": key_id,
            "public_key": public_key.lower(),
            "added_at": utc_now_iso(),
        }
        existing = self.db.keys.find_one({"_id": doc["_id"]})
        if existing is None:
            if before_write:
                before_write()
            existing, created = insert_or_get(self.db.keys, doc)
        else:
            created = False
        if existing["public_key"] != doc["public_key"]:
            raise ApiError("key_conflict", f"key id {key_id} is taken by another key: key ids are never reused")
        return existing, created

    def revoke_key(self, participant: str, key_id: str, reason: str, before_write=None) -> dict:
        stored = self.db.keys.find_one({"_id": key_doc_id(participant, key_id)})
        if stored is None:
            raise ApiError("not_found", f"no key {key_id} of {participant}")
        if before_write:
            before_write()
        revocation = {"_id": stored["_id"], "reason": str(reason)[:200], "revoked_at": utc_now_iso()}
        insert_or_get(self.db.key_revocations, revocation)
        return self.describe_key(participant, key_id)

    def describe_key(self, participant: str, key_id: str) -> dict | None:
        stored = self.db.keys.find_one({"_id": key_doc_id(participant, key_id)})
        if stored is None:
            return None
        revoked = self.db.key_revocations.find_one({"_id": stored["_id"]})
        out = {k: stored[k] for k in ("participant", "key_id", "public_key", "added_at")}
        out["status"] = "revoked" if revoked else "active"
        if revoked:
            out["revoked_at"] = revoked["revoked_at"]
        return out

    def describe(self, participant: str) -> dict | None:
        """The participant and all its keys (admin only: the keys listing scans a tiny collection)."""
        stored = self.db.participants.find_one({"_id": participant})
        if stored is None:
            return None
        key_ids = sorted(k["key_id"] for k in self.db.keys.find({"participant": participant}, {"key_id": 1}))
        keys = [self.describe_key(participant, key_id) for key_id in key_ids]
        return {"participant_id": participant, "name": stored["name"], "keys": keys}

    def exists(self, participant: str) -> bool:
        return self.db.participants.find_one({"_id": participant}, {"_id": 1}) is not None

    def active_key(self, participant: str, key_id: str, missing: str = "unknown_key") -> str:
        """The public key of an active key; ApiError `missing` (unknown) or key_revoked."""
        stored = self.db.keys.find_one({"_id": key_doc_id(participant, key_id)})
        if stored is None:
            raise ApiError(missing, f"no key {key_id} registered for {participant}")
        if self.db.key_revocations.find_one({"_id": stored["_id"]}, {"_id": 1}):
            raise ApiError("key_revoked", f"key {key_id} of {participant} is revoked")
        return stored["public_key"]

    def authenticate(self, headers, method: str, target: str, body: bytes) -> Caller:
        values = {}
        for name in signing.HEADERS:
            value = headers.get(name)
            if not value:
                raise ApiError("missing_auth_header", f"{name} is required")
            if not signing.PATTERNS[name].fullmatch(value):
                raise ApiError("malformed_auth_header", f"{name} must match {signing.PATTERNS[name].pattern}")
            values[name] = value
        participant, key_id = values[signing.H_PARTICIPANT], values[signing.H_KEY_ID]
        timestamp, nonce = values[signing.H_TIMESTAMP], values[signing.H_NONCE]
        if abs(int(timestamp) - self.clock()) > signing.WINDOW_SECONDS:
            raise ApiError("timestamp_out_of_window", f"timestamp must be within ±{signing.WINDOW_SECONDS} s")
        if not self.exists(participant):
            raise ApiError("unknown_participant", f"no participant {participant}")
        public_key = self.active_key(participant, key_id)
        message = signing.string_to_sign(method, target, timestamp, nonce, body)
        if not signing.verify(public_key, message, values[signing.H_SIGNATURE]):
            raise ApiError("signature_invalid", "the SM2 signature does not verify (see docs/registry-api.md)")
        nonce_doc = {"_id": f"{participant}:{nonce}", "at": utc_now_iso()}
        if self.db.nonces.find_one({"_id": nonce_doc["_id"]}, {"_id": 1}):
            raise ApiError("nonce_reused", "this nonce was used before: sign each request with a fresh one")
        return Caller(participant, key_id, nonce_doc, self.db)


def check_admin(header: str | None, token: str | None) -> None:
    if not token:
        raise ApiError("admin_disabled", "the admin API is off: REGISTRY_ADMIN_TOKEN is not set")
    given = (header or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError("admin_unauthorized", "Authorization: Bearer <REGISTRY_ADMIN_TOKEN> required")
