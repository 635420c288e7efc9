"""Canonical JSON throughput: carbon_common.canonical (orjson, checked) vs the json.dumps it replaced.

Prints ops/s of both on the documents of the hot path — a credit's ledger entry as hashed
(account.ledger.entry_hash) with and without a binding cap, the account state stored after it,
calc's ReductionCalculated payload and an exchange batch — the ratio new/old, and the same for
one credit (hash the entry, store the entry and the state). Asserts both write the same bytes.
"orjson/old" is bare orjson.dumps, unchecked: the ceiling, the rest is the cost of the checks.
Each figure is the best of ROUNDS runs of BUDGET seconds (BENCH_CANONICAL_SECONDS, default
0.15), old and new alternating, so a busy machine skews both alike: ~10 s in all.
Run: .venv/bin/python tests/bench/bench_canonical.py
"""

import json
import os
import random
import sys
import time

import orjson
from account import caps, ledger
from account.operations import AUDIT_FIELDS
from carbon_common.canonical import canonical_bytes, canonical_json
from carbon_dev import payloads
from exchange_bridge import batch_format

BUDGET = float(os.environ.get("BENCH_CANONICAL_SECONDS", "0.15"))
ROUNDS = 4
rng = random.Random(7)


def reference_bytes(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def reference_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rate(operation) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < BUDGET:
        for _ in range(100):
            operation()
        count += 100
    return count / elapsed


def compare(old_operation, new_operation) -> tuple[float, float]:
    """Best ops/s of each over ROUNDS alternating runs."""
    old_operation(), new_operation()  # warm-up
    old = new = 0.0
    for _ in range(ROUNDS):
        old, new = max(old, rate(old_operation)), max(new, rate(new_operation))
    return old, new


def moment(day: int) -> str:
    return f"2026-11-{day:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z"


def credit(state: dict, user: str, n: int, grams: int, capped: bool) -> tuple[dict, dict]:
    """A credit sealed as account.operations does it: draft = owner + audit fields + decision."""
    cap_doc = {"period": "day", "max_grams": 300, "max_count": 0, "scope": "user_scenario", "scope_key": ""}
    reduction = payloads.reduction(user, n, grams, occurred_at=moment(25), caps=[cap_doc])
    audit = {k: reduction[k] for k in AUDIT_FIELDS if reduction.get(k) not in (None, "", {})}
    cap_list = [caps.Cap.from_event(c) for c in reduction["caps"]]
    audit["caps"] = [c.as_doc() for c in cap_list]
    draft = {
        "owner_pid": user,
        "account_kind": "individual",
        **audit,
        "requested_grams": grams,
        "_id": ledger.credit_entry_id(reduction["reduction_id"]),
        "type": ledger.CREDIT,
        "grams": grams,
        "capped_grams": 0,
        "cap": cap_list[0].as_doc() if capped else None,
        "cap_keys": sorted(caps.cap_key(reduction["scenario"], c, reduction["occurred_at"]) for c in cap_list),
        "cap_grams": grams,
        "cap_count": 1,
    }
    return ledger.seal(state, draft, moment(25), lambda trailing: "seed" if trailing < 10_000 else "sprout")


def documents() -> tuple[list[tuple[str, dict]], tuple[dict, dict, dict]]:
    """The benchmarked documents, and (entry as hashed, entry, state after it) of one credit."""
    user = "pid_" + rng.randbytes(16).hex()
    state = {**ledger.genesis_state(ledger.account_id_for(user)), "status": "open", "tier": "seed"}
    for n in range(40):  # some history: earned_by_month and cap usage filled in
        _, state = credit(state, user, n, rng.randrange(50, 400), capped=n % 3 == 0)
    entry, after = credit(state, user, 40, 120, capped=False)
    capped_entry, _ = credit(state, user, 41, 300, capped=True)
    leaves = [
        batch_format.leaf(
            {
                "reduction_id": rng.randbytes(32).hex(),
                "grams": 500,
                "owner_pid": "pid_" + rng.randbytes(16).hex(),
                "methodology_id": "metro_ride",
                "methodology_version": "1",
                "factor_set_id": "",
                "factor_set_version": "",
                "occurred_at": moment(d),
            }
        )
        for d in range(1, 21)
    ]
    consents = [batch_format.consent_leaf_hash(leaf["reduction_id"], rng.randbytes(16).hex()) for leaf in leaves]
    batch = batch_format.batch_document(leaves, consents, 0, "", moment(25))
    hashed = {k: v for k, v in entry.items() if k not in ledger.UNHASHED}
    return [
        ("credit entry, hashed", hashed),
        ("capped entry, hashed", {k: v for k, v in capped_entry.items() if k not in ledger.UNHASHED}),
        ("entry, stored", entry),
        ("state, stored", after),
        ("calc reduction", payloads.reduction(user, 40, 120, occurred_at=moment(25))),
        ("exchange batch", batch),
    ], (hashed, entry, after)


def main() -> int:
    started = time.perf_counter()
    docs, (hashed, entry, state) = documents()
    print(f"{'document':<22} {'bytes':>6} {'old ops/s':>11} {'new ops/s':>11} {'new/old':>8} {'orjson/old':>11}")
    for name, doc in docs:
        assert canonical_bytes(doc) == reference_bytes(doc), name
        assert canonical_json(doc) == reference_json(doc), name
        old, new = compare(lambda doc=doc: reference_bytes(doc), lambda doc=doc: canonical_bytes(doc))
        bare = rate(lambda doc=doc: orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
        size = len(reference_bytes(doc))
        print(f"{name:<22} {size:>6} {old:11.0f} {new:11.0f} {new / old:7.1f}x {bare / old:10.1f}x", flush=True)

    def old_credit():
        reference_bytes(hashed), reference_json(entry), reference_json(state)

    def new_credit():
        canonical_bytes(hashed), canonical_json(entry), canonical_json(state)

    old, new = compare(old_credit, new_credit)
    print(f"{'one credit (3 calls)':<22} {'':>6} {old:11.0f} {new:11.0f} {new / old:7.1f}x")
    print(f"  per credit: {1e6 / old:.1f} us -> {1e6 / new:.1f} us")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
