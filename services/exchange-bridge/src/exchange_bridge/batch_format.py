"""The exchange batch format (ADR 0005 §4-5): leaves, SM3 Merkle trees, tonnes, serials.

Pure functions, no I/O: the bridge builds batches with them, the registry re-checks every
batch with them, and a certificate verifier needs nothing else. Every rule is fixed by test
vectors in tests/unit/test_batch_format.py (and docs/registry-api.md), so an auditor's own
implementation can compare hex for hex.
"""

from datetime import datetime, timedelta, timezone

from carbon_common.canonical import canonical_bytes
from carbon_common.gm import sm3_hex

FORMAT = "carbon-reduction-batch/1"
GRAMS_PER_UNIT = 1_000_000  # one exchange unit = 1 t CO2e
CST = timezone(timedelta(hours=8))  # vintages are China Standard Time calendar years
LEAF_FIELDS = (
    "reduction_id",
    "grams",
    "owner_pid",
    "methodology_id",
    "methodology_version",
    "factor_set_id",
    "factor_set_version",
    "vintage",
    "occurred_at",
)


def parse_time(text: str) -> datetime:
    """ISO 8601 with an offset ("Z" or ±hh:mm); a time without one is refused (ValueError)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without an offset: {text!r}")
    return moment


def vintage(occurred_at: str) -> int:
    """Calendar year of `occurred_at` in UTC+08:00."""
    return parse_time(occurred_at).astimezone(CST).year


def leaf(reduction: dict) -> dict:
    """The leaf of one reduction: exactly LEAF_FIELDS; vintage derived when absent."""
    out = {name: reduction[name] for name in LEAF_FIELDS if name != "vintage"}
    out["grams"] = int(out["grams"])
    given = reduction.get("vintage")
    out["vintage"] = int(given) if given is not None else vintage(reduction["occurred_at"])
    return out


def leaf_hash(leaf_doc: dict) -> str:
    return sm3_hex(b"leaf:" + canonical_bytes(leaf_doc))


def consent_leaf_hash(reduction_id: str, consent_id: str) -> str:
    return sm3_hex(("consent:" + reduction_id + ":" + consent_id).encode("utf-8"))


def _parent(left: str, right: str) -> str:
    return sm3_hex(("node:" + left + right).encode("ascii"))


def _next_level(level: list[str]) -> list[str]:
    up = [_parent(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])  # an odd last node is promoted unchanged
    return up


def merkle_root(hashes) -> str:
    """Root over the hashes sorted ascending (lowercase hex); one leaf -> it; none -> ""."""
    level = sorted(h.lower() for h in hashes)
    if not level:
        return ""
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def inclusion_proof(hashes, target: str) -> list[dict]:
    """Siblings from `target` up to the root; side = where the sibling sits. ValueError if absent."""
    level = sorted(h.lower() for h in hashes)
    index = level.index(target.lower())
    proof = []
    while len(level) > 1:
        if index % 2:
            proof.append({"side": "left", "hash": level[index - 1]})
        elif index + 1 < len(level):
            proof.append({"side": "right", "hash": level[index + 1]})
        # else: the odd last node, promoted without a sibling
        level = _next_level(level)
        index //= 2
    return proof


def verify_proof(leaf_hash_hex: str, proof, root: str) -> bool:
    """Whether folding `proof` onto the leaf gives `root`; False for any malformed input."""
    try:
        node = leaf_hash_hex.lower()
        for step in proof:
            sibling = step["hash"].lower()
            if len(sibling) != 64:
                return False
            if step["side"] == "left":
                node = _parent(sibling, node)
            elif step["side"] == "right":
                node = _parent(node, sibling)
            else:
                return False
        return bool(root) and node == root.lower()
    except (AttributeError, KeyError, TypeError, UnicodeEncodeError):
        return False


def tonnes(carried_in_grams: int, quantity_grams: int) -> tuple[int, int]:
    """(whole units issued, grams carried out to the group's next batch)."""
    return divmod(carried_in_grams + quantity_grams, GRAMS_PER_UNIT)


def serial(methodology_id: str, version: str, vintage_year: int, start: int, end: int) -> str:
    code = methodology_id.upper().replace("_", "-")
    return f"CN-PCA-{code}-V{version}-{vintage_year}-{start:09d}-{end:09d}"


def group_key(methodology_id: str, version: str, vintage_year: int) -> str:
    """A (methodology, version, vintage) group: the unit of carried remainders and serials."""
    return f"{methodology_id}:{version}:{vintage_year}"


def batch_id(methodology_id: str, version: str, vintage_year: int, reduction_ids, attempt: int = 1) -> str:
    """SM3("batch:" + group + "\\n" + sorted ids joined by "\\n"). A batch re-formed from the
    reductions of a rejected one (ADR 0005 R2) is attempt 2: "#2" follows the group."""
    prefix = "batch:" + group_key(methodology_id, version, vintage_year)
    if attempt != 1:
        prefix += f"#{attempt}"
    return sm3_hex((prefix + "\n" + "\n".join(sorted(reduction_ids))).encode("utf-8"))


def period(leaves) -> str:
    """ "first/last occurred_at", compared as instants, written as given."""
    times = sorted((parse_time(item["occurred_at"]), item["occurred_at"]) for item in leaves)
    return f"{times[0][1]}/{times[-1][1]}"


def batch_document(
    leaves: list[dict],
    consent_hashes: list[str],
    carried_in_grams: int,
    carried_from: str,
    created_at: str,
    attempt: int = 1,
) -> dict:
    """The signed batch over `leaves` (all of one group; ValueError otherwise)."""
    if not leaves:
        raise ValueError("a batch needs at least one leaf")
    groups = {(item["methodology_id"], item["methodology_version"], item["vintage"]) for item in leaves}
    if len(groups) != 1:
        raise ValueError(f"leaves of {len(groups)} groups in one batch")
    (methodology_id, version, vintage_year) = groups.pop()
    batch = {
        "format": FORMAT,
        "batch_id": batch_id(methodology_id, version, vintage_year, [item["reduction_id"] for item in leaves], attempt),
        "methodology_id": methodology_id,
        "methodology_version": version,
        "vintage": vintage_year,
        "record_count": len(leaves),
        "quantity_grams": sum(item["grams"] for item in leaves),
        "carried_in_grams": carried_in_grams,
        "carried_from": carried_from,
        "merkle_root": merkle_root(leaf_hash(item) for item in leaves),
        "consent_root": merkle_root(consent_hashes),
        "period": period(leaves),
        "created_at": created_at,
    }
    if attempt != 1:
        batch["attempt"] = attempt  # only then: the registry needs it to recompute batch_id
    return batch
