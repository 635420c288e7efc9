"""canonical_json / canonical_bytes against the reference json.dumps they replace: byte-identical
text for every value json can write, the same exception for every value it refuses.

Fuzzed (seeded random generator and hypothesis) plus one explicit case per known difference
between orjson and json (see carbon_common.canonical). Ledger hashes and exchange signatures
are over this text, so any difference here is a broken ledger.
"""

import collections
import enum
import json
import math
import random
import struct
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import given, settings, strategies as st

from carbon_common import canonical
from carbon_common.canonical import canonical_bytes, canonical_json
from carbon_common.gm import sm3_hex

SURROGATES = range(0xD800, 0xE000)
FUZZ_SEED = 20261125
FUZZ_VALUES = 12_000


def reference(value, default=None) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)


def outcome(function, value, default=None):
    try:
        return "ok", function(value, default)
    except Exception as error:  # noqa: BLE001 - the exception itself is what is compared
        return "raised", type(error), str(error)


def assert_same(value, default=None):
    """canonical_* and the reference write the same text or raise the same exception."""
    expected = outcome(reference, value, default)
    assert outcome(canonical_json, value, default) == expected
    expected_bytes = outcome(lambda v, d: reference(v, d).encode("utf-8"), value, default)
    assert outcome(canonical_bytes, value, default) == expected_bytes


# --- values from a seeded generator -------------------------------------------------------------


def random_char(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return chr(rng.randrange(0x20, 0x7F))
    if roll < 0.45:
        return chr(rng.choice([*range(0x20), 0x7F, 0x22, 0x5C, 0x2F, 0x2028, 0x2029, 0xFEFF, 0xFFFF, 0xFFFD]))
    if roll < 0.6:
        return rng.choice('0123456789.eE+-:,[]{}null"')  # number-like and JSON-like text
    if roll < 0.75:
        code = rng.randrange(0x80, 0x10000)
    elif roll < 0.85:
        code = rng.randrange(0x4E00, 0xA000)  # CJK
    else:
        code = rng.randrange(0x10000, 0x110000)  # astral planes
    return "\ufffd" if code in SURROGATES else chr(code)


def random_text(rng: random.Random) -> str:
    return "".join(random_char(rng) for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 13, 40])))


def random_float(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.4:  # every bit pattern: NaN payloads, infinities, subnormals, both zeros
        return struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
    if roll < 0.8:  # decimal-looking values across the exponent switch points of repr()
        return float(f"{rng.choice('-+')}{rng.randrange(1, 10 ** rng.randrange(1, 18))}e{rng.randrange(-30, 30)}")
    edge = rng.choice([1e-4, 1e-5, 1e-6, 1e16, 1e15, 1e17, 1e22, 5e-324, sys.float_info.max, sys.float_info.min])
    return math.nextafter(edge, rng.choice([0.0, math.inf])) * rng.choice([1, -1])


def random_int(rng: random.Random) -> int:
    bits = rng.choice([1, 7, 31, 53, 63, 64, 65, 100, 300])
    return rng.getrandbits(bits) * rng.choice([1, -1]) + rng.choice([0, 0, 1, -1])


def random_scalar(rng: random.Random):
    roll = rng.random()
    if roll < 0.35:
        return random_text(rng)
    if roll < 0.6:
        return random_int(rng)
    if roll < 0.8:
        return random_float(rng)
    return rng.choice([None, True, False])


def random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth >= 4 or roll < 0.35:
        return random_scalar(rng)
    size = rng.randrange(0, 7)
    if roll < 0.7:
        return {random_text(rng): random_value(rng, depth + 1) for _ in range(size)}
    items = [random_value(rng, depth + 1) for _ in range(size)]
    return tuple(items) if roll < 0.8 else items


def test_fuzzed_values_write_the_reference_text():
    rng = random.Random(FUZZ_SEED)
    fast = 0
    for _ in range(FUZZ_VALUES):
        value = random_value(rng)
        assert_same(value)
        fast += canonical._fast(value) is not None
    # Both paths were exercised: the comparison above is not only against the fallback.
    assert FUZZ_VALUES * 0.2 < fast < FUZZ_VALUES * 0.9, fast


def test_fuzzed_ledger_like_documents_take_the_fast_path_and_write_the_reference_text():
    """Documents shaped like the hot path's (str/int/None/bool leaves), no floats: all fast."""
    rng = random.Random(FUZZ_SEED + 1)
    for _ in range(2_000):
        doc = {
            random_text(rng): rng.choice([random_text(rng), rng.getrandbits(40), None, True])
            for _ in range(rng.randrange(1, 30))
        }
        doc["nested"] = {random_text(rng): [random_text(rng), rng.getrandbits(20)] for _ in range(3)}
        assert canonical_bytes(doc) == reference(doc).encode("utf-8")
        assert canonical._fast(doc) is not None


def test_fuzzed_floats_alone_and_in_documents():
    rng = random.Random(FUZZ_SEED + 2)
    for _ in range(20_000):
        x = random_float(rng)
        assert_same(x)
        assert_same({"a": x, "b": None, "c": [x, "e-5"]})


def test_fuzzed_values_with_default_str():
    rng = random.Random(FUZZ_SEED + 3)
    extras = [
        lambda: Decimal(rng.randrange(-(10**12), 10**12)) / Decimal(10 ** rng.randrange(0, 9)),
        lambda: datetime(2026, rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), tzinfo=timezone.utc),
        lambda: date(2026, rng.randrange(1, 13), 1),
        lambda: UUID(int=rng.getrandbits(128)),
        lambda: Color.RED,
    ]
    for _ in range(3_000):
        doc = random_value(rng)
        doc = {"v": doc, "x": rng.choice(extras)(), "y": [rng.choice(extras)()]}
        assert_same(doc, default=str)
        assert_same(doc, default=repr)


