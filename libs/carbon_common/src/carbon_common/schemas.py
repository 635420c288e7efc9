"""Event payload validation against the proto contracts (proto/carbon/events/v1).

event_type `reduction_calculated` <-> message `carbon.events.v1.ReductionCalculated`: the
naming rule is the registry, so a new event needs only its proto message.
"""
import importlib
import pkgutil

from google.protobuf import json_format
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
    missing = [k for k in ("event_id", "event_type", "schema", "producer", "emitted_at", "data") if k not in envelope]
    if missing:
        raise InvalidEvent(f"envelope lacks {', '.join(missing)}")
    if envelope["schema"] != schema_name(envelope["event_type"]):
        raise InvalidEvent(f"schema {envelope['schema']} does not match event type {envelope['event_type']}")
    return validate_payload(envelope["event_type"], envelope["data"])
