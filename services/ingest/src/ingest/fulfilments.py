"""A fulfilling partner confirms or fails a catalogue fulfilment (docs/partner-api.md §4b).

The partner learnt of the fulfilment from `catalogue_fulfilment_requested` on `account.events`
(its own queue), delivered the item, and reports with a signed call:

    POST /v1/fulfilments/{fulfilment_id}/confirm   {} or {"reference": "<its delivery ref>"}
    POST /v1/fulfilments/{fulfilment_id}/fail      {"code": "<reason>", "reference"?: "…"}

Ingest checks the request (signature, key, partner, nonce: as for records), the id and the body,
and publishes `fulfilment_reported` naming the partner whose signature it verified; the account
owns the catalogue and applies the first report of a fulfilment whose item names this partner
(a report of another partner, or of an unknown fulfilment, changes nothing there). The answer is
202: accepted for the account, which confirms with `catalogue_fulfilment_closed`. Repeating a
report is harmless: its event id is SM3(partner ":" fulfilment ":" outcome), and the account
keeps the first decision. Nothing is stored in ingest but the nonce.
"""

import re
from datetime import datetime

from carbon_common import gm
from carbon_common.clock import iso_z

from ingest.errors import ApiError

FULFILMENT_ID = re.compile(r"^[0-9a-f]{64}$")
CODE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
OUTCOMES = {"confirm": "confirmed", "fail": "failed"}


def parse_report(action: str, fulfilment_id: str, body) -> dict:
    """The report's fields from the URL and the body, or ApiError invalid_request."""
    if not FULFILMENT_ID.fullmatch(fulfilment_id):
        raise ApiError(
            "invalid_request", "a fulfilment id is 64 lower-case hex digits (catalogue_fulfilment_requested)"
        )
    allowed = {"reference"} | ({"code"} if action == "fail" else set())
    if not isinstance(body, dict) or set(body) - allowed:
        raise ApiError("invalid_request", f"the body holds only {sorted(allowed)}")
    reference = body.get("reference", "")
    if "reference" in body and (not isinstance(reference, str) or not REFERENCE.fullmatch(reference)):
        raise ApiError("invalid_request", 'reference must be 1-64 characters: A-Z a-z 0-9 "._:-"', field="reference")
    code = body.get("code", "")
    if action == "fail" and (not isinstance(code, str) or not CODE.fullmatch(code)):
        raise ApiError("invalid_request", 'a failure needs a code of 1-64 characters: a-z 0-9 "_"', field="code")
    return {"fulfilment_id": fulfilment_id, "outcome": OUTCOMES[action], "code": code, "reference": reference}


class Fulfilments:
    def __init__(self, bus):
        self.bus = bus

    def report(self, partner_id: str, action: str, fulfilment_id: str, body, now: datetime, before_write) -> dict:
        report = parse_report(action, fulfilment_id, body)
        before_write()  # the nonce: consumed only by a report that passed every check
        data = {**report, "partner_id": partner_id, "reported_at": iso_z(now, "seconds")}
        event_id = gm.sm3_hex(f"{partner_id}:{fulfilment_id}:{report['outcome']}".encode())
        self.bus.publish("fulfilment_reported", data, event_id=event_id)
        return {
            "fulfilment_id": fulfilment_id,
            "outcome": report["outcome"],
            "status": "accepted",
            "reported_at": data["reported_at"],
        }
