"""Consents: a bank app records that a customer authorized a partner for scenarios and a
purpose until an expiry; revokes it; files a deletion request for the customer's data.

The customer number is kept only as its keyed-SM3 pseudonym (user_pid) and SM4-encrypted
(for the bank's back office); a deletion request erases the encrypted copy and revokes all.
"""

import re
from datetime import datetime, timedelta

from carbon_common import gm
from carbon_common.clock import iso_z

from ingest import domain
from ingest.errors import ApiError
from ingest.repository import Duplicate
from ingest.validation import CUSTOMER_REF, IDENT, RFC3339, SCENARIOS

MAX_TERM = timedelta(days=5 * 366)
PURPOSE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
FIELDS = {"consent_ref", "customer_number", "partner_id", "scenarios", "purpose", "expires_at"}
LIST_PARAMS = {"user_pid", "page_size", "page_token"}
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
USER_PID = re.compile(r"^[0-9a-f]{64}$")
CONSENT_ID = re.compile(r"^cns_[0-9a-f]{32}$")


def _bad(message, field):
    return ApiError("invalid_request", message, field=field)


def parse_consent(doc, now: datetime) -> dict:
    if not isinstance(doc, dict):
        raise _bad("the body must be an object", None)
    unknown = set(doc) - FIELDS
    if unknown:
        raise ApiError("invalid_request", f"unknown field {sorted(unknown)[0][:40]!r}", field=sorted(unknown)[0][:40])
    for name in sorted(FIELDS):
        if name not in doc:
            raise ApiError("invalid_request", f"{name} is required", field=name)
    if not isinstance(doc["consent_ref"], str) or not IDENT.fullmatch(doc["consent_ref"]):
        raise _bad("consent_ref must be 1-64 of [A-Za-z0-9._-]", "consent_ref")
    if not isinstance(doc["customer_number"], str) or not CUSTOMER_REF.fullmatch(doc["customer_number"]):
        raise _bad("customer_number must be 6-32 letters or digits", "customer_number")
    if not isinstance(doc["partner_id"], str) or not doc["partner_id"]:
        raise _bad("partner_id must be a partner id", "partner_id")
    scenarios = doc["scenarios"]
    if (
        not isinstance(scenarios, list)
        or not scenarios
        or len(scenarios) > len(SCENARIOS)
        or any(not isinstance(s, str) for s in scenarios)
        or len(set(scenarios)) != len(scenarios)
    ):
        raise _bad("scenarios must be a non-empty list of distinct scenario ids", "scenarios")
    unknown_scenarios = [s for s in scenarios if s not in SCENARIOS]
    if unknown_scenarios:
        raise ApiError("unknown_scenario", f"unknown scenario {unknown_scenarios[0][:40]!r}", field="scenarios")
    if not isinstance(doc["purpose"], str) or not PURPOSE.fullmatch(doc["purpose"]):
        raise _bad("purpose must be 1-200 printable characters", "purpose")
    expires = doc["expires_at"]
    if not isinstance(expires, str) or not RFC3339.fullmatch(expires):
        raise _bad("expires_at must be RFC 3339 with a zone", "expires_at")
    try:
        expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        raise _bad("expires_at is not a real date and time", "expires_at") from None
    if not now < expires_at <= now + MAX_TERM:
        raise _bad("expires_at must lie in the future, at most 5 years ahead", "expires_at")
    return {**doc, "scenarios": sorted(scenarios), "expires_at": expires_at.replace(microsecond=0)}


def status(consent: dict, now: datetime) -> str:
    """active, revoked (by the customer, or by a deletion request) or expired."""
    if consent.get("revoked_at") is not None:
        return "revoked"
    return "expired" if domain.aware(consent["expires_at"]) <= now else "active"


