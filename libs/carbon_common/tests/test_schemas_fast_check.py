"""check_payload (the hot path's contract check) gives ParseDict's verdict on every event type.

For each event message, a payload filling every field is built from the descriptors, then each
field is broken in the ways producers get things wrong (unknown field, wrong JSON type, bad
nesting, out of range); the fast check must accept exactly what json_format.ParseDict accepts.
"""

import copy

import pytest
from google.protobuf.descriptor import FieldDescriptor as F

from carbon_common.schemas import _MESSAGES, InvalidEvent, check_payload, validate_payload

EVENT_TYPES = sorted(
    "_".join(part.lower() for part in __import__("re").findall(r"[A-Z][a-z0-9]*", name.rsplit(".", 1)[1]))
    for name in _MESSAGES
    if name.rsplit(".", 1)[1] != "Envelope"
)


def sample(descriptor, depth=0) -> dict:
    out = {}
    for field in descriptor.fields:
        if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.json_name] = {"k": _scalar(value_field, depth)}
        elif field.is_repeated:
            out[field.json_name] = [_scalar(field, depth)]
        else:
            out[field.json_name] = _scalar(field, depth)
    return out


def _scalar(field, depth):
    if field.type == F.TYPE_MESSAGE:
        return sample(field.message_type, depth + 1) if depth < 3 else {}
    if field.type == F.TYPE_STRING:
        return "text"
    if field.type == F.TYPE_BOOL:
        return True
    if field.type == F.TYPE_ENUM:
        return field.enum_type.values[-1].name
    if field.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return 1.5
    if field.type == F.TYPE_BYTES:
        return "AAEC"
    return "42" if field.type in (F.TYPE_INT64, F.TYPE_UINT64) else 42


def verdict(fn, event_type, data) -> bool:
    try:
        fn(event_type, data)
        return True
    except InvalidEvent:
        return False


def mutations(data: dict):
    yield "unknown field", {**data, "no_such_field": 1}
    for key, value in data.items():
        for label, bad in (
            ("null", None),
            ("int", 7),
            ("string", "x"),
            ("list", [1]),
            ("object", {"a": 1}),
            ("float", 2.5),
            ("bool", False),
            ("huge", 2**70),
            ("negative", -1),
        ):
            yield f"{key}={label}", {**data, key: bad}
        if isinstance(value, dict) and value:
            inner = next(iter(value))
            yield f"{key}.{inner}=list", {**data, key: {**value, inner: [1, 2]}}
            yield f"{key}.unknown", {**data, key: {**value, "no_such_field": 1}}
        if isinstance(value, list) and value:
            yield f"{key}[0]=int", {**data, key: [7]}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_fast_check_agrees_with_parse_dict(event_type):
    descriptor = _MESSAGES[f"carbon.events.v1.{''.join(p.capitalize() for p in event_type.split('_'))}"].DESCRIPTOR
    good = sample(descriptor)
    assert verdict(validate_payload, event_type, good), "the sample itself must be valid"
    assert verdict(check_payload, event_type, good)
    disagreements = []
    checked = 0
    for label, bad in mutations(copy.deepcopy(good)):
        checked += 1
        expected, got = verdict(validate_payload, event_type, bad), verdict(check_payload, event_type, bad)
        if expected != got:
            disagreements.append((label, "ParseDict accepts" if expected else "ParseDict refuses"))
    assert checked > 10
    assert disagreements == []


def test_a_plan_is_visible_to_other_threads_only_when_complete(monkeypatch):
    """Threads checking their first payloads at once once saw a half-built plan ("unknown field
    'activity'", the batch's publish refused, the partner answered 503)."""
    from carbon_common import schemas

    real = _MESSAGES["carbon.events.v1.BehaviourReceived"].DESCRIPTOR
    seen_while_building = []

    class Watching:
        full_name = real.full_name

        @property
        def fields(self):
            for field in real.fields:
                seen_while_building.append(schemas._plans.get(real.full_name))
                yield field

    monkeypatch.setattr(schemas, "_plans", {})
    plan = schemas._plan(Watching())
    assert seen_while_building and all(p is None for p in seen_while_building)
    assert schemas._plans[real.full_name] is plan and "activity" in plan
