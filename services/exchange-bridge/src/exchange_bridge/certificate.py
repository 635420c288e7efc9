"""Retirement certificates (docs/certificate.md, `carbon-retirement-certificate/1`), built from
what the bridge stores per batch: the signed batch and the bank's signature, all its leaves,
and the registry's signed issue and retire records. Pure: no I/O.

The registry signs its own record shape (`carbon-registry-record/1`, docs/registry-api.md §6),
which is not the shape docs/certificate.md §3 lists; this module writes the certificate's shape
(the registry's `to_holder` as `holder`, `op_id` as `transaction_id`, `serial_start` /
`serial_end` as one-unit serials) and carries the registry's signature over its own record. So
a certificate built here verifies in every step except the registry's signatures until the
registry signs the certificate's record shape (see services/exchange-bridge/README.md).
"""

from exchange_bridge import batch_format as bf
from exchange_bridge import rules

FORMAT = "carbon-retirement-certificate/1"


def issuance_record(issue: dict, batch: dict) -> dict:
    return {
        "type": "issue",
        "batch_id": issue["batch_id"],
        "serial_start": rules.serial_of(batch, issue["start"]),
        "serial_end": rules.serial_of(batch, issue["end"]),
        "start": issue["start"],
        "end": issue["end"],
        "units": issue["units"],
        "carried_out_grams": issue["carried_out_grams"],
        "holder": issue["to_holder"],
        "at": issue["at"],
        "transaction_id": issue["op_id"],
    }


def retirement_record(record: dict, batch: dict) -> dict:
    return {
        "type": "retire",
        "batch_id": record["batch_id"],
        "serial_start": rules.serial_of(batch, record["start"]),
        "serial_end": rules.serial_of(batch, record["end"]),
        "start": record["start"],
        "end": record["end"],
        "units": record["units"],
        "beneficiary": record["beneficiary"],
        "reason": record["reason"],
        "at": record["at"],
        "transaction_id": record["op_id"],
    }


def batch_entry(owner_pid: str, material: dict) -> dict | None:
    """One batch of the certificate, or None when the batch holds none of the owner's leaves,
    issued no unit or has no retirement yet."""
    batch, issue = material["batch"], material.get("issuance")
    mine = sorted(
        (leaf for leaf in material["leaves"] if leaf["owner_pid"] == owner_pid), key=lambda item: item["reduction_id"]
    )
    retirements = [r for r in material.get("retirements", []) if r["type"] == "retire"]
    if not mine or not retirements or not issue or issue["units"] < 1:
        return None
    hashes = [bf.leaf_hash(leaf) for leaf in material["leaves"]]
    return {
        "batch": batch,
        "bank_signature": material["bank_signature"],
        "issuance": {"record": issuance_record(issue, batch), "registry_signature": issue["signature"]},
        "retirements": [
            {"record": retirement_record(r, batch), "registry_signature": r["signature"]}
            for r in sorted(retirements, key=lambda r: r["start"])
        ],
        "leaves": [{"leaf": leaf, "proof": bf.inclusion_proof(hashes, bf.leaf_hash(leaf))} for leaf in mine],
    }


def build(owner_pid: str, materials: list[dict], issued_at: str) -> dict:
    """The certificate of `owner_pid` over `materials`, each {batch, bank_signature, leaves (all
    the batch's leaves), issuance (the registry's issue record), retirements (its retire
    records)}; batches without the owner's leaves or without a retirement are left out."""
    batches = [entry for m in materials if (entry := batch_entry(owner_pid, m)) is not None]
    return {
        "format": FORMAT,
        "owner_pid": owner_pid,
        "issued_at": issued_at,
        "total_grams": sum(item["leaf"]["grams"] for entry in batches for item in entry["leaves"]),
        "batches": batches,
    }
