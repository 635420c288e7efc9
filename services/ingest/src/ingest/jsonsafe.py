"""Strict JSON parsing for untrusted bodies: fails with a specific ApiError, never a 500.

Rejects invalid UTF-8, NUL bytes (raw or escaped), nesting deeper than MAX_DEPTH (checked by a
byte scan before json.loads can recurse), NaN/Infinity literals, duplicate keys and keys that
MongoDB would interpret (`$…`, dotted). Numbers are parsed as Decimal, never float.
"""

import json
from decimal import Decimal

from ingest.errors import ApiError

MAX_DEPTH = 8


def _depth(raw: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def _reject_constant(name):
    raise ApiError("malformed_json", f"{name} is not a JSON number")


def _pairs(pairs):
    out = {}
    for key, value in pairs:
        _check_strings(key)
        if key.startswith("$") or "." in key:
            raise ApiError("forbidden_key", f"key {key[:40]!r} may not start with '$' or contain '.'")
        if key in out:
            raise ApiError("duplicate_key", f"key {key[:40]!r} appears twice in one object")
        out[key] = value
    return out


def _check_strings(value):
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError("nul_byte", "NUL characters are not allowed in strings")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError("invalid_utf8", "a string holds an unpaired surrogate escape")
    elif isinstance(value, dict):
        for item in value.values():
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def parse(body: bytes):
    if b"\x00" in body:
        raise ApiError("nul_byte", "the body contains a NUL byte")
    try:
        text = body.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ApiError("invalid_utf8", f"the body is not valid UTF-8 (byte {exc.start})")
    if _depth(text) > MAX_DEPTH:
        raise ApiError("too_deep", f"JSON nesting deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_pairs)
    except ApiError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ApiError("malformed_json", f"the body is not valid JSON: {str(exc)[:120]}")
    _check_strings(value)
    return value
