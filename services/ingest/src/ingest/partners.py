"""Partner administration: register, rotate/revoke keys, suspend/resume (admin API + CLI).

Key ids are global (a key id names exactly one partner's key), so a request signed with
another partner's key id is told so precisely. Rotation adds the new key and lets the old one
sign until the end of an overlap window.
"""

import re
from datetime import datetime, timedelta

from carbon_common import gm
from carbon_common.clock import iso_z

from ingest import domain
from ingest.errors import ApiError
from ingest.repository import Duplicate
from ingest.signing import KEY_ID, PARTNER_ID
from ingest.validation import SCENARIOS

KINDS = ("data_partner", "bank_app")
NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
DEFAULT_OVERLAP = timedelta(days=1)
MAX_OVERLAP = timedelta(days=30)


def _bad(message, field=None):
    return ApiError("invalid_request", message, field=field)


def _public_key(value, field="public_key") -> str:
    if not isinstance(value, str):
        raise _bad("public_key must be 128 hex characters (X||Y, no 04 prefix)", field)
    if len(value) == 130 and value[:2] == "04":
        value = value[2:]  # slice, never lstrip: X may start with 0 or 4
    try:
        gm.sm2_verify(value, b"probe", bytes(64))  # parses and checks the point is on the curve
    except (ValueError, TypeError):
        raise _bad("public_key is not a valid SM2 public key (128 hex X||Y)", field) from None
    return value.lower()


def _key_spec(doc, field="keys") -> dict:
    if not isinstance(doc, dict) or set(doc) - {"key_id", "public_key"} or "key_id" not in doc:
        raise _bad("a key is {key_id, public_key}", field)
    if not isinstance(doc["key_id"], str) or not KEY_ID.fullmatch(doc["key_id"]):
        raise _bad(f"key_id must match {KEY_ID.pattern}", field)
    return {"key_id": doc["key_id"], "public_key": _public_key(doc.get("public_key"))}


def parse_partner(doc) -> dict:
    allowed = {"partner_id", "name", "kind", "scenarios", "rate_limit_per_minute", "keys"}
    if not isinstance(doc, dict) or set(doc) - allowed:
        raise _bad(f"a partner has the fields {sorted(allowed)}")
    if not isinstance(doc.get("partner_id"), str) or not PARTNER_ID.fullmatch(doc["partner_id"]):
        raise _bad(f"partner_id must match {PARTNER_ID.pattern}", "partner_id")
    if not isinstance(doc.get("name"), str) or not NAME.fullmatch(doc["name"]):
        raise _bad("name must be 1-100 printable characters", "name")
    kind = doc.get("kind", "data_partner")
    if kind not in KINDS:
        raise _bad(f"kind must be one of {KINDS}", "kind")
    scenarios = doc.get("scenarios", [])
    if (
        not isinstance(scenarios, list)
        or any(s not in SCENARIOS for s in scenarios)
        or len(set(scenarios)) != len(scenarios)
    ):
        raise _bad(f"scenarios must be distinct ids from {sorted(SCENARIOS)}", "scenarios")
    if kind == "data_partner" and not scenarios:
        raise _bad("a data partner needs at least one scenario", "scenarios")
    rate = doc.get("rate_limit_per_minute", 600)
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= 1_000_000:
        raise _bad("rate_limit_per_minute must be an integer 0..1000000 (0 = unlimited)", "rate_limit_per_minute")
    keys = doc.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= 10:
        raise _bad("keys must list 1-10 keys", "keys")
    specs = [_key_spec(k) for k in keys]
    if len({k["key_id"] for k in specs}) != len(specs):
        raise _bad("key ids must be distinct", "keys")
    return {
        "partner_id": doc["partner_id"],
        "name": doc["name"],
        "kind": kind,
        "scenarios": sorted(scenarios),
        "rate_limit_per_minute": rate,
        "keys": specs,
    }


def key_view(key: dict) -> dict:
    return {
        "key_id": key["_id"],
        "public_key": key["public_key"],
        "created_at": iso_z(key["created_at"], "seconds"),
        "not_after": iso_z(key["not_after"], "seconds") if key.get("not_after") else None,
        "revoked_at": iso_z(key["revoked_at"], "seconds") if key.get("revoked_at") else None,
    }


