"""Batch rules: deterministic id, the documented Merkle rule, integer quantity, claims filter."""

import pytest

from carbon_common.gm import sm3_hex
from exchange_bridge import domain


def digest(text: str) -> str:
    return sm3_hex(text.encode())


def item(entry_id: str, grams: int, posted_at: str = "2026-11-25T02:00:00.000000Z") -> dict:
    entry = {"entry_id": entry_id, "grams": grams, "hash": digest(entry_id), "posted_at": posted_at}
    return domain.item_from_entry(entry, "claim-1", "2026-11-25T03:00:00Z")


def test_merkle_root_pairs_hex_digests_and_promotes_the_odd_last_node():
    a, b, c = digest("a"), digest("b"), digest("c")
    ab = sm3_hex((a + b).encode("ascii"))
    assert domain.merkle_root([a]) == a
    assert domain.merkle_root([a, b]) == ab
    assert domain.merkle_root([a, b, c]) == sm3_hex((ab + c).encode("ascii"))
    assert domain.merkle_root([a, b, c]) != domain.merkle_root([a, c, b])
    assert domain.merkle_root([]) == ""


def test_batch_is_a_function_of_its_entries_whatever_their_order():
    items = [item("e2", 300, "2026-11-26T00:00:00Z"), item("e1", 200, "2026-11-25T00:00:00Z")]
    one, other = domain.build_batch(items, "t1"), domain.build_batch(list(reversed(items)), "t1")
    assert one == other
    assert one["batch_id"] == domain.batch_id(["e1", "e2"]) != domain.batch_id(["e1"])
    assert one["quantity"] == 500 and isinstance(one["quantity"], int) and one["record_count"] == 2
    assert one["merkle_root"] == domain.merkle_root([digest("e1"), digest("e2")])
    assert one["period"] == "2026-11-25T00:00:00Z/2026-11-26T00:00:00Z"


def test_empty_batches_cannot_be_built():
    with pytest.raises(ValueError):
        domain.build_batch([], "t1")


def test_only_unclaimed_pool_credits_are_selected():
    entries = [
        {"entry_id": "e1", "type": "redemption_transfer", "grams": 10},
        {"entry_id": "e2", "type": "redemption_transfer", "grams": 20},
        {"entry_id": "e3", "type": "opened", "grams": 0},
    ]
    assert [e["entry_id"] for e in domain.select_unclaimed(entries, {"e1"})] == ["e2"]