# --- hypothesis ----------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 2**64 - 1).map(lambda bits: struct.unpack("<d", bits.to_bytes(8, "little"))[0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), FLOATS, TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(TEXT, children, max_size=5),
    ),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(value=VALUES)
def test_hypothesis_values_write_the_reference_text(value):
    assert_same(value)


# --- one case per known difference ----------------------------------------------------------------


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


class Kind(str, enum.Enum):
    CREDIT = "credit"


class Flags(enum.IntFlag):
    A = 1
    B = 2


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


class Items(list):
    pass


class Mapping(dict):
    pass


Point = collections.namedtuple("Point", "x y")

FLOAT_EDGES = [
    0.0, -0.0, 1.0, -1.5, 0.1 + 0.2, 1e-4, -1e-4, 9.999999999999999e-05, 1e-5, -1e-5, 1.5e-7, 1e-7, 1e-9,
    1e-10, 1.2345e-200, 5e-324, -5e-324, 2.2250738585072014e-308, 1e15, 123456789012345.6, 9999999999999998.0,
    1e16, -1e16, 1.2345e16, 1e22, 1e23, 1.5e300, sys.float_info.max, -sys.float_info.max,
    math.nan, -math.nan, math.inf, -math.inf,
]  # fmt: skip


@pytest.mark.parametrize("x", FLOAT_EDGES, ids=repr)
def test_floats_at_every_formatting_edge(x):
    for value in (x, [x], {"x": x}, {"x": x, "none": None}, {"a": [None, x]}, [None, {"k": x}]):
        assert_same(value)


@pytest.mark.parametrize(
    "value",
    [{"n": math.nan}, {"cap": None, "n": [math.inf]}, [None, math.nan], {"cap": None, "d": {"x": -math.inf}}],
    ids=repr,
)
def test_nan_and_infinity_are_never_written_as_null(value):
    assert "NaN" in canonical_json(value) or "Infinity" in canonical_json(value)
    assert_same(value)


def test_top_level_nones_stay_on_the_fast_path_and_nested_ones_are_still_exact():
    entry = {"cap": None, "grams": 120, "type": "credit"}
    assert canonical._fast(entry) == b'{"cap":null,"grams":120,"type":"credit"}'
    assert canonical._fast({"a": None, "b": None, "c": [1]}) is not None
    assert canonical._fast({'k"': None}) == b'{"k\\"":null}'
    for value in ({"a": {"b": None}}, {"a": None, "b": [None]}, {"null": "null", "a": None}):
        assert_same(value)


@pytest.mark.parametrize(
    "value",
    [2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**63) - 1, 10**40, -(10**40), {"big": [2**200, 1]}],
    ids=repr,
)
def test_integers_of_any_size(value):
    assert_same(value)


@pytest.mark.parametrize(
    "value",
    [
        {1: "a", 2: "b"},
        {10: "a", 9: "b"},  # json sorts ints numerically: "9" before "10"
        {1.5: 1, 0.5: 2},
        {True: 1, False: 0},
        {None: 1},
        {1: "a", "b": 2},  # json cannot sort int against str: TypeError
        {Text("k"): 1, "a": 2},
        {(1, 2): 1},
    ],
    ids=repr,
)
def test_non_str_keys(value):
    assert_same(value)


@pytest.mark.parametrize(
    "value",
    [
        Level.LOW,
        Kind.CREDIT,
        {"kind": Kind.CREDIT, "level": Level.LOW},
        Flags.A | Flags.B,
        True,
        (1, "a"),
        Point(1, 2),
        collections.OrderedDict(b=1, a=2),
        collections.defaultdict(int, b=1),
        Mapping(b=1, a=2),
        Items([3, 2]),
        Text("text"),
        {"k": Text("v\n")},
        Number(5),
        Real(1.5),
        Real(1e-7),
        Real(math.nan),
        {"x": Real(2.5)},
    ],
    ids=repr,
)
def test_subclasses_of_the_json_types(value):
    assert_same(value)


