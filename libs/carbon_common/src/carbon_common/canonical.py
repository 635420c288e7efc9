"""Canonical JSON: the one text of a document that is hashed, signed and compared.

Sorted keys, no spaces, non-ASCII characters as themselves, UTF-8 bytes. Ledger entries are
chained by the SM3 of this text and exchange batches are SM2-signed over it (the exchange
verifies the same bytes), so its shape must never change.

The text is, byte for byte, that of the reference

    json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)

(`_reference`). orjson writes the same text for most documents ~8x faster, so it is tried first
and its output kept only where it cannot differ; everything else goes to the reference:

- `default` given: always the reference. orjson natively writes types that json hands to
  `default` (Enum members by value, UUIDs), so the two could differ for inputs that work today.
- orjson raises: the reference (which then writes or raises as it always did). orjson raises for
  integers beyond 64 bits, non-str or str-subclass keys, lone surrogates, nesting deeper than
  255, and, with the passthrough options below, for subclasses of str/int/dict/list (OrderedDict,
  namedtuples too), float subclasses, datetimes, dataclasses and every other type json refuses.
- floats: orjson and repr() agree except below 1e-4 in magnitude (json `1e-05`, `1.5e-07`;
  orjson `0.00001`, `1.5e-7`) and for NaN/Infinity (json `NaN`, orjson `null`). A number token
  starting `0.0000` or holding `e-` sends the document to the reference, and so does any `null`
  that is not accounted for by a None among the top-level values.
Measured equivalence: libs/carbon_common/tests/test_canonical_equivalence.py.

Left as is: values that only orjson can write (plain Enum members, UUIDs, orjson.Fragment) are
written where json would raise TypeError (no such value reaches this module today), and an
Enum member that is also a str/int/float but whose `.value` differs from that str/int/float
(a custom `__new__`) is written as its value where json wrote the str/int/float.
"""

import json
import re

import orjson

_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
_dumps = orjson.dumps
_NONE_ID = id(None)
_MISSING = object()
_DELIMITERS = b":,["  # what precedes a value in compact JSON (or nothing: the top level)
_MANTISSA = b"0123456789."
# re scans for a literal prefix faster than `in` does for "e-" (many "e", few "e-").
_dot_zeros = re.compile(rb"\.0000").search
_e_minus = re.compile(rb"e-").search


def _reference(value, default):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)


def _starts_value(out: bytes, start: int) -> bool:
    """Whether the number-like run beginning at `start` (after an optional '-') is a value."""
    if start and out[start - 1] == 45:  # "-"
        start -= 1
    return start == 0 or out[start - 1] in _DELIMITERS


def _small_float(out: bytes) -> bool:
    """A number token where orjson and repr() may disagree: `0.0000…` or an `e-` exponent."""
    match = _dot_zeros(out)
    while match:
        zero = match.start() - 1
        if zero >= 0 and out[zero] == 48 and _starts_value(out, zero):  # "0.0000…"
            return True
        match = _dot_zeros(out, match.end())
    match = _e_minus(out)
    while match:
        start = match.start()
        if start and out[start - 1] in _MANTISSA:
            while start and out[start - 1] in _MANTISSA:
                start -= 1
            if _starts_value(out, start):
                return True
        match = _e_minus(out, match.end())
    return False


def _unexplained_null(value, out: bytes, last: int) -> bool:
    """False when every `null` in `out` (the last at `last`) is a None among the top-level
    values (NaN and Infinity are `null` to orjson, `NaN`/`Infinity` to json). Sound because
    every None and every NaN anywhere in `value` writes a `null` of its own."""
    kind = type(value)
    if kind is dict:
        if out.find(b"null") == last and out[last - 2 : last] == b'":':
            # One `null` in the text; the key before it names a top-level None: that is it.
            key = out[out.rfind(b'"', 0, last - 2) + 1 : last - 2].decode("utf-8")
            if value.get(key, _MISSING) is None:
                return False
        nones = list(map(id, value.values())).count(_NONE_ID)
    elif kind is list or kind is tuple:
        nones = list(map(id, value)).count(_NONE_ID)
    else:
        nones = value is None
    return out.count(b"null") != nones


def _fast(value) -> bytes | None:
    """orjson's text of `value` where it is provably the reference's, else None."""
    try:
        out = _dumps(value, option=_OPTIONS)
    except Exception:  # orjson.JSONEncodeError and whatever `value` raised inside it
        return None
    if (out.rfind(b".0000") >= 0 or _e_minus(out)) and _small_float(out):
        return None
    last = out.rfind(b"null")
    if last >= 0 and _unexplained_null(value, out, last):
        return None
    return out


def canonical_json(value, default=None) -> str:
    """`default`: as json.dumps (e.g. `str` for Decimals); None refuses what JSON cannot hold."""
    if default is None and _ENABLED:
        out = _fast(value)
        if out is not None:
            return out.decode("utf-8")
    return _reference(value, default)


def canonical_bytes(value, default=None) -> bytes:
    if default is None and _ENABLED:
        out = _fast(value)
        if out is not None:
            return out
    return _reference(value, default).encode("utf-8")


def _self_check() -> bool:
    """The fast path agrees with the reference on the known edges with this orjson build (a
    different orjson than the locked one must not change a ledger's hashes: off if not)."""
    probes = [
        {"b": [1, {"z": "碳", "a": [], "": {}}], "a": "x", "\U0001f600": 1, "\uffff": 2, "\ue000": 3},
        ['\x00\x1f\x7f\u2028\u2029"\\/\n\t', True, False, None, -(2**63), 2**64 - 1, 0.0, -0.0],
        *([x] for x in (1e16, -1.5e300, 123456789012345.6, 9999999999999998.0, 1e-4, 0.1 + 0.2, 1e22)),
    ]
    return all((out := _fast(p)) is None or out == _reference(p, None).encode("utf-8") for p in probes)


_ENABLED = _self_check()