def parse_list_query(args) -> dict:
    """The query of GET /v1/consents: user_pid (required), page_size, page_token."""
    unknown = sorted(set(args) - LIST_PARAMS)
    if unknown:
        raise ApiError("invalid_request", f"unknown query parameter {unknown[0][:40]!r}", field=unknown[0][:40])
    for name in args:
        if len(args.getlist(name)) != 1:
            raise _bad(f"{name} is given more than once", name)
    user_pid = args.get("user_pid")
    if user_pid is None:
        raise ApiError("invalid_request", "user_pid is required", field="user_pid")
    if not USER_PID.fullmatch(user_pid):
        raise _bad("user_pid must be 64 lower-case hex characters (as in every consent answer)", "user_pid")
    size = args.get("page_size", str(DEFAULT_PAGE_SIZE))
    if not re.fullmatch(r"[0-9]{1,3}", size) or not 1 <= int(size) <= MAX_PAGE_SIZE:
        raise _bad(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE}", "page_size")
    token = args.get("page_token", "")
    if token and not CONSENT_ID.fullmatch(token):
        raise _bad("page_token must be a next_page_token of an earlier answer", "page_token")
    return {"user_pid": user_pid, "page_size": int(size), "page_token": token}


def view(consent: dict) -> dict:
    return {
        "consent_id": consent["_id"],
        "consent_ref": consent["consent_ref"],
        "partner_id": consent["partner_id"],
        "user_pid": consent["user_pid"],
        "scenarios": consent["scenarios"],
        "purpose": consent["purpose"],
        "granted_at": iso_z(consent["granted_at"], "seconds"),
        "expires_at": iso_z(consent["expires_at"], "seconds"),
        "revoked_at": iso_z(consent["revoked_at"], "seconds") if consent.get("revoked_at") else None,
    }


