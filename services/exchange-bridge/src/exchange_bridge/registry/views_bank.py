"""Bank endpoints (SM2-signed requests) and the public reads (health, keys)."""

import re

from flask import Blueprint, request

from carbon_common.clock import utc_now_iso
from exchange_bridge.registry import signing
from exchange_bridge.registry.endpoint import bank_endpoint
from exchange_bridge.registry.parts import registry
from exchange_bridge.registry.errors import ApiError
from exchange_bridge.registry.records import RECORD_FORMAT, public
from exchange_bridge.registry.status import batch_status
from exchange_bridge.registry.validation import HEX64

bp = Blueprint("bank", __name__)
CLIENT_ID = signing.KEY_ID  # transfer/retirement/cancellation ids: 1-64 of [A-Za-z0-9._-]
OPERATIONS = {  # endpoint kind -> (client id field, required fields besides batch_id and units)
    "transfer": ("transfer_id", ("to_holder",)),
    "retire": ("retirement_id", ("beneficiary", "reason")),
    "cancel": ("cancellation_id", ("reason",)),
}
MAX_PAGE = 500


@bp.get("/health")
def health():
    registry().db.command("ping")
    return {"status": "ok"}


@bp.get("/v1/public-key")
def public_key():
    return {
        "algorithm": "SM2",
        "user_id": "1234567812345678",
        "public_key": registry().records.public_key,
        # keys that signed earlier records: a rotation does not take their signatures back
        "previous_public_keys": registry().records.previous_public_keys,
        "record_format": RECORD_FORMAT,
    }


@bp.get("/v1/participants/<participant>/keys/<key_id>")
def participant_key(participant, key_id):
    """A bank's key, active or revoked: what a certificate verifier checks a batch signature with."""
    key = registry().participants.describe_key(participant, key_id)
    if key is None:
        raise ApiError("not_found", f"no key {key_id} of {participant}")
    return key


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise ApiError("invalid_request", "the body must be a JSON object")
    return body


@bp.post("/v1/keys")
@bank_endpoint
def add_key(reg, caller, body, decision):
    """Key rotation by the bank itself: a new key, added with a request signed by an active one."""
    body = _object(body)
    if set(body) != {"key_id", "public_key"}:
        raise ApiError("invalid_request", "body must be {key_id, public_key}")
    reg.participants.add_key(caller.participant, body["key_id"], body["public_key"], before_write=caller.commit)
    return reg.participants.describe_key(caller.participant, body["key_id"]), 200


@bp.post("/v1/keys/<key_id>/revoke")
@bank_endpoint
def revoke_key(reg, caller, body, decision, key_id):
    reason = _object(body or {}).get("reason", "")
    return reg.participants.revoke_key(caller.participant, key_id, reason, before_write=caller.commit), 200


@bp.post("/v1/batches")
@bank_endpoint
def submit_batch(reg, caller, body, decision):
    batch_id = (
        body.get("batch", {}).get("batch_id", "")
        if isinstance(body, dict) and isinstance(body.get("batch"), dict)
        else ""
    )
    reject = reg.faults.rejects(batch_id) if batch_id else False  # per batch, never per delivery
    created = reg.issuance.submit(caller, body, reject=reject)
    status = batch_status(reg, body["batch"]["batch_id"])
    if created and reject:
        reg.faults.count("reject")
    return status, 201 if created else 200


@bp.get("/v1/batches/<batch_id>")
@bank_endpoint
def get_batch(reg, caller, body, decision, batch_id):
    status = batch_status(reg, batch_id)
    if status is None:
        raise ApiError("not_found", f"no batch {batch_id}")
    return status, 200


def _operation(reg, caller, body, kind: str):
    body = _object(body)
    id_field, required = OPERATIONS[kind]
    fields = {id_field, "batch_id", "units", *required}
    if set(body) != fields:
        raise ApiError("invalid_request", f"body must have exactly the fields {sorted(fields)}")
    client_id = body[id_field]
    if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
        raise ApiError("invalid_request", f"{id_field} must match {CLIENT_ID.pattern}")
    if not isinstance(body["batch_id"], str) or not HEX64.fullmatch(body["batch_id"]):
        raise ApiError("invalid_request", "batch_id must be 64 lowercase hex characters")
    if type(body["units"]) is not int or not 1 <= body["units"] <= 10**12:
        raise ApiError("invalid_request", "units must be a positive integer")
    for name in required:
        if not isinstance(body[name], str) or not 1 <= len(body[name]) <= 200:
            raise ApiError("invalid_request", f"{name} must be 1-200 characters")
    if kind == "transfer":
        if not reg.participants.exists(body["to_holder"]):
            raise ApiError("unknown_holder", f"no holder account {body['to_holder']}")
        if body["to_holder"] == caller.participant:
            raise ApiError("invalid_request", "a transfer goes to another holder")
    request_fields = {k: v for k, v in body.items() if k != id_field}
    record, created = reg.ledger.operate(caller, kind, client_id, request_fields, utc_now_iso())
    return public(reg.records.get(record["op_id"])), 201 if created else 200


@bp.post("/v1/transfers")
@bank_endpoint
def transfer(reg, caller, body, decision):
    return _operation(reg, caller, body, "transfer")


@bp.post("/v1/retirements")
@bank_endpoint
def retire(reg, caller, body, decision):
    return _operation(reg, caller, body, "retire")


@bp.post("/v1/cancellations")
@bank_endpoint
def cancel(reg, caller, body, decision):
    return _operation(reg, caller, body, "cancel")


@bp.get("/v1/records/<path:op_id>")
@bank_endpoint
def get_record(reg, caller, body, decision, op_id):
    record = reg.records.get(op_id)
    if record is None:
        raise ApiError("not_found", f"no record {op_id}")
    return public(record), 200


@bp.get("/v1/holdings/<holder>")
@bank_endpoint
def holdings(reg, caller, body, decision, holder):
    if not reg.participants.exists(holder):
        raise ApiError("unknown_holder", f"no holder account {holder}")
    return {"holder": holder, "blocks": reg.ledger.holdings(holder)}, 200


@bp.get("/v1/transactions")
@bank_endpoint
def transactions(reg, caller, body, decision):
    after, limit = _int_arg("after", 0, 0), _int_arg("limit", 100, 1)
    records, next_after = reg.records.page(after, min(limit, MAX_PAGE))
    return {"transactions": records, "after": next_after}, 200


def _int_arg(name: str, default: int, low: int) -> int:
    text = request.args.get(name, str(default))
    if not re.fullmatch(r"[0-9]{1,15}", text) or int(text) < low:
        raise ApiError("invalid_request", f"{name} must be an integer >= {low}")
    return int(text)
