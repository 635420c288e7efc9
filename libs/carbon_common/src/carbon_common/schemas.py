"""Event payload validation against the proto contracts (proto/carbon/events/v1).

event_type `reduction_calculated` <-> message `carbon.events.v1.ReductionCalculated`: the
naming rule is the registry, so a new event needs only its proto message.
"""

import functools
import importlib
import pkgutil

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor as F
from google.protobuf.message import Message

EVENTS_PACKAGE = "carbon.events.v1"


class InvalidEvent(ValueError):
    pass


def _load_messages() -> dict[str, type[Message]]:
    package = importlib.import_module(EVENTS_PACKAGE)
    messages = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{EVENTS_PACKAGE}.{info.name}")
            for name, descriptor in module.DESCRIPTOR.message_types_by_name.items():
                messages[descriptor.full_name] = getattr(module, name)
    return messages


_MESSAGES = _load_messages()


@functools.lru_cache(maxsize=256)
def schema_name(event_type: str) -> str:
    return f"{EVENTS_PACKAGE}." + "".join(part.capitalize() for part in event_type.split("_"))


def message_class(event_type: str) -> type[Message]:
    try:
        return _MESSAGES[schema_name(event_type)]
    except KeyError:
        raise InvalidEvent(f"no contract for event type {event_type!r} ({schema_name(event_type)})")


def validate_payload(event_type: str, data: dict) -> Message:
    """Parse strictly: unknown fields and wrong types are contract violations."""
    try:
        return json_format.ParseDict(data, message_class(event_type)(), ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        raise InvalidEvent(f"{event_type}: {exc}") from exc


def validate_envelope(envelope: dict) -> Message:
    _check_envelope_fields(envelope)
    return validate_payload(envelope["event_type"], envelope["data"])


# --- the hot path: the same strictness, without building a message ------------------------------
# json_format.ParseDict costs ~1 ms per payload in Python; every record crosses several
# producers and consumers, so the hot paths check payloads against a plan compiled once from
# the same descriptors: field names (proto or JSON name), JSON types, nesting, repeated and
# map fields, enum names. tests/…/test_schemas_fast_check.py holds it to ParseDict's verdicts.
_INTS = {
    F.TYPE_INT32,
    F.TYPE_INT64,
    F.TYPE_UINT32,
    F.TYPE_UINT64,
    F.TYPE_SINT32,
    F.TYPE_SINT64,
    F.TYPE_FIXED32,
    F.TYPE_FIXED64,
    F.TYPE_SFIXED32,
    F.TYPE_SFIXED64,
}
_INT_RANGE = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
_plans: dict = {}
_ONE, _LIST, _MAP = "one", "list", "map"
_STRING = F.TYPE_STRING


def _plan(descriptor) -> dict:
    """field name (proto or JSON) -> (field, how it nests, the map's value field)."""
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        # built aside, then published whole: threads checking their first payloads at once
        # must never see half a plan ("unknown field", a publish refused, a 503)
        plan = {}
        for field in descriptor.fields:
            if field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
                entry = (field, _MAP, field.message_type.fields_by_name["value"])
            else:
                entry = (field, _LIST if field.is_repeated else _ONE, None)
            plan[field.name] = plan[field.json_name] = entry
        _plans[descriptor.full_name] = plan
    return plan


def _scalar_ok(field, value) -> bool:
    kind = field.type
    if kind == F.TYPE_STRING:
        return isinstance(value, str)
    if kind == F.TYPE_BOOL:
        return isinstance(value, bool)
    if kind in _INTS:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                return False
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        low, high = _INT_RANGE.get(kind, (-(2**63), 2**63 - 1))
        return low <= value <= high
    if kind in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in (
            "NaN",
            "Infinity",
            "-Infinity",
        )
    if kind == F.TYPE_ENUM:
        return (isinstance(value, str) and value in field.enum_type.values_by_name) or (
            isinstance(value, int) and not isinstance(value, bool)
        )
    if kind == F.TYPE_BYTES:
        return isinstance(value, str)
    return False


def _check_value(field, value, path: str, key) -> None:
    """`path` + `key`: where the value sits, put together only for a message or an error."""
    if value is None:
        return  # JSON null: the field's default, as ParseDict reads it
    if field.type == F.TYPE_MESSAGE:
        _check_message(field.message_type, value, f"{path}.{key}")
    elif not _scalar_ok(field, value):
        raise InvalidEvent(f"{path}.{key}: {value!r} is not a valid {field.type} value")


def _check_message(descriptor, data, path: str) -> None:
    if not isinstance(data, dict):
        raise InvalidEvent(f"{path}: expected an object")
    plan = _plan(descriptor)
    for key, value in data.items():
        entry = plan.get(key)
        if entry is None:
            raise InvalidEvent(f"{path}: unknown field {key!r}")
        field, nesting, value_field = entry
        if value is None:
            continue
        if nesting is _ONE:
            if not (field.type == _STRING and value.__class__ is str):  # most fields: no call
                _check_value(field, value, path, key)
        elif nesting is _MAP:
            if not isinstance(value, dict):
                raise InvalidEvent(f"{path}.{key}: expected an object")
            if value_field.type == _STRING and all(item.__class__ is str for item in value.values()):
                continue
            for name, item in value.items():
                _check_value(value_field, item, f"{path}.{key}", name)
        else:
            if not isinstance(value, list):
                raise InvalidEvent(f"{path}.{key}: expected a list")
            for i, item in enumerate(value):
                _check_value(field, item, path, f"{key}[{i}]")


def check_payload(event_type: str, data: dict) -> None:
    """validate_payload's verdict at a fraction of its cost (raises InvalidEvent)."""
    _check_message(message_class(event_type).DESCRIPTOR, data, event_type)


def check_envelope(envelope: dict) -> None:
    _check_envelope_fields(envelope)
    check_payload(envelope["event_type"], envelope["data"])


def _check_envelope_fields(envelope: dict) -> None:
    missing = [k for k in ("event_id", "event_type", "schema", "producer", "emitted_at", "data") if k not in envelope]
    if missing:
        raise InvalidEvent(f"envelope lacks {', '.join(missing)}")
    if envelope["schema"] != schema_name(envelope["event_type"]):
        raise InvalidEvent(f"schema {envelope['schema']} does not match event type {envelope['event_type']}")
