"""A batch submission checked against the batch format alone (no database): every number the
bank states is recomputed from the leaves it sent. Raises ApiError with the first rule broken.
"""

import re
from dataclasses import dataclass

from carbon_common.canonical import canonical_bytes
from carbon_common.gm import sm3_hex
from exchange_bridge import batch_format as bf
from exchange_bridge.registry.errors import ApiError
from exchange_bridge.registry.signing import HEX128, KEY_ID

HEX64 = re.compile(r"^[0-9a-f]{64}$")
BATCH_FIELDS = {
    "format",
    "batch_id",
    "methodology_id",
    "methodology_version",
    "vintage",
    "record_count",
    "quantity_grams",
    "carried_in_grams",
    "carried_from",
    "merkle_root",
    "consent_root",
    "period",
    "created_at",
}
MAX_TEXT = 128


@dataclass(frozen=True)
class Submission:
    batch: dict
    leaves: list
    consent_hashes: list
    signature: str
    key_id: str
    digest: str  # SM3 of the canonical batch: "the same batch" for idempotency

    @property
    def batch_id(self) -> str:
        return self.batch["batch_id"]

    @property
    def group(self) -> str:
        b = self.batch
        return bf.group_key(b["methodology_id"], b["methodology_version"], b["vintage"])


def _invalid(message: str):
    raise ApiError("invalid_request", message)


def _is_int(value, low: int, high: int | None = None) -> bool:
    return type(value) is int and value >= low and (high is None or value < high)


def _text(value, empty_ok: bool = False) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT and (empty_ok or value != "")


def _check_envelope(body) -> None:
    if not isinstance(body, dict):
        _invalid("the body must be a JSON object")
    for name, kind in (("batch", dict), ("leaves", list), ("signature", str), ("key_id", str)):
        if not isinstance(body.get(name), kind):
            _invalid(f"{name} must be a {'JSON object' if kind is dict else kind.__name__}")
    if ("consents" in body) == ("consent_leaves" in body):
        _invalid("send exactly one of consents ([{reduction_id, consent_id}]) or consent_leaves ([hex])")
    if not HEX128.fullmatch(body["signature"]):
        _invalid("signature must be 128 hex characters (r||s)")
    if not KEY_ID.fullmatch(body["key_id"]):
        _invalid(f"key_id must match {KEY_ID.pattern}")


def _check_batch(batch: dict, catalogue) -> None:
    if batch.get("format") != bf.FORMAT:
        raise ApiError("unsupported_format", f"batch.format must be {bf.FORMAT}")
    fields = set(batch) - {"attempt"}
    if fields != BATCH_FIELDS:
        _invalid(f"batch fields missing {sorted(BATCH_FIELDS - fields)}, unknown {sorted(fields - BATCH_FIELDS)}")
    checks = {
        "batch_id": HEX64.fullmatch(str(batch["batch_id"])),
        "methodology_id": _text(batch["methodology_id"]),
        "methodology_version": _text(batch["methodology_version"]),
        "vintage": _is_int(batch["vintage"], 1900, 10000),
        "record_count": _is_int(batch["record_count"], 1),
        "quantity_grams": _is_int(batch["quantity_grams"], 1),
        "carried_in_grams": _is_int(batch["carried_in_grams"], 0, bf.GRAMS_PER_UNIT),
        "carried_from": batch["carried_from"] == "" or HEX64.fullmatch(str(batch["carried_from"])),
        "merkle_root": HEX64.fullmatch(str(batch["merkle_root"])),
        "consent_root": HEX64.fullmatch(str(batch["consent_root"])),
        "period": isinstance(batch["period"], str) and 0 < len(batch["period"]) <= 2 * MAX_TEXT + 1,
        "created_at": _text(batch["created_at"]),
        "attempt": "attempt" not in batch or _is_int(batch["attempt"], 2, 100),
    }
    for name, ok in checks.items():
        if not ok:
            _invalid(f"batch.{name} is malformed (see docs/registry-api.md)")
    if (batch["methodology_id"], batch["methodology_version"]) not in catalogue:
        raise ApiError(
            "unknown_methodology",
            f"methodology {batch['methodology_id']} v{batch['methodology_version']} is not in the registry's catalogue",
        )