class Partners:
    def __init__(self, repo):
        self.repo = repo

    def view(self, partner_id: str) -> dict:
        partner = self._get(partner_id)
        return {
            "partner_id": partner["_id"],
            "name": partner["name"],
            "kind": partner["kind"],
            "scenarios": partner["scenarios"],
            "rate_limit_per_minute": partner["rate_limit_per_minute"],
            "status": partner["status"],
            "created_at": iso_z(partner["created_at"], "seconds"),
            "keys": [key_view(k) for k in self.repo.partner_keys(partner_id)],
        }

    def _get(self, partner_id: str) -> dict:
        partner = self.repo.get_partner(partner_id)
        if partner is None:
            raise ApiError("partner_not_found", "no partner with this id")
        return partner

    def register(self, doc, now: datetime) -> tuple[int, dict]:
        spec = parse_partner(doc)
        for key in spec["keys"]:  # refuse before writing anything
            existing = self.repo.get_key(key["key_id"])
            if existing and (
                existing["partner_id"] != spec["partner_id"] or existing["public_key"] != key["public_key"]
            ):
                raise ApiError("key_conflict", f"key id {key['key_id']} is already in use", field="keys")
        partner = {
            "_id": spec["partner_id"],
            "name": spec["name"],
            "kind": spec["kind"],
            "scenarios": spec["scenarios"],
            "rate_limit_per_minute": spec["rate_limit_per_minute"],
            "status": "active",
            "created_at": now,
            "spec_hash": domain.content_hash(spec),
        }
        status = 201
        try:
            self.repo.insert_partner(partner)
        except Duplicate:
            if self._get(spec["partner_id"])["spec_hash"] != partner["spec_hash"]:
                raise ApiError("partner_conflict", "this partner_id is registered with different settings")
            status = 200
        for key in spec["keys"]:
            self._insert_key(spec["partner_id"], key, now)
        return status, self.view(spec["partner_id"])

    def _insert_key(self, partner_id: str, key: dict, now: datetime) -> bool:
        try:
            self.repo.insert_key(
                {
                    "_id": key["key_id"],
                    "partner_id": partner_id,
                    "public_key": key["public_key"],
                    "created_at": now,
                    "not_after": None,
                    "revoked_at": None,
                }
            )
            return True
        except Duplicate:
            existing = self.repo.get_key(key["key_id"])
            if existing["partner_id"] != partner_id or existing["public_key"] != key["public_key"]:
                raise ApiError("key_conflict", f"key id {key['key_id']} is already in use") from None
            return False

    def rotate_key(self, partner_id: str, doc, now: datetime) -> tuple[int, dict]:
        """Add a key; with `replaces`, the old key keeps signing for `overlap_seconds`."""
        self._get(partner_id)
        if not isinstance(doc, dict) or set(doc) - {"key_id", "public_key", "replaces", "overlap_seconds"}:
            raise _bad("the body is {key_id, public_key, replaces?, overlap_seconds?}")
        key = _key_spec({k: doc[k] for k in ("key_id", "public_key") if k in doc})
        overlap = doc.get("overlap_seconds", int(DEFAULT_OVERLAP.total_seconds()))
        if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= MAX_OVERLAP.total_seconds():
            raise _bad("overlap_seconds must be an integer 0..2592000", "overlap_seconds")
        old = None
        if "replaces" in doc:
            old = self.repo.get_key(doc["replaces"]) if isinstance(doc["replaces"], str) else None
            if old is None or old["partner_id"] != partner_id:
                raise ApiError("key_not_found", "replaces names no key of this partner", field="replaces")
        created = self._insert_key(partner_id, key, now)
        if old is not None and created:
            end = now + timedelta(seconds=overlap)
            if old.get("not_after") is None or domain.aware(old["not_after"]) > end:
                self.repo.set_key_fields(old["_id"], {"not_after": end})
        return (201 if created else 200), self.view(partner_id)

    def revoke_key(self, partner_id: str, key_id: str, now: datetime) -> dict:
        key = self.repo.get_key(key_id)
        if key is None or key["partner_id"] != partner_id:
            raise ApiError("key_not_found", "no such key for this partner")
        if key.get("revoked_at") is None:
            self.repo.set_key_fields(key_id, {"revoked_at": now})
        return self.view(partner_id)

    def set_status(self, partner_id: str, status: str) -> dict:
        self._get(partner_id)
        self.repo.set_partner_fields(partner_id, {"status": status})
        return self.view(partner_id)

    def list(self) -> list:
        return [self.view(partner_id) for partner_id in self.repo.partner_ids()]
