"""Retirement certificates (docs/certificate.md, `carbon-retirement-certificate/2`), built from
what the bridge stores per batch: the signed batch (with its `attempt` when re-formed) and the
bank's signature, all its leaves, and the registry's signed issue and retire records. Pure: no I/O.

The registry's records go in **verbatim, as signed** (`carbon-registry-record/1`,
docs/registry-api.md §6): the registry signs `canonical_json(record without signature and seq)`,
so the certificate carries exactly that object as `record` and the signature beside it as
`registry_signature`. Nothing is renamed or recomputed, so tools/certificate-verifier checks the
registry's own bytes.
"""

from exchange_bridge import batch_format as bf

FORMAT = "carbon-retirement-certificate/2"
# Members of a stored registry record that its signature does not cover: the signature itself,
# the record's place in the registry's history (allocated after signing) and storage ids.
UNSIGNED = ("_id", "signature", "seq")


def signed_record(record: dict) -> dict:
    """{record: the members the registry signed, registry_signature}."""
    return {
        "record": {k: v for k, v in record.items() if k not in UNSIGNED},
        "registry_signature": record["signature"],
    }


def issued_units(issue: dict | None) -> bool:
    """Whether the issue record issued serials: a batch of less than a tonne (with its carry) is
    recorded with 0 units and start/end null, and has nothing that could be retired."""
    return bool(issue) and issue.get("units", 0) >= 1 and issue.get("start") is not None


def batch_entry(owner_pid: str, material: dict) -> dict | None:
    """One batch of the certificate, or None when the batch holds none of the owner's leaves,
    issued no unit or has no retirement yet."""
    batch, issue = material["batch"], material.get("issuance")
    mine = sorted(
        (leaf for leaf in material["leaves"] if leaf["owner_pid"] == owner_pid), key=lambda item: item["reduction_id"]
    )
    retirements = [r for r in material.get("retirements", []) if r.get("type") == "retire"]
    if not mine or not retirements or not issued_units(issue):
        return None
    hashes = [bf.leaf_hash(leaf) for leaf in material["leaves"]]
    return {
        "batch": batch,
        "bank_signature": material["bank_signature"],
        "issuance": signed_record(issue),
        "retirements": [signed_record(r) for r in sorted(retirements, key=lambda r: (r["start"], r["op_id"]))],
        "leaves": [{"leaf": leaf, "proof": bf.inclusion_proof(hashes, bf.leaf_hash(leaf))} for leaf in mine],
    }


def build(owner_pid: str, materials: list[dict], issued_at: str) -> dict:
    """The certificate of `owner_pid` over `materials`, each {batch, bank_signature, leaves (all
    the batch's leaves), issuance (the registry's issue record as stored, with its signature),
    retirements (its retire records, likewise)}; batches without the owner's leaves, without
    issued units or without a retirement are left out."""
    batches = [entry for m in materials if (entry := batch_entry(owner_pid, m)) is not None]
    return {
        "format": FORMAT,
        "owner_pid": owner_pid,
        "issued_at": issued_at,
        "total_grams": sum(item["leaf"]["grams"] for entry in batches for item in entry["leaves"]),
        "batches": batches,
    }
