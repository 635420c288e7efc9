"""The bridge's former batch rules (pooled ledger entries, unprefixed Merkle tree): no longer
used by the bridge, which builds batches with exchange_bridge.batch_format. Kept only while
tests/bench/bench_canonical.py imports `build_batch`; delete with that import.

Pure batch rules: batch id, SM3 Merkle root, the ReductionBatch document.

No I/O here. A batch is a pure function of its items (claimed ledger entries) plus the time
it was first built, so any bridge instance rebuilding a batch from the same items gets the same
batch_id, quantity and Merkle root.
"""

from carbon_common.gm import sm3_hex

BATCH_VERSION = 1


def batch_id(entry_ids) -> str:
    """SM3 of the sorted entry ids joined by newlines: same entries, same id, on any instance."""
    return sm3_hex("\n".join(sorted(entry_ids)).encode("utf-8"))


def merkle_root(leaf_hashes: list[str]) -> str:
    """SM3 Merkle root of hex digests, in the order given (callers sort items by entry id).

    Rule: each level pairs neighbours left to right; a parent is SM3 of the two children's
    lowercase hex digests concatenated as ASCII text (left + right); an odd last node is
    promoted unchanged to the next level. One leaf: the root is that leaf. No leaves: "".
    """
    level = [h.lower() for h in leaf_hashes]
    if not level:
        return ""
    while len(level) > 1:
        nxt = [sm3_hex((level[i] + level[i + 1]).encode("ascii")) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def item_from_entry(entry: dict, claim_id: str, claimed_at: str) -> dict:
    """The bridge's claim on one pool `redemption_transfer` entry (all a batch needs of it)."""
    return {
        "_id": entry["entry_id"],
        "entry_id": entry["entry_id"],
        "claim_id": claim_id,
        "grams": int(entry["grams"]),
        "entry_hash": entry["hash"],
        "posted_at": entry["posted_at"],
        "claimed_at": claimed_at,
    }


def build_batch(items: list[dict], created_at: str) -> dict:
    """ReductionBatch from claimed items. Raises ValueError for an empty batch."""
    if not items:
        raise ValueError("a batch needs at least one item")
    ordered = sorted(items, key=lambda item: item["entry_id"])
    posted = sorted(item["posted_at"] for item in ordered)
    return {
        "version": BATCH_VERSION,
        "batch_id": batch_id(item["entry_id"] for item in ordered),
        "kind": "pooled_redemptions",
        "period": f"{posted[0]}/{posted[-1]}",
        "quantity": sum(int(item["grams"]) for item in ordered),
        "unit": "gCO2e",
        "record_count": len(ordered),
        "merkle_root": merkle_root([item["entry_hash"] for item in ordered]),
        "created_at": created_at,
    }


def select_unclaimed(entries: list[dict], claimed_ids: set[str]) -> list[dict]:
    """Pool credits (positive redemption_transfer entries) not yet in any batch."""
    return [
        e
        for e in entries
        if e["type"] == "redemption_transfer" and int(e["grams"]) > 0 and e["entry_id"] not in claimed_ids
    ]


def registered_event(batch: dict, entry_ids: list[str], result: dict) -> dict:
    """Payload of `exchange_batch_registered` (proto ExchangeBatchRegistered)."""
    return {
        "batch_id": batch["batch_id"],
        "reduction_ids": [],
        "grams": batch["quantity"],
        "serial_start": result["serial_start"],
        "serial_end": result["serial_end"],
        "registered_at": result["registered_at"],
        "entry_ids": sorted(entry_ids),
        "merkle_root": batch["merkle_root"],
        "record_count": batch["record_count"],
        "period": batch["period"],
    }
