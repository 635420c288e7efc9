"""Serial blocks after issuance: transfer, retire, cancel — each splits one block.

A block is never edited. An operation *consumes* one active block by inserting its signed
record into `fates` with `_id = block id` (first writer wins: two operations can never spend
the same serials) and *produces* up to two blocks: the part it moved/retired/cancelled
(`<op_id>/0`) and the rest that stays with the holder (`<op_id>/1`). The produced blocks live
inside the record, so a batch's current blocks are found by walking from its issuance record
through `fates` (`_id` reads only), and a crash after the fate insert is finished by whoever
walks next (`finish` is idempotent).
"""

from carbon_common.mongo import find_by_ids, insert_new
from exchange_bridge import batch_format as bf
from exchange_bridge.registry.errors import ApiError

ACTIVE, RETIRED, CANCELLED = "active", "retired", "cancelled"
OUTCOME = {"transfer": ACTIVE, "retire": RETIRED, "cancel": CANCELLED}
STATE_OF_OP = {"issue": "issued", "transfer": "transferred", "retire": "retired", "cancel": "cancelled"}
MAX_ATTEMPTS = 50  # lost fate races before answering `contention`


def make_block(block_id: str, parent: dict, start: int, end: int, holder: str, status: str) -> dict:
    return {
        "block_id": block_id,
        "batch_id": parent["batch_id"],
        "methodology_id": parent["methodology_id"],
        "methodology_version": parent["methodology_version"],
        "vintage": parent["vintage"],
        "start": start,
        "end": end,
        "units": end - start + 1,
        "serial": bf.serial(parent["methodology_id"], parent["methodology_version"], parent["vintage"], start, end),
        "holder": holder,
        "status": status,
    }


class Ledger:
    def __init__(self, db, chains, records):
        self.db, self.chains, self.records = db, chains, records

    def finish(self, record: dict) -> dict:
        """Roll a decided operation forward: stored record, holders' indexes, sequence number."""
        stored = self.records.store(record)
        for block in stored["produced"]:
            self._index(block["holder"], block, "held", stored["op_id"])
        if stored["type"] == "transfer":
            self._index(stored["from_holder"], stored["produced"][0], "sent", stored["op_id"])
        self.records.sequence(stored)
        return stored

    def _index(self, holder: str, block: dict, role: str, op_id: str) -> None:
        entry = {"key": f"{holder}|{block['block_id']}", "holder": holder, "role": role, "op_id": op_id, "block": block}
        self.chains.append("holdings", holder, entry)

    def walk(self, batch_id: str) -> tuple[list[dict], list[dict]] | None:
        """(current blocks, records of the operations that consumed its blocks), None if not issued."""
        issue = self.records.get("issue:" + batch_id)
        if issue is None:
            return None
        frontier, current, history = list(issue["produced"]), [], []
        while frontier:
            fates = find_by_ids(self.db.fates, [block["block_id"] for block in frontier])
            following = []
            for block in frontier:
                fate = fates.get(block["block_id"])
                if fate is None:
                    current.append(block)
                else:
                    history.append(fate)
                    following.extend(fate["produced"])
            frontier = following
        return sorted(current, key=lambda b: b["start"]), history

    def operate(self, caller, kind: str, client_id: str, request: dict, at: str) -> tuple[dict, bool]:
        """Transfer/retire/cancel `request["units"]` of the caller's units of `request["batch_id"]`
        -> (record, created now). The same client id again returns the same record."""
        op_id = f"{kind}:{caller.participant}:{client_id}"
        existing = self.records.get(op_id)
        if existing is not None:
            return self.finish(self._same(existing, request)), False
        for _ in range(MAX_ATTEMPTS):
            walked = self.walk(request["batch_id"])
            if walked is None:
                raise ApiError("batch_not_issued", f"batch {request['batch_id']} has no issued units")
            current, history = walked
            mine = [fate for fate in history if fate["op_id"] == op_id]
            if mine:  # a concurrent copy of this very request won
                return self.finish(self._same(mine[0], request)), False
            block = self._choose(current, caller.participant, request["units"])
            record = self.records.sign(self._body(op_id, kind, caller.participant, block, request, at))
            caller.commit()
            if not insert_new(self.db.fates, [{**record, "_id": block["block_id"]}]):
                return self.finish(record), True
            winner = self.db.fates.find_one({"_id": block["block_id"]})
            if winner["op_id"] == op_id:
                return self.finish(self._same(winner, request)), False
        raise ApiError("contention", "too many concurrent operations on this batch's blocks: retry")

    @staticmethod
    def _same(record: dict, request: dict) -> dict:
        if record["request"] != request:
            raise ApiError(
                "operation_conflict", f"{record['op_id']} was used for another request: ids are never reused"
            )
        return {k: v for k, v in record.items() if k not in ("_id", "seq")}

    @staticmethod
    def _choose(current: list[dict], holder: str, units: int) -> dict:
        """The caller's lowest-serial active block holding at least `units` (one block per operation)."""
        held = [b for b in current if b["holder"] == holder and b["status"] == ACTIVE]
        for block in held:
            if block["units"] >= units:
                return block
        largest = max((b["units"] for b in held), default=0)
        raise ApiError(
            "insufficient_units",
            f"no active block of {units} units held by {holder} in this batch (largest: {largest}); "
            "an operation takes units from one block",
        )

    @staticmethod
    def _body(op_id: str, kind: str, holder: str, block: dict, request: dict, at: str) -> dict:
        units, start, end = request["units"], block["start"], block["end"]
        moved_to = request.get("to_holder") or holder
        produced = [make_block(f"{op_id}/0", block, start, start + units - 1, moved_to, OUTCOME[kind])]
        if units < block["units"]:
            produced.append(make_block(f"{op_id}/1", block, start + units, end, holder, ACTIVE))
        moved = produced[0]
        return {
            "op_id": op_id,
            "type": kind,
            "batch_id": block["batch_id"],
            "methodology_id": block["methodology_id"],
            "methodology_version": block["methodology_version"],
            "vintage": block["vintage"],
            "units": units,
            "serial": moved["serial"],
            "start": moved["start"],
            "end": moved["end"],
            "from_holder": holder,
            "to_holder": moved_to,
            "beneficiary": request.get("beneficiary", ""),
            "reason": request.get("reason", ""),
            "at": at,
            "consumed": block["block_id"],
            "produced": produced,
            "request": request,
        }

    def holdings(self, holder: str) -> dict:
        """The holder's blocks by status; `transferred` = blocks it sent to others."""
        n = self.chains.length("holdings", holder)
        entries = []
        for first in range(1, n + 1, 1000):
            keys = [self.chains.key(holder, i) for i in range(first, min(first + 1000, n + 1))]
            entries.extend(find_by_ids(self.db.holdings, keys).values())
        held = [e for e in entries if e["role"] == "held"]
        consumed = set()
        for first in range(0, len(held), 1000):
            consumed.update(
                find_by_ids(self.db.fates, [e["block"]["block_id"] for e in held[first : first + 1000]], {"_id": 1})
            )
        out = {ACTIVE: [], RETIRED: [], CANCELLED: [], "transferred": []}
        for entry in sorted(entries, key=lambda e: e["n"]):
            if entry["role"] == "sent":
                out["transferred"].append(entry["block"])
            elif entry["block"]["block_id"] not in consumed:  # a split block shows as its parts
                out[entry["block"]["status"]].append(entry["block"])
        return out
