"""Checks of the bridge's records against the registry's: issued batches (`registry_batches`,
`unknown_batches`), unit operations (`unit_operations`) and holdings (`holdings`). An apparent
difference is read again by `_id` before it is reported: a run races the bridge and callers."""

from carbon_common.canonical import canonical_bytes
from carbon_common.gm import sm3_hex

from exchange_bridge import batch_format as bf
from exchange_bridge import rules
from exchange_bridge.reconciliation.report import Report

ISSUE_FIELDS = (
    "merkle_root",
    "consent_root",
    "quantity_grams",
    "carried_in_grams",
    "carried_from",
    "batch_digest",
    "signature",
)
OPERATION_FIELDS = (
    "type",
    "batch_id",
    "units",
    "serial",
    "start",
    "end",
    "from_holder",
    "to_holder",
    "beneficiary",
    "reason",
    "at",
    "signature",
)
STATUSES = ("active", "retired", "cancelled", "transferred")
GRACE_SECONDS = 120  # a registry operation this recent may still be on its way into the bridge


class RegistryChecks:
    """Checks of a Reconciler against the registry (`self.repo`, `self.registry`, `self.grace`)."""

    def _batches(self, report: Report, bridge: dict, registry: dict) -> None:
        batches, issues = bridge["batches"], registry["issues"]
        for batch_id in bridge["issued"]:
            batch, record = batches[batch_id], issues.get(batch_id)
            if record is None:
                report.add(
                    "registry_batches", batch_id, "issued at the bridge, no issue record of the bank at the registry"
                )
                continue
            issued, doc = batch["states"]["issued"], batch["doc"]
            bridge_side = {
                **_issued_block(issued),
                "merkle_root": doc["merkle_root"],
                "consent_root": doc["consent_root"],
                "quantity_grams": doc["quantity_grams"],
                "carried_in_grams": doc["carried_in_grams"],
                "carried_from": doc["carried_from"],
                "batch_digest": sm3_hex(canonical_bytes(doc)),
                "signature": (bridge["records"].get("issue:" + batch_id) or {}).get("signature", "(none stored)"),
            }
            registry_side = {
                **_issued_block(record),
                **{k: record.get(k) for k in ISSUE_FIELDS},
            }
            _compare(report, "registry_batches", batch_id, bridge_side, registry_side)
        unknown = [b for b in issues if b not in batches or "issued" not in batches[b]["states"]]
        if unknown:  # a second look, by _id: the bridge may have stored them since it was read
            found = self.repo.batches_of(unknown)
            states = self.repo.transitions_of(unknown)
            for batch_id in unknown:
                now = states.get(batch_id, {})
                if "issued" in now:  # issued at the bridge since it was read: in flight for this run
                    registry["in_flight"].add(batch_id)
                    continue
                if batch_id not in found:
                    report.add("unknown_batches", batch_id, "issued to the bank at the registry, unknown to the bridge")
                elif any(s in now for s in ("rejected", "released", "written_off")):
                    report.add(
                        "unknown_batches",
                        batch_id,
                        "issued at the registry, rejected at the bridge",
                        bridge_states=sorted(now),
                    )
                else:
                    report.in_flight.append({"batch_id": batch_id, "bridge_states": sorted(now)})
                    registry["in_flight"].add(batch_id)

    def _operations(self, report: Report, bridge: dict, registry: dict) -> None:
        registry_ops, records = registry["ops"], bridge["records"]
        known, transitions = {}, {}
        for batch_id in bridge["issued"]:
            for op in bridge["ops"][batch_id]:
                known[op["op_id"]] = batch_id
        wanted = {}
        for op_id, batch_id in known.items():
            kind, _, client_id = op_id.split(":", 2)
            wanted[op_id] = rules.transition_id(batch_id, rules.UNIT_STATES.get(kind, kind), client_id)
        if wanted:
            transitions = self.repo.docs_of("transitions", list(wanted.values()))
        for op_id in known:
            mine, theirs = records.get(op_id), registry_ops.get(op_id)
            if mine is None:
                report.add("unit_operations", op_id, "in the batch's operations at the bridge, its record not stored")
                continue
            if theirs is None:
                report.add("unit_operations", op_id, "recorded at the bridge, not in the registry's history")
                continue
            _compare(
                report,
                "unit_operations",
                op_id,
                {k: mine.get(k) for k in OPERATION_FIELDS},
                {k: theirs.get(k) for k in OPERATION_FIELDS},
            )
            transition = transitions.get(wanted[op_id])
            if transition is None or (transition["units"], transition["serial"]) != (theirs["units"], theirs["serial"]):
                report.add("unit_operations", op_id, "the bridge's transition is missing or disagrees with the record")
        unknown = [op_id for op_id in registry_ops if op_id not in known]
        if unknown:  # a second look: an operation may have finished at the bridge since
            by_batch = {}
            for op_id in unknown:
                by_batch.setdefault(registry_ops[op_id]["batch_id"], []).append(op_id)
            now = self.repo.unit_ops_of_many(list(by_batch))
            stored = self.repo.docs_of("records", unknown, {"_id": 1})
            for batch_id, op_ids in by_batch.items():
                listed = {op["op_id"] for op in now[batch_id]}
                for op_id in op_ids:
                    record = registry_ops[op_id]
                    if op_id in listed or self._recent(record, report):
                        registry["late_ops"].append(record)  # the holdings read before may show it
                    if op_id in listed:
                        continue
                    if self._recent(record, report):
                        report.in_flight.append({"operation": op_id, "batch_id": batch_id, "at": record["at"]})
                        continue
                    what = (
                        "the bridge stored the record but did not finish the operation (call it again with its request key)"
                        if op_id in stored
                        else "the registry moved the bank's units in an operation the bridge has no record of"
                    )
                    report.add("unit_operations", op_id, what, batch_id=batch_id)
        report.figures["operations_checked"] = len(known)

    def _recent(self, record: dict, report: Report) -> bool:
        """Recorded by the registry within GRACE_SECONDS before this run: a caller's operation
        may still be on its way into the bridge's records (listed as in flight, not counted)."""
        try:
            at = bf.parse_time(record["at"])
        except (KeyError, TypeError, ValueError):
            return False
        return (bf.parse_time(report.started_at) - at).total_seconds() < self.grace

    def _holdings(self, report: Report, bridge: dict, registry: dict) -> None:
        batches, records = bridge["batches"], bridge["records"]
        late: dict[str, list[dict]] = {}
        for record in registry["late_ops"]:
            late.setdefault(record["batch_id"], []).append(record)
        expected = {}
        for batch_id in bridge["issued"]:
            ops = [records[op["op_id"]] for op in bridge["ops"][batch_id] if op["op_id"] in records]
            row = _expected_row(batches[batch_id], ops + late.get(batch_id, []))
            if row is not None:
                expected[batch_id] = row
        actual: dict[str, dict] = {}
        foreign = 0
        for status in STATUSES:
            for block in registry["holdings"].get(status, []):
                if block["batch_id"] in registry["in_flight"]:
                    continue  # issued at the registry, the bridge stores the outcome next pass
                if block["batch_id"] not in batches:
                    foreign += int(block["units"])
                    continue
                row = actual.setdefault(block["batch_id"], dict.fromkeys(STATUSES, 0))
                row[status] += int(block["units"])
        for batch_id in sorted(set(expected) | set(actual)):
            if expected.get(batch_id) == actual.get(batch_id):
                continue
            # a second look at this batch alone: the registry's status (its blocks and operations,
            # one answer) and the bridge's operations read again
            status = self.registry.status(batch_id)
            report.cost["registry_calls"] += 1
            fresh = {"states": self.repo.transitions_of([batch_id])[batch_id]}
            if status and status.get("units") and "issued" not in fresh["states"]:
                # the registry's answer on it (issue record, holdings) is on its way to the bridge
                report.in_flight.append({"batch_id": batch_id, "bridge_states": sorted(fresh["states"])})
                continue
            ops = self.repo.unit_ops_of_many([batch_id])[batch_id]
            mine = self.repo.docs_of("records", [op["op_id"] for op in ops])
            theirs = [op for op in (status or {}).get("operations", []) if op.get("from_holder") == self.participant]
            pending = [op for op in theirs if op["op_id"] not in mine and self._recent(op, report)]
            again = _expected_row(fresh if batch_id in batches else None, list(mine.values()) + pending)
            now = _status_row(status, self.participant, theirs)
            if again != now:
                report.add(
                    "holdings",
                    batch_id,
                    "the registry's holdings of the bank differ from the bridge's records",
                    bridge=again,
                    registry=now,
                )
        report.figures["foreign_units_held"] = foreign
        report.figures["units_by_status"] = {s: sum(r[s] for r in actual.values()) for s in STATUSES}


