"""SM3 and HMAC-SM3: GM/T 0004 vectors, byte-identical to gmssl 3.2.2 on both backends."""

import hmac as std_hmac

import pytest
from gmssl import sm3 as gmssl_sm3
from hypothesis import given, settings, strategies as st

from carbon_common import gm
from carbon_dev.gm_testing import backends

BACKENDS = backends()
assert "fast" in BACKENDS[0].name, "fast backend must be importable in this venv"


# GM/T 0004-2012 Appendix A examples 1 and 2.
@pytest.mark.parametrize(
    "message, expected",
    [
        (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
        (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
    ],
)
def test_sm3_matches_standard_vectors(active, message, expected):
    assert gm.sm3_hex(message) == expected
    assert gm.sm3_digest(message) == bytes.fromhex(expected)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300))
def test_fast_sm3_is_byte_identical_to_gmssl(data):
    expected = gmssl_sm3.sm3_hash(list(data))
    assert BACKENDS[0].sm3(data).hex() == expected


class _GmsslSm3:
    """hashlib-style adapter so the standard library's hmac can drive gmssl's SM3."""

    digest_size, block_size = 32, 64

    def __init__(self, data=b""):
        self._data = bytes(data)

    def update(self, data):
        self._data += data

    def copy(self):
        return _GmsslSm3(self._data)

    def digest(self):
        return bytes.fromhex(gmssl_sm3.sm3_hash(list(self._data)))


@settings(max_examples=30, deadline=None)
@given(key=st.binary(min_size=1, max_size=100), data=st.binary(max_size=200))
def test_hmac_sm3_agrees_with_stdlib_hmac_over_gmssl(key, data):
    expected = std_hmac.new(key, data, _GmsslSm3).digest().hex()
    for impl in BACKENDS:
        assert impl.hmac_sm3(key, data).hex() == expected


def test_pseudonym_is_stable_keyed_and_distinct(active):
    key, other_key = b"k" * 32, b"j" * 32
    pid = gm.pseudonymize(key, "6222020200112233")
    assert pid == gm.pseudonymize(key, "6222020200112233")
    assert pid == gm.hmac_sm3_hex(key, b"6222020200112233")
    assert pid != gm.pseudonymize(key, "6222020200112234")
    assert pid != gm.pseudonymize(other_key, "6222020200112233")
    assert pid != gm.sm3_hex(b"6222020200112233")  # not a bare, guessable hash
    assert len(pid) == 64 and "6222020200112233" not in pid


@pytest.mark.parametrize("key, number", [(b"short", "1"), (b"k" * 32, ""), (b"k" * 32, 123)])
def test_pseudonym_rejects_weak_key_and_empty_number(key, number):
    with pytest.raises(ValueError):
        gm.pseudonymize(key, number)


def test_hash_refuses_int_that_bytes_would_turn_into_zeros():
    with pytest.raises(TypeError):
        gm.sm3_hex(16)
