"""Pure rules of intake: idempotency keys, content hashes, consent matching, event payloads,
each record's outcome and the code that names a batch's answer (their HTTP statuses are the
adapter's: ingest.views.batch_answer)."""

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_common.clock import aware, iso_z  # noqa: F401 - aware: domain.aware is used by the ingest modules

ACCEPTED, DUPLICATE, REJECTED, UNAVAILABLE = "accepted", "duplicate", "rejected", "unavailable"

# Activity fields that name a person or their contract: a utility bill account number, a bank
# statement id (issued per customer account). They are replaced by a keyed pseudonym before
# anything is stored or published; calc only needs them stable (caps, dedup), never in clear.
# Station ids, lines, cities and regions are public places, not people.
PERSONAL_ACTIVITY_FIELDS = ("bill_account", "statement_id")


def record_key(partner_id: str, partner_record_id: str) -> str:
    """The record's global idempotency key: SM3(partner_id ":" partner_record_id), hex."""
    return gm.sm3_hex(f"{partner_id}:{partner_record_id}".encode())


def pseudonymize_activity(key: bytes, activity: dict) -> dict:
    """Personal activity fields -> HMAC-SM3(key, "<field>:<value>"): the field-name prefix
    separates the domains, so a pseudonym can never equal a customer's user_pid (customer
    numbers have no ':') or another field's; the same clear value from any partner gives the
    same pseudonym, which is what calc's per-bill-account cap and dedup need."""
    return {
        name: gm.pseudonymize(key, f"{name}:{value}") if name in PERSONAL_ACTIVITY_FIELDS else value
        for name, value in activity.items()
    }


def content_hash(content: dict) -> str:
    try:  # validated content is JSON-native: the fast canonical path (default= forces the slow one)
        return gm.sm3_hex(canonical_bytes(content))
    except TypeError:  # the same bytes as always for anything json.dumps needs str() for
        return gm.sm3_hex(canonical_bytes(content, default=str))


def consent_id_for(app_id: str, consent_ref: str) -> str:
    """Deterministic, so a bank app retrying a consent request cannot create two consents."""
    return "cns_" + gm.sm3_hex(f"{app_id}:{consent_ref}".encode())[:32]


def _live(consents, scenario: str, now: datetime) -> list:
    """The consents that authorize `scenario` now: not revoked, not expired."""
    return [
        c
        for c in consents
        if scenario in c["scenarios"] and c.get("revoked_at") is None and aware(c["expires_at"]) > now
    ]


def _latest(consents):
    return max(consents, key=lambda c: aware(c["granted_at"]), default=None)


def active_consent(consents, scenario: str, now: datetime):
    """The consent that authorizes `scenario` now (the latest granted wins), or None."""
    return _latest(_live(consents, scenario, now))


def within_consent(consent: dict, occurred_at: datetime) -> bool:
    """Whether a behaviour at `occurred_at` lies inside the consent's validity: from its grant
    (to the second: records carry whole seconds, and the API shows granted_at in whole seconds)
    up to, not including, its expiry. Revocation ends it too, but a revoked consent is never
    live at receipt (`active_consent`), so it refuses every record, whenever it happened."""
    granted = aware(consent["granted_at"]).replace(microsecond=0)
    return granted <= occurred_at < aware(consent["expires_at"])


def consent_for_record(consents, scenario: str, occurred_at: datetime, now: datetime):
    """(consent, None) for the live consent whose validity holds `occurred_at` (the latest
    granted wins), else (None, code): `consent_required` when no consent for `scenario` is live
    now, `outside_consent` when one is but the behaviour happened outside its validity (before
    it was granted, or at or after its expiry)."""
    live = _live(consents, scenario, now)
    if not live:
        return None, "consent_required"
    covering = [c for c in live if within_consent(c, occurred_at)]
    if not covering:
        return None, "outside_consent"
    return _latest(covering), None


def key_state(key: dict, now: datetime) -> str | None:
    """None when the key may sign now, else the rejection code."""
    if key.get("revoked_at") is not None:
        return "key_revoked"
    not_after = key.get("not_after")
    if not_after is not None and aware(not_after) <= now:
        return "key_expired"
    return None


def receipt(partner_id: str, record, user_pid: str, consent_id: str, now: datetime, pseudonym_key: bytes) -> dict:
    """The receipt of a valid, consented record (validation.ValidRecord): only pseudonyms, never
    the customer number; personal activity fields are pseudonymised before it is hashed."""
    record = dataclasses.replace(record, activity=pseudonymize_activity(pseudonym_key, record.activity))
    return {
        "_id": record_key(partner_id, record.record_id),
        "partner_id": partner_id,
        "partner_record_id": record.record_id,
        "user_pid": user_pid,
        "consent_id": consent_id,
        "scenario": record.scenario,
        "occurred_at": record.occurred_at,
        "received_at": iso_z(now, "seconds"),
        "activity": record.activity,
        "content_hash": content_hash(record.content(user_pid)),
        "created_at": now,
    }


def behaviour_received(receipt: dict) -> dict:
    """BehaviourReceived payload (proto/carbon/events/v1/ingest.proto) from a stored receipt."""
    return {
        "record_key": receipt["_id"],
        "partner_id": receipt["partner_id"],
        "partner_record_id": receipt["partner_record_id"],
        "user_pid": receipt["user_pid"],
        "consent_id": receipt["consent_id"],
        "scenario": receipt["scenario"],
        "occurred_at": receipt["occurred_at"],
        "received_at": receipt["received_at"],
        "activity": dict(receipt["activity"]),
    }


@dataclass
class Outcome:
    """What became of one record of a batch; `code` (errors.CODES) says why when not accepted."""

    index: int
    record_id: str | None
    outcome: str
    code: str | None = None
    message: str | None = None
    field: str | None = None
    record_key: str | None = None
    received_at: str | None = None


def batch_code(outcomes) -> str | None:
    """The code of a batch answer, None when it is not an error.

    Any record that could not be made durable -> "unavailable" (the whole batch may be replayed
    safely); otherwise None if anything was accepted or already known; if every record was
    rejected the request is an error: their code when they share one, else records_rejected.
    """
    kinds = {o.outcome for o in outcomes}
    if UNAVAILABLE in kinds:
        return "unavailable"
    if kinds & {ACCEPTED, DUPLICATE}:
        return None
    codes_seen = {o.code for o in outcomes}
    if len(codes_seen) == 1:
        return codes_seen.pop()
    return "records_rejected"