class Consents:
    def __init__(self, repo, bus, settings):
        self.repo, self.bus, self.settings = repo, bus, settings

    def record(self, app_id: str, doc, now: datetime, before_write) -> tuple[int, dict]:
        spec = parse_consent(doc, now)
        partner = self.repo.get_partner(spec["partner_id"])
        if partner is None or partner.get("kind") != "data_partner":
            raise ApiError("partner_not_found", "no data partner with this id", field="partner_id")
        not_allowed = [s for s in spec["scenarios"] if s not in partner.get("scenarios", [])]
        if not_allowed:
            raise ApiError("scenario_not_allowed", f"partner may not send {not_allowed[0]}", field="scenarios")
        user_pid = gm.pseudonymize(self.settings.pseudonym_key, spec["customer_number"])
        identity = {
            "app_id": app_id,
            "consent_ref": spec["consent_ref"],
            "user_pid": user_pid,
            "partner_id": spec["partner_id"],
            "scenarios": spec["scenarios"],
            "purpose": spec["purpose"],
            "expires_at": iso_z(spec["expires_at"], "seconds"),
        }
        content_hash = domain.content_hash(identity)
        consent = {
            "_id": domain.consent_id_for(app_id, spec["consent_ref"]),
            **identity,
            "expires_at": spec["expires_at"],
            "granted_at": now,
            "revoked_at": None,
            "customer_number_enc": gm.sm4_field_encrypt(self.settings.contact_key, spec["customer_number"]),
            "content_hash": content_hash,
        }
        before_write()
        try:
            self.repo.insert_consent(consent)
            status = 201
        except Duplicate:
            consent = self.repo.get_consent(consent["_id"])
            if consent["content_hash"] != content_hash:
                raise ApiError("consent_conflict", "this consent_ref was recorded with different content")
            status = 200
        # Intake finds consents through this index; a retry repairs a request that died before it.
        self.repo.index_consent(consent)
        return status, view(consent)

    def _owned(self, app_id: str, consent_id: str) -> dict:
        consent = self.repo.get_consent(consent_id)
        if consent is None or consent["app_id"] != app_id:
            raise ApiError("consent_not_found", "no consent with this id for this bank app")
        return consent

    def get(self, app_id: str, consent_id: str) -> dict:
        return view(self._owned(app_id, consent_id))

    def of_customer(self, app_id: str, args, now: datetime) -> dict:
        """One page of a customer's consents recorded by this bank app, active and past, newest
        grant first: each with its status. Reads by `_id` only (the partner list aside, a
        small collection): the customer's index chain with every partner, then the consents.
        The next page starts after `page_token` (the last consent of the page before); grants
        are immutable, so a consent recorded meanwhile shows up on the first page, never twice."""
        query = parse_list_query(args)
        found = self.repo.customer_consents(query["user_pid"], self.repo.partner_ids())
        mine = sorted(
            (c for c in found if c["app_id"] == app_id and c["user_pid"] == query["user_pid"]),
            key=lambda c: (-domain.aware(c["granted_at"]).timestamp(), c["_id"]),
        )
        start = 0
        if query["page_token"]:
            position = next((i for i, c in enumerate(mine) if c["_id"] == query["page_token"]), None)
            if position is None:
                raise _bad("page_token names no consent of this customer and bank app", "page_token")
            start = position + 1
        page = mine[start : start + query["page_size"]]
        more = start + len(page) < len(mine)
        return {
            "consents": [{**view(c), "status": status(c, now)} for c in page],
            "next_page_token": page[-1]["_id"] if more else None,
        }

    def revoke(self, app_id: str, consent_id: str, now: datetime, before_write) -> dict:
        consent = self._owned(app_id, consent_id)
        before_write()
        if consent.get("revoked_at") is None:
            consent["revoked_at"] = now
            self.repo.note_revoked(consent_id, now)  # first: what intake reads
            self.repo.set_consent_fields(consent_id, {"revoked_at": now, "revocation_published": False})
        if not consent.get("revocation_published"):
            self._publish_revoked(consent)
        return view(consent)

    def _publish_revoked(self, consent: dict) -> None:
        self.bus.publish(
            "consent_revoked",
            {
                "consent_id": consent["_id"],
                "user_pid": consent["user_pid"],
                "partner_id": consent["partner_id"],
                "scenarios": consent["scenarios"],
                "revoked_at": iso_z(consent["revoked_at"], "seconds"),
            },
            event_id=f"consent_revoked:{consent['_id']}",
        )
        self.repo.set_consent_fields(consent["_id"], {"revocation_published": True})

    def delete_personal_data(self, app_id: str, doc, now: datetime, before_write) -> dict:
        if (
            not isinstance(doc, dict)
            or set(doc) != {"customer_number"}
            or not isinstance(doc["customer_number"], str)
            or not CUSTOMER_REF.fullmatch(doc["customer_number"])
        ):
            raise ApiError("invalid_request", 'the body must be {"customer_number": "<6-32 letters or digits>"}')
        user_pid = gm.pseudonymize(self.settings.pseudonym_key, doc["customer_number"])
        before_write()
        self.repo.insert_deletion({"_id": user_pid, "app_id": app_id, "requested_at": now, "published": False})
        deletion = self.repo.get_deletion(user_pid)
        for consent in self.repo.user_consents(user_pid):
            fields = {"customer_number_enc": None}
            if consent.get("revoked_at") is None:
                consent["revoked_at"] = now
                fields.update(revoked_at=now, revocation_published=False)
            self.repo.note_revoked(consent["_id"], consent["revoked_at"])  # first: what intake reads
            self.repo.set_consent_fields(consent["_id"], fields)
            if not consent.get("revocation_published"):
                self._publish_revoked(consent)
        requested_at = iso_z(deletion["requested_at"], "seconds")
        if not deletion.get("published"):
            self.bus.publish(
                "personal_data_deleted",
                {"user_pid": user_pid, "requested_at": requested_at},
                event_id=f"personal_data_deleted:{user_pid}",
            )
            self.repo.set_deletion_published(user_pid)
        return {"user_pid": user_pid, "requested_at": requested_at, "status": "completed"}
