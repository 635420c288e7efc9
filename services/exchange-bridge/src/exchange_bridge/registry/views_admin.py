"""Operator endpoints (Authorization: Bearer REGISTRY_ADMIN_TOKEN): onboarding, keys, faults."""

from flask import Blueprint, request

from exchange_bridge.registry.endpoint import json_body
from exchange_bridge.registry.parts import registry
from exchange_bridge.registry.errors import ApiError
from exchange_bridge.registry.participants import check_admin

bp = Blueprint("admin", __name__, url_prefix="/v1/admin")
FAULT_SETTINGS = {"rates", "seed", "max_latency", "timeout_seconds"}


@bp.before_request
def authorize():
    check_admin(request.headers.get("Authorization"), registry().admin_token)


def _body() -> dict:
    body = json_body(request.get_data(cache=True))
    if not isinstance(body, dict):
        raise ApiError("invalid_request", "the body must be a JSON object")
    return body


@bp.post("/participants")
def register_participant():
    body = _body()
    if set(body) != {"participant_id", "name"}:
        raise ApiError("invalid_request", "body must be {participant_id, name}")
    stored, created = registry().participants.register(body["participant_id"], body["name"])
    return registry().participants.describe(stored["_id"]), 201 if created else 200


@bp.get("/participants/<participant>")
def describe_participant(participant):
    found = registry().participants.describe(participant)
    if found is None:
        raise ApiError("not_found", f"no participant {participant}")
    return found


@bp.post("/participants/<participant>/keys")
def add_key(participant):
    body = _body()
    if set(body) != {"key_id", "public_key"}:
        raise ApiError("invalid_request", "body must be {key_id, public_key}")
    _, created = registry().participants.add_key(participant, body["key_id"], body["public_key"])
    return registry().participants.describe_key(participant, body["key_id"]), 201 if created else 200


@bp.post("/participants/<participant>/keys/<key_id>/revoke")
def revoke_key(participant, key_id):
    reason = _body().get("reason", "") if request.get_data(cache=True) else ""
    if not isinstance(reason, str):
        raise ApiError("invalid_request", "reason must be a string")
    return registry().participants.revoke_key(participant, key_id, reason)


@bp.get("/faults")
def read_faults():
    return registry().faults.snapshot()


@bp.put("/faults")
def set_faults():
    """{rates: "kind=rate,…" or {kind: rate}, seed, max_latency, timeout_seconds} (all optional)."""
    body = _body()
    if not set(body) <= FAULT_SETTINGS:
        raise ApiError("invalid_request", f"fault settings are {sorted(FAULT_SETTINGS)}")
    timing = {k: body[k] for k in ("max_latency", "timeout_seconds") if k in body}
    try:
        registry().faults.configure(body.get("rates"), body.get("seed"), **timing)
    except (TypeError, ValueError) as error:
        raise ApiError("invalid_request", str(error))
    return registry().faults.snapshot()
