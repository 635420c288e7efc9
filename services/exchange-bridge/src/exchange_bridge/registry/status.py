"""GET /v1/batches/{id}: a batch's lifecycle, serials, current blocks and every operation."""

from carbon_common.mongo import find_by_ids
from exchange_bridge.registry.blocks import STATE_OF_OP
from exchange_bridge.registry.issuance import LIFECYCLE
from exchange_bridge.registry.records import public


def batch_status(registry, batch_id: str) -> dict | None:
    db = registry.db
    stored = db.batches.find_one({"_id": batch_id})
    if stored is None:
        return None
    registry.issuance.finish(stored)  # a decided batch whose writer died is finished by any reader
    found = find_by_ids(db.transitions, [f"{batch_id}:{state}" for state in LIFECYCLE])
    history = [
        {"state": state, "reason": found[key]["reason"], "at": found[key]["at"]}
        for state in LIFECYCLE
        if (key := f"{batch_id}:{state}") in found
    ]
    issue = registry.records.get("issue:" + batch_id)
    blocks, consumed = registry.ledger.walk(batch_id) or ([], [])
    operations = find_by_ids(db.records, [fate["op_id"] for fate in consumed])
    for fate in consumed:
        if fate["op_id"] not in operations:  # decided, but its writer died before recording it
            operations[fate["op_id"]] = registry.ledger.finish({k: v for k, v in fate.items() if k != "_id"})
    ordered = sorted((public(op) for op in operations.values()), key=lambda op: (op["at"], op["op_id"]))
    for op in ordered:
        history.append({"state": STATE_OF_OP[op["type"]], "reason": op["reason"], "at": op["at"], "op_id": op["op_id"]})
    batch = stored["batch"]
    return {
        "batch_id": batch_id,
        "participant": stored["participant"],
        "status": history[-1]["state"],
        "reason": stored["rejected"] or "",
        "history": history,
        "batch": batch,
        "key_id": stored["key_id"],
        "signature": stored["signature"],
        "received_at": stored["received_at"],
        "units": issue["units"] if issue else 0,
        "carried_out_grams": issue["carried_out_grams"] if issue else None,
        "serial": issue["serial"] if issue else "",
        "serial_start": issue["start"] if issue else None,
        "serial_end": issue["end"] if issue else None,
        "issuance": public(issue),
        "blocks": blocks,
        "operations": ordered,
    }
