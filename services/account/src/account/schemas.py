"""Incoming payloads: validated against their proto contracts, normalised for the domain."""

from carbon_common.schemas import check_envelope


def _data(envelope: dict, event_type: str) -> dict:
    if envelope.get("event_type") != event_type:
        raise ValueError(f"expected {event_type}, got {envelope.get('event_type')}")
    check_envelope(envelope)  # a contract violation raises: retried, then dead-lettered
    return dict(envelope["data"])


def reduction_calculated(envelope: dict) -> dict:
    data = _data(envelope, "reduction_calculated")
    for field in ("reduction_id", "record_key", "user_pid", "scenario", "occurred_at"):
        if not data.get(field):
            raise ValueError(f"reduction_calculated without {field}")
    grams = int(data.get("grams", 0))  # int64 may arrive as a JSON string (proto3 JSON mapping)
    if grams < 0:
        raise ValueError("negative grams")
    data["grams"] = grams
    data["revision"] = int(data.get("revision", 0))
    data["caps"] = [
        {**cap, "max_grams": int(cap.get("max_grams", 0)), "max_count": int(cap.get("max_count", 0))}
        for cap in data.get("caps", [])
    ]
    return data


def reduction_reversed(envelope: dict) -> dict:
    data = _data(envelope, "reduction_reversed")
    if not data.get("reduction_id") or not data.get("user_pid"):
        raise ValueError("reduction_reversed needs reduction_id and user_pid")
    return data


def reduction_reversal_refused(envelope: dict) -> dict:
    data = _data(envelope, "reduction_reversal_refused")
    if not data.get("reduction_id") or not data.get("user_pid") or not data.get("code"):
        raise ValueError("reduction_reversal_refused needs reduction_id, user_pid and code")
    data["corrected_grams"] = int(data.get("corrected_grams", 0))
    return data


def personal_data_deleted(envelope: dict) -> dict:
    data = _data(envelope, "personal_data_deleted")
    if not data.get("user_pid"):
        raise ValueError("personal_data_deleted needs user_pid")
    return data
