"""What a reconciliation reads: the bridge's records (every group's slots, batches, transitions,
unit operations, records: `_id` / `$in` pages through a Repository that counts its reads and
refuses writes) and the registry's history and holdings."""

from exchange_bridge import batch_format as bf
from exchange_bridge import rules
from exchange_bridge.intake import tails_of
from exchange_bridge.reconciliation.report import Report

TRANSACTIONS_PAGE = 500  # the registry's largest page
BATCHES_PER_READ = 20  # batch documents hold their leaves: a few per `$in`


class _Counted:
    """A database (or collection) whose find/find_one calls are counted: what a run costs."""

    def __init__(self, target, counter: dict):
        self._target, self._counter = target, counter

    def __getitem__(self, name):
        return _Counted(self._target[name], self._counter)

    def __getattr__(self, name):
        attribute = getattr(self._target, name)
        if name in ("find", "find_one"):

            def counted(*args, **kwargs):
                self._counter["bridge_reads"] += 1
                return attribute(*args, **kwargs)

            return counted
        if name in ("insert_one", "insert_many", "update_one", "update_many", "delete_one", "delete_many"):
            raise AssertionError(f"reconciliation writes nothing ({name})")
        return attribute


class Reads:
    """The reads of a Reconciler (`self.repo`, `self.registry`, `self.participant`)."""

    def _bridge(self, report: Report) -> dict:
        repo = self.repo
        links = repo.chain_length("intake", lambda i: i, "intake")
        groups = sorted(tails_of(repo.intake_link(links)))
        slots: dict[str, list[dict]] = {}
        for group in groups:
            n = repo.chain_length("slots", lambda i, g=group: rules.slot_id(g, i), "slots:" + group)
            slots[group] = repo.slots_of(group, 1, n)
        batches: dict[str, dict] = {}
        order = [slot for group in groups for slot in slots[group]]
        ids = [slot["batch_id"] for slot in order]
        holders: dict[str, list[str]] = {}  # reduction id -> the batches holding it
        leaf_grams: dict[str, int] = {}  # reduction id -> its grams in a batch (the most, if several)
        slot_of = {slot["batch_id"]: slot for slot in order}
        registered: dict[str, int] = {}  # owner -> leaf grams in issued batches
        batched: dict[str, dict] = {}  # reduction id -> its leaf in a batch not rejected, with its transfer
        for start in range(0, len(ids), BATCHES_PER_READ):
            part = ids[start : start + BATCHES_PER_READ]
            found = repo.batches_of(part)
            states = repo.transitions_of(part)
            page = []  # (leaf, batch id, issued): checked against the reduction's documents now
            rejected = {b for b in part if "rejected" in states[b]}
            for batch_id in part:
                doc = found.get(batch_id)
                issued = "issued" in states[batch_id]
                batches[batch_id] = {
                    "stored": doc is not None,
                    "doc": doc["batch"] if doc else None,
                    "signature": doc["signature"] if doc else "",
                    "states": states[batch_id],
                }
                if doc is None:
                    report.add("reductions", batch_id, "the slot names a batch the bridge has not stored")
                    continue
                lowered = {c["reduction_id"]: c["grams"] for c in slot_of[batch_id].get("corrections", [])}
                for leaf in doc["leaves"]:  # leaves are not kept: memory stays ~ids per reduction
                    rid = leaf["reduction_id"]
                    holders.setdefault(rid, []).append(batch_id)
                    leaf_grams[rid] = max(leaf_grams.get(rid, 0), leaf["grams"])
                    page.append((leaf, batch_id, issued, lowered.get(rid)))
                    if issued:
                        registered[leaf["owner_pid"]] = registered.get(leaf["owner_pid"], 0) + leaf["grams"]
            self._leaves(report, page, batched, rejected)
        for slot in order:
            batches[slot["batch_id"]]["slot"] = slot
        issued = [b for b in ids if "issued" in batches[b]["states"]]
        ops = repo.unit_ops_of_many(issued)
        op_ids = [op["op_id"] for b in issued for op in ops[b]]
        records = repo.docs_of("records", ["issue:" + b for b in issued] + op_ids)
        report.figures.update(
            groups=len(groups),
            batches=len(ids),
            issued_batches=len(issued),
            unit_operations=len(op_ids),
            bridge_units=sum(int(batches[b]["states"]["issued"]["units"]) for b in issued),
        )
        return {
            "groups": groups,
            "slots": slots,
            "batches": batches,
            "issued": issued,
            "ops": ops,
            "records": records,
            "holders": holders,
            "leaf_grams": leaf_grams,
            "registered": registered,
            "batched": batched,
        }

    def _registry(self, report: Report) -> dict:
        issues, ops, by_group, after = {}, {}, {}, 0
        seen = 0
        # holdings first: every operation they reflect is then in the history read after them
        holdings = self.registry.holdings(self.participant)["blocks"]
        report.cost["registry_calls"] += 1
        while True:
            page = self.registry.transactions(after=after, limit=TRANSACTIONS_PAGE)
            report.cost["registry_calls"] += 1
            records = page.get("transactions", [])
            if not records:
                break
            for record in records:
                seen += 1
                if record["type"] == "issue":
                    key = bf.group_key(record["methodology_id"], record["methodology_version"], record["vintage"])
                    by_group.setdefault(key, []).append(_issue_summary(record))
                    if record["to_holder"] == self.participant:
                        issues[record["batch_id"]] = record
                elif record["from_holder"] == self.participant:
                    ops[record["op_id"]] = record
            if int(page.get("after", after)) <= after:
                break
            after = int(page["after"])
        report.figures.update(
            registry_records=seen,
            registry_batches=len(issues),
            registry_units=sum(int(r["units"]) for r in issues.values()),
            registry_operations=len(ops),
        )
        return {
            "issues": issues,
            "ops": ops,
            "by_group": by_group,
            "holdings": holdings,
            "in_flight": set(),
            "late_ops": [],
        }


def _issue_summary(record: dict) -> dict:
    return {
        "batch_id": record["batch_id"],
        "to_holder": record["to_holder"],
        "position": int(record.get("group_position") or 0),
        "units": int(record["units"]),
        "start": record["start"],
        "end": record["end"],
        "quantity_grams": int(record.get("quantity_grams") or 0),
        "carried_in_grams": int(record.get("carried_in_grams") or 0),
        "carried_from": record.get("carried_from", ""),
        "carried_out_grams": int(record.get("carried_out_grams") or 0),
    }