@pytest.mark.parametrize(
    "value, fast",
    [
        ("".join(map(chr, range(0x20))) + '\x7f\u2028\u2029"\\/\ufeff\uffff', True),
        ({"\U0001f600": 1, "\uffff": 2, "\ue000": 3, "\U00010000": 4, "z": 5, "": 6}, True),  # code point order
        ({"a\U0001f600": 1, "a\U0001f601": 2, "a\uffff": 3}, True),  # keys differing only in non-BMP chars
        ({"碳": "中文", "é": "ü", "a\x00b": "\x01", "k": "\\u0000"}, True),
        (["1e-05", "0.0000", "e-", "x:e-1", "-0.00001"], True),  # number-like text inside strings
        (["null", ":0.00001", ",1e-7", "[1e-7", "x:1e-7]"], False),  # ... that the cheap checks cannot tell
    ],
    ids=repr,
)
def test_strings_and_key_order(value, fast):
    assert_same(value)
    assert (canonical._fast(value) is not None) is fast


def test_lone_surrogates_write_the_same_str_and_refuse_bytes_as_before():
    value = {"s": "\ud800x"}
    assert canonical_json(value) == reference(value)
    with pytest.raises(UnicodeEncodeError):
        canonical_bytes(value)


@pytest.mark.parametrize(
    "value",
    [datetime(2026, 1, 1), date(2026, 1, 1), Decimal("1.5"), {1, 2}, b"bytes", {"at": datetime(2026, 1, 1)}],
    ids=repr,
)
def test_what_json_refuses_is_refused_the_same_way(value):
    assert outcome(canonical_json, value)[0] == "raised"
    assert_same(value)


@pytest.mark.parametrize(
    "value",
    [{"at": datetime(2026, 1, 1, tzinfo=timezone.utc)}, {"d": Decimal("0.00001")}, [UUID(int=1)], Color.RED],
    ids=repr,
)
@pytest.mark.parametrize("default", [str, repr, lambda o: {"t": type(o).__name__}], ids=["str", "repr", "dict"])
def test_default_is_called_as_json_calls_it(value, default):
    assert_same(value, default=default)


def test_circular_and_deep_structures():
    loop = []
    loop.append(loop)
    assert_same(loop)
    deep = current = {}
    for _ in range(400):  # deeper than orjson's limit of 255, well within json's
        current["d"] = current = {}
    assert_same(deep)


def test_known_leftovers():
    """Documented in canonical's docstring, and what they are: values only orjson can write are
    written, and an Enum member whose value is not its own str/int is written as its value."""
    assert canonical_json({"c": Color.RED}) == '{"c":1}'
    assert canonical_json([UUID(int=1)]) == '["00000000-0000-0000-0000-000000000001"]'
    for value in ({"c": Color.RED}, [UUID(int=1)]):
        with pytest.raises(TypeError):
            reference(value)

    class Coin(str, enum.Enum):  # a str whose Enum value is not that str: custom __new__
        def __new__(cls, code, grams):
            member = str.__new__(cls, code)
            member._value_ = grams
            return member

        SMALL = ("s", 5)

    assert reference([Coin.SMALL]) == '["s"]'
    assert canonical_json([Coin.SMALL]) == "[5]"  # orjson writes Enum members by value


def test_a_ledger_entry_hashes_as_before_on_the_fast_path():
    entry = {
        "_id": "d67fee3535aa3d7dcf3e5817b8f3d0a67d8d79086f8b95937040ec6fa261aea8",
        "account_id": "acc_c3d609dac8a96d05203052c802446fb4",
        "balance_after": 120,
        "cap": None,
        "cap_keys": ["metro_ride|user|day:2026-11-25"],
        "caps": [{"max_count": 0, "max_grams": 300, "period": "day", "scope": "user_scenario", "scope_key": ""}],
        "factors": {"baseline_g_per_pkm": "90.1"},
        "grams": 120,
        "owner_pid": "碳-u-1",
        "posted_at": "2026-11-25T02:00:01.000000Z",
        "prev_hash": "0" * 64,
        "seq": 1,
        "type": "credit",
    }
    assert canonical._fast(entry) is not None  # the time saved is on this path
    assert canonical_bytes(entry) == reference(entry).encode("utf-8")
    assert sm3_hex(canonical_bytes(entry)) == sm3_hex(reference(entry).encode("utf-8"))


def test_self_check_passes_with_the_locked_orjson():
    assert canonical._ENABLED
    assert canonical._self_check()