def _check_leaf(leaf, index: int) -> None:
    if not isinstance(leaf, dict) or set(leaf) != set(bf.LEAF_FIELDS):
        raise ApiError("invalid_leaf", f"leaves[{index}] must have exactly the fields {list(bf.LEAF_FIELDS)}")
    ok = (
        _text(leaf["reduction_id"])
        and _is_int(leaf["grams"], 1)
        and _text(leaf["owner_pid"])
        and _text(leaf["methodology_id"])
        and _text(leaf["methodology_version"])
        and _text(leaf["factor_set_id"], empty_ok=True)
        and _text(leaf["factor_set_version"], empty_ok=True)
        and _is_int(leaf["vintage"], 1900, 10000)
        and _text(leaf["occurred_at"])
    )
    if not ok:
        raise ApiError("invalid_leaf", f"leaves[{index}] has a field of the wrong type or size")
    try:
        year = bf.vintage(leaf["occurred_at"])
    except ValueError:
        raise ApiError("invalid_leaf", f"leaves[{index}].occurred_at is not ISO 8601 with an offset")
    if year != leaf["vintage"]:
        raise ApiError("invalid_leaf", f"leaves[{index}].vintage is {leaf['vintage']}, occurred_at says {year}")


def _consent_hashes(body: dict, leaves: list) -> list:
    ids = sorted(leaf["reduction_id"] for leaf in leaves)
    if "consents" in body:
        pairs = body["consents"]
        if not isinstance(pairs, list) or not all(
            isinstance(p, dict)
            and set(p) == {"reduction_id", "consent_id"}
            and _text(p["reduction_id"])
            and _text(p["consent_id"])
            for p in pairs
        ):
            raise ApiError("consent_mismatch", "consents must be [{reduction_id, consent_id}] (strings)")
        if sorted(p["reduction_id"] for p in pairs) != ids:
            raise ApiError("consent_mismatch", "consents must name each leaf's reduction id exactly once")
        return [bf.consent_leaf_hash(p["reduction_id"], p["consent_id"]) for p in pairs]
    hashes = body["consent_leaves"]
    if not isinstance(hashes, list) or not all(isinstance(h, str) and HEX64.fullmatch(h) for h in hashes):
        raise ApiError("consent_mismatch", "consent_leaves must be lowercase 64-hex SM3 digests")
    if len(hashes) != len(leaves) or len(set(hashes)) != len(hashes):
        raise ApiError("consent_mismatch", "consent_leaves must hold one distinct hash per leaf")
    return hashes


def parse(body, catalogue, max_leaves: int) -> Submission:
    """The checked Submission of a POST /v1/batches body."""
    _check_envelope(body)
    batch, leaves = body["batch"], body["leaves"]
    _check_batch(batch, catalogue)
    if len(leaves) != batch["record_count"]:
        raise ApiError("record_count_mismatch", f"record_count {batch['record_count']}, {len(leaves)} leaves sent")
    if len(leaves) > max_leaves:
        raise ApiError("invalid_request", f"at most {max_leaves} leaves per batch")
    group = (batch["methodology_id"], batch["methodology_version"], batch["vintage"])
    for index, leaf in enumerate(leaves):
        _check_leaf(leaf, index)
        if (leaf["methodology_id"], leaf["methodology_version"], leaf["vintage"]) != group:
            raise ApiError("mixed_group", f"leaves[{index}] is not of the batch's methodology, version and vintage")
    ids = [leaf["reduction_id"] for leaf in leaves]
    if len(set(ids)) != len(ids):
        raise ApiError("duplicate_leaf", "a reduction id appears twice in the batch")
    if sum(leaf["grams"] for leaf in leaves) != batch["quantity_grams"]:
        raise ApiError("quantity_mismatch", "quantity_grams is not the sum of the leaves' grams")
    if bf.merkle_root(bf.leaf_hash(leaf) for leaf in leaves) != batch["merkle_root"]:
        raise ApiError("merkle_root_mismatch", "merkle_root does not recompute from the leaves")
    consent_hashes = _consent_hashes(body, leaves)
    if bf.merkle_root(consent_hashes) != batch["consent_root"]:
        raise ApiError("consent_root_mismatch", "consent_root does not recompute from the consents")
    if bf.batch_id(*group, ids, batch.get("attempt", 1)) != batch["batch_id"]:
        raise ApiError("batch_id_mismatch", "batch_id does not recompute from the group and reduction ids")
    if bf.period(leaves) != batch["period"]:
        raise ApiError("period_mismatch", "period must be first/last occurred_at of the leaves")
    digest = sm3_hex(canonical_bytes(batch))
    return Submission(batch, leaves, consent_hashes, body["signature"], body["key_id"], digest)
