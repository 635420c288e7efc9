"""The bridge's pure rules (no I/O): document ids, leaves from contributions, the group queue's
cursor, the carried remainder and when a group's next batch is formed.

Vocabulary (services/exchange-bridge/README.md):
  group   (methodology id, methodology version, vintage): `batch_format.group_key`, "m:v:y".
  slice   the reductions one intake link added to one group, in order: the group's queue is
          the chain of its slices, `<group>#<k>` for k = 1, 2, …
  cursor  [k, i]: the queue position of slice k's i-th reduction (0-based); [1, 0] is the start.
  slot    the group's n-th batch, `<group>/<n>`: which queue range it holds, its attempt and the
          remainder it carries in. A slot is decided by one unique insert (first writer wins).
"""

from carbon_common.scenarios import not_for_exchange

from exchange_bridge import batch_format as bf

MAX_ATTEMPTS = 2  # a reduction rejected in this many batches is written off (ADR 0005 rule R2)
START = (1, 0)
MAX_TEXT = 128  # the registry's limit on a leaf's text fields
TERMINAL = ("issued", "released", "written_off")
LIFECYCLE = ("formed", "submitted", "verified", "rejected", "issued", "released", "written_off")
UNIT_STATES = {"transfer": "transferred", "retire": "retired", "cancel": "cancelled"}

# Registry refusals that judge the batch's content: the batch is rejected (rule R2 applies).
# Any other refusal (authentication, keys, the carried chain, a conflict) says nothing about
# the reductions: the batch is held and sent again on later passes until an operator acts.
CONTENT_REFUSALS = frozenset(
    {
        "rejected",  # stored as rejected by the registry (its verification failed)
        "invalid_request",
        "body_too_large",
        "unsupported_format",
        "invalid_leaf",
        "duplicate_leaf",
        "mixed_group",
        "record_count_mismatch",
        "quantity_mismatch",
        "merkle_root_mismatch",
        "consent_mismatch",
        "consent_root_mismatch",
        "batch_id_mismatch",
        "period_mismatch",
        "batch_signature_invalid",
        "duplicate_reduction",
    }
)


class Unbatchable(ValueError):
    """A contribution that can never make a valid leaf (e.g. a credit from before provenance
    fields existed): recorded as a write-off at intake, never queued."""


def slice_id(group: str, k: int) -> str:
    return f"{group}#{k:09d}"


def slot_id(group: str, n: int) -> str:
    return f"{group}/{n:09d}"


def transition_id(batch_id: str, state: str, operation: str = "") -> str:
    return f"{batch_id}:{state}" + (f":{operation}" if operation else "")


def group_of(leaf_doc: dict) -> str:
    return bf.group_key(leaf_doc["methodology_id"], leaf_doc["methodology_version"], leaf_doc["vintage"])


def leaf_of(contribution: dict) -> dict:
    """The batch leaf of one contribution (account.contributions), or Unbatchable."""
    for name in ("reduction_id", "owner_pid", "methodology_id", "methodology_version", "occurred_at"):
        value = contribution.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise Unbatchable(f"{name} is missing or not 1-{MAX_TEXT} characters")
    for name in ("factor_set_id", "factor_set_version"):
        value = contribution.get(name, "")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise Unbatchable(f"{name} is not a string of at most {MAX_TEXT} characters")
    grams = contribution.get("grams")
    if type(grams) is not int or grams < 1:
        raise Unbatchable("grams is not a positive integer")
    try:
        leaf = bf.leaf({**contribution, "vintage": None})
    except (ValueError, TypeError) as error:
        raise Unbatchable(f"occurred_at: {error}") from None
    if not 1900 <= leaf["vintage"] < 10000:
        raise Unbatchable("vintage out of range")
    return leaf


def candidate(contribution: dict, pool_owner: str) -> dict:
    """The bridge's copy of one reduction: its leaf and what a batch needs besides. A reduction
    of a scenario the contract keeps from the exchange (claimed under another mechanism) is
    Unbatchable: written off at intake, with the contract's reason."""
    why = not_for_exchange().get(contribution.get("scenario", ""))
    if why:
        raise Unbatchable(f"not for the exchange: {why}")
    leaf = leaf_of(contribution)
    return {
        "_id": leaf["reduction_id"],
        "group": group_of(leaf),
        "leaf": leaf,
        "consent_id": contribution.get("consent_id") or "",
        "traceparent": contribution.get("traceparent") or "",
        "transfer_entry_id": contribution.get("transfer_entry_id", ""),
        "redemption_entry_id": contribution.get("redemption_entry_id", ""),
        "pool": pool_owner,
    }


