"""The helpers every service shares: their output is stored, hashed or signed, so it is pinned
byte for byte (the ledger's hash chain over existing entries must keep verifying)."""

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from carbon_common import clock, config
from carbon_common.canonical import canonical_bytes, canonical_json
from carbon_common.gm import sm3_hex

moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc))


@given(moments)
def test_iso_z_writes_what_the_ledger_and_the_bridge_always_wrote(moment):
    assert clock.iso_z(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert clock.iso_z(moment, "milliseconds") == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert clock.iso_z(moment, "seconds") == moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_utc_now_iso_keeps_every_digit_and_converts_to_utc():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", clock.utc_now_iso())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", clock.utc_now_iso("milliseconds"))
    beijing = datetime(2026, 11, 25, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    assert clock.iso_z(beijing) == "2026-11-25T00:00:00.000000Z"  # a whole second keeps its fraction
    assert clock.utc_now().tzinfo is timezone.utc


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_non_ascii():
    doc = {"b": [1, {"z": "碳", "a": None}], "a": "x"}
    assert canonical_json(doc) == '{"a":"x","b":[1,{"a":null,"z":"碳"}]}'
    assert canonical_bytes(doc) == canonical_json(doc).encode("utf-8")
    with pytest.raises(TypeError):
        canonical_json({"at": datetime(2026, 1, 1)})
    assert canonical_json({"at": datetime(2026, 1, 1)}, default=str) == '{"at":"2026-01-01 00:00:00"}'


def test_canonical_bytes_of_a_ledger_entry_hash_as_before():
    """SM3 over the canonical text of a stored entry, computed before this helper existed."""
    body = {
        "_id": "e1",
        "type": "redemption",
        "grams": -200,
        "account_id": "acc_x",
        "seq": 3,
        "reward_id": "电影票",
        "balance_after": 300,
        "posted_at": "2026-11-25T01:00:00.000000Z",
        "prev_hash": "0" * 64,
    }
    assert sm3_hex(canonical_bytes(body)) == "b430dd91ef57d24bac06c096f8d095150668ff00ff0da908aa59c0f87ce8b350"
    assert canonical_bytes(body) == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def test_a_setting_comes_from_the_service_config_first_then_the_environment(monkeypatch):
    monkeypatch.setenv("CARBON_TEST_SETTING", " from-env ")
    monkeypatch.delenv("CARBON_TEST_MISSING", raising=False)
    assert config.setting("CARBON_TEST_SETTING", "d") == "from-env"
    assert config.setting("CARBON_TEST_SETTING", "d", {"CARBON_TEST_SETTING": "from-config"}) == "from-config"
    assert config.setting("CARBON_TEST_SETTING", "d", {"CARBON_TEST_SETTING": ""}) == "from-env"
    assert config.setting("CARBON_TEST_MISSING", "d", {}) == "d"
    assert config.int_setting("CARBON_TEST_MISSING", 7, {"CARBON_TEST_MISSING": 3}) == 3
    assert config.float_setting("CARBON_TEST_MISSING", 0.5) == 0.5
    with pytest.raises(config.MissingSetting, match="CARBON_TEST_MISSING"):
        config.require("CARBON_TEST_MISSING", {"OTHER": "x"})
    with pytest.raises(SystemExit, match="CARBON_TEST_SETTING must be a number"):
        config.float_setting("CARBON_TEST_SETTING", 0.0)