def _issued_block(issued: dict) -> dict:
    """The issued block as compared: the bridge's `issued` transition and the registry's issue
    record name it with the same members."""
    return {
        "units": int(issued["units"]),
        "serial": issued["serial"],
        "start": int(issued["start"] or 0),
        "end": int(issued["end"] or 0),
        "carried_out_grams": int(issued["carried_out_grams"]),
    }


def _expected_row(batch: dict | None, operations: list[dict]) -> dict | None:
    """What the registry should hold of the bank for an issued batch, by status, after these
    operations (None: not issued at the bridge, or 0 units)."""
    if batch is None or "issued" not in batch["states"]:
        return None
    units = int(batch["states"]["issued"]["units"])
    if not units:
        return None
    row = dict.fromkeys(STATUSES, 0)
    row["active"] = units
    for record in {op["op_id"]: op for op in operations}.values():
        moved = int(record["units"])
        row["active"] -= moved
        row[rules.UNIT_STATES[record["type"]]] += moved
    return row


def _status_row(status: dict | None, participant: str, operations: list[dict]) -> dict | None:
    """The bank's units of one batch by status, from the registry's `GET /v1/batches/{id}`."""
    if status is None or not status.get("units"):
        return None
    row = dict.fromkeys(STATUSES, 0)
    for block in status.get("blocks", []):
        if block["holder"] == participant and block["status"] in row:
            row[block["status"]] += int(block["units"])
    row["transferred"] = sum(int(op["units"]) for op in operations if op["type"] == "transfer")
    return row


def _compare(report: Report, check: str, subject: str, mine: dict, theirs: dict) -> None:
    differing = sorted(k for k in mine if mine[k] != theirs.get(k))
    if differing:
        report.add(
            check,
            subject,
            "the bridge's record and the registry's differ in " + ", ".join(differing),
            bridge={k: mine[k] for k in differing},
            registry={k: theirs.get(k) for k in differing},
        )