def corrected_leaves(ids: list[str], candidates: dict, corrections: list[dict]) -> tuple[list[str], list[dict]]:
    """(reduction ids, leaves) of a slot's batch: each queued leaf at the grams its slot's
    `corrections` state (a correction lowered it after intake), one corrected to 0 left out
    (ADR 0005 §2: the account writes off the difference; the exchange never receives it)."""
    lowered = {c["reduction_id"]: c["grams"] for c in corrections}
    kept, leaves = [], []
    for rid in ids:
        leaf = candidates[rid]["leaf"]
        if rid in lowered:
            if lowered[rid] <= 0:
                continue
            leaf = {**leaf, "grams": lowered[rid]}
        kept.append(rid)
        leaves.append(leaf)
    return kept, leaves


def take(slices: list[dict], start, limit: int) -> tuple[list[tuple[str, int]], tuple[int, int]]:
    """Up to `limit` queued reductions from cursor `start` through `slices` (the slice docs
    from start's slice on, in order, each with `k` and `reductions` [[id, grams], …])
    -> ([(reduction id, grams)], end cursor)."""
    k, i = start
    taken = []
    for doc in slices:
        if doc["k"] < k:
            continue
        if doc["k"] != k:
            raise ValueError(f"slice {k} missing before slice {doc['k']}")
        rows = doc["reductions"]
        room = limit - len(taken)
        taken.extend((rid, grams) for rid, grams in rows[i : i + room])
        if i + room < len(rows):
            return taken, (k, i + room)
        k, i = k + 1, 0
    return taken, (k, i)


def between(slices: list[dict], start, end) -> list[tuple[str, int]]:
    """The queued reductions from cursor `start` (included) to `end` (excluded)."""
    wanted = range(start[0], end[0] + (1 if end[1] else 0))
    found = {doc["k"]: doc for doc in slices}
    missing = [k for k in wanted if k not in found]
    if missing:
        raise ValueError(f"slices {missing[:3]} missing")
    out = []
    for k in wanted:
        rows = found[k]["reductions"]
        low = start[1] if k == start[0] else 0
        high = end[1] if k == end[0] else len(rows)
        out.extend((rid, grams) for rid, grams in rows[low:high])
    return out


def carry_after(slot: dict | None, states: dict) -> tuple[str, int]:
    """(carried_from, carried_in_grams) the group's next batch states, after `slot` settled.
    An issued batch passes on its own remainder; a rejected one passes on what it was given
    (the registry linked nothing for it)."""
    if slot is None:
        return "", 0
    issued = states.get("issued")
    if issued is not None:
        return slot["batch_id"], int(issued["carried_out_grams"])
    return slot["carried_from"], int(slot["carried_in_grams"])


def next_range(slot: dict | None, states: dict) -> tuple[str, dict]:
    """What the group's next slot holds: ("retry", range of the rejected slot) or ("queue",
    {from, cum_from}) continuing the queue after `slot`."""
    if slot is not None and "released" in states:
        return "retry", {"from": tuple(slot["from"]), "to": tuple(slot["to"]), "cum_from": slot["cum_from"]}
    if slot is None:
        return "queue", {"from": START, "cum_from": 0}
    return "queue", {"from": tuple(slot["to"]), "cum_from": slot["cum_to"]}


def due(pending_grams: int, carried_in: int, min_grams: int) -> bool:
    """A group's batch is formed once its queued grams and carried remainder reach min_grams."""
    return pending_grams > 0 and pending_grams + carried_in >= min_grams


def serial_of(batch: dict, number: int) -> str:
    """One unit's serial, written as a one-unit block (docs/certificate.md §6)."""
    return bf.serial(batch["methodology_id"], batch["methodology_version"], batch["vintage"], number, number)


def client_id(kind: str, request_key: str) -> str:
    """The registry's operation id for a caller's request key (1-64 of [A-Za-z0-9._-])."""
    from carbon_common.gm import sm3_hex

    return f"{kind[0]}-{sm3_hex((kind + ':' + request_key).encode('utf-8'))[:48]}"
