"""Reconciliation: the registry's holdings and history against the bridge's records and the
ledger. A difference is **reported** — one structured log line, the CLI's JSON and exit 1
(`python -m exchange_bridge.cli.reconcile`), the gauges below on the bridge's /metrics — and
never fixed: deciding what is right is the operator's call.

Checks (the `check` label of carbon_exchange_reconciliation_differences):
  registry_batches   every batch the bridge holds as issued has its issue record at the
                     registry, issued to the bank, with the same serial block, units, carried
                     remainder, Merkle and consent roots, grams, digest and signature
  unknown_batches    no batch issued to the bank at the registry that the bridge does not hold
                     as issued (one the bridge holds as sent, without an outcome yet, is listed
                     in `in_flight`, not counted: the bridge's next pass stores it)
  unit_operations    every transfer, retirement and cancellation the bridge recorded is the
                     registry's record (same fields, same signature) with its transition, and
                     every operation the registry records from the bank is one the bridge has
  holdings           the registry's holdings of the bank per batch and status (active, retired,
                     cancelled, transferred) = what the bridge's records give (issued − moved)
  group_units        per group (methodology, version, vintage): the registry's chain of issue
                     records is gapless, each links the previous one's remainder, serials are
                     contiguous from 1 with no overlap, units = floor((carried in + grams) / 1e6);
                     the bank's units in the group = floor(sum of its issued batches' grams / 1e6)
                     and the bridge's own batches state the same chain
  invariant          for each account and in total: registered ≤ redeemed to the pool ≤ credited
                     (registered = leaf grams of the bank's issued batches by owner; redeemed =
                     grams of the pool transfers by `source_account_id`; credited = the
                     account state's `credited`, RPC `account.account_figures`, 500 a call)
  reductions         every reduction is in at most one batch — two only as attempt 1 (rejected,
                     released) and its attempt 2 — issued at most once, with its `candidates`
                     and `issued` documents agreeing (the leaf at the grams its slot's
                     correction states, if any) and no write-off of an issued one
  corrections        a gram a correction took off a redeemed reduction is counted once (ADR 0005
                     §2): a batched reduction the pool wrote a correction off for is batched at
                     exactly the corrected grams, and every correction a formed batch applied
                     has the pool's `correction_write_off`

Reads, in this order so that what moves on meanwhile only grows later quantities (no false
alarm from a run racing the bridge, the account or the registry): the bridge (every group's
slots, batches, transitions, unit operations, records: `_id` / `$in` pages, no write), the
registry (the whole transaction history in pages of 500 and the bank's holdings), then the
account (the pool chains' transfers and correction write-offs in pages of 1,000, then `account_figures` per 500 redeeming
accounts and one `get_totals` for the platform's credited total). An apparent difference between bridge and registry is read again by `_id`
before it is reported. What it costs: the README, "Reconciliation".
"""

import logging
import time
from dataclasses import dataclass, field

from nameko.exceptions import RemoteError
from prometheus_client import Gauge

from carbon_common.accounts import POOL_OWNERS
from carbon_common.canonical import canonical_bytes
from carbon_common.clock import utc_now_iso
from carbon_common.gm import sm3_hex

from exchange_bridge import batch_format as bf
from exchange_bridge import rules
from exchange_bridge.intake import tails_of
from exchange_bridge.repository import Repository

log = logging.getLogger(__name__)

CHECKS = (
    "registry_batches",
    "unknown_batches",
    "unit_operations",
    "holdings",
    "group_units",
    "invariant",
    "reductions",
    "corrections",
)
POOL_TYPES = ["redemption_transfer", "correction_write_off"]
DIFFERENCES = Gauge(
    "carbon_exchange_reconciliation_differences",
    "Differences the last completed reconciliation found between the registry, the bridge's records and the "
    "ledger, by check (reported, never fixed: 0 is the only healthy value)",
    ["check"],
)
LAST_RUN = Gauge(
    "carbon_exchange_reconciliation_last_run_timestamp_seconds",
    "Unix time the last reconciliation completed (a run that could not read everything does not set it)",
)

ISSUE_FIELDS = (
    "merkle_root",
    "consent_root",
    "quantity_grams",
    "carried_in_grams",
    "carried_from",
    "batch_digest",
    "signature",
)
STATUSES = ("active", "retired", "cancelled", "transferred")
GRACE_SECONDS = 120  # a registry operation this recent may still be on its way into the bridge
TRANSACTIONS_PAGE = 500  # the registry's largest page
ENTRIES_PAGE = 1000  # account.list_entries_after's largest page
FIGURES_PAGE = 500  # account.account_figures' largest call
BATCHES_PER_READ = 20  # batch documents hold their leaves: a few per `$in`
LISTED = 100  # differences listed per check (all are counted)
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


class ReconciliationFailed(RuntimeError):
    """A run could not read everything (registry or account unavailable): nothing is reported."""


@dataclass
class Report:
    participant: str
    started_at: str = field(default_factory=utc_now_iso)
    differences: dict = field(default_factory=lambda: {check: [] for check in CHECKS})
    in_flight: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    cost: dict = field(default_factory=lambda: {"bridge_reads": 0, "registry_calls": 0, "account_calls": 0})

    def add(self, check: str, subject: str, what: str, **details) -> None:
        self.differences[check].append({"check": check, "subject": subject, "what": what, **details})

    @property
    def counts(self) -> dict:
        return {check: len(found) for check, found in self.differences.items()}

    @property
    def ok(self) -> bool:
        return not any(self.differences.values())

    def as_dict(self, seconds: float) -> dict:
        return {
            "ok": self.ok,
            "participant": self.participant,
            "started_at": self.started_at,
            "seconds": round(seconds, 3),
            "counts": self.counts,
            "differences": [d for check in CHECKS for d in self.differences[check][:LISTED]],
            "in_flight": self.in_flight[:LISTED],
            "figures": self.figures,
            "cost": self.cost,
        }


def _missing_account(error: RemoteError) -> bool:
    return getattr(error, "exc_type", "") == "LookupError"


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


class Reconciler:
    def __init__(
        self, repo, registry, account, participant: str, pool_owners=POOL_OWNERS, grace: float = GRACE_SECONDS
    ):
        self.grace = grace
        self.store = repo.db  # read through a fresh Repository per run: counted, and never written
        self.repo = None
        self.registry, self.account = registry, account
        self.participant, self.pool_owners = participant, tuple(pool_owners)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        """One reconciliation -> the report (`ok`, `counts` per check, `differences`, figures,
        cost). Raises ReconciliationFailed when the registry or the account could not be read."""
        started = time.monotonic()
        report = Report(self.participant)
        self.repo = Repository(_Counted(self.store, report.cost))
        bridge = self._bridge(report)
        stage = "the registry"
        try:
            registry = self._registry(report)
            self._batches(report, bridge, registry)
            self._operations(report, bridge, registry)
            self._holdings(report, bridge, registry)
            self._groups(report, bridge, registry)
            self._reductions(report, bridge)
            stage = "the account"
            self._invariant(report, bridge)
        except Exception as error:  # Unknown, RemoteError, RpcTimeout, a broken connection
            raise ReconciliationFailed(f"{stage} could not be read: {error!r}") from error
        return report.as_dict(time.monotonic() - started)

    # -- the bridge's records ----------------------------------------------------------------
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
        for start in range(0, len(ids), BATCHES_PER_READ):
            part = ids[start : start + BATCHES_PER_READ]
            found = repo.batches_of(part)
            states = repo.transitions_of(part)
            page = []  # (leaf, batch id, issued): checked against the reduction's documents now
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
            self._leaves(report, page)
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
        }

    # -- the registry's history and holdings ---------------------------------------------------
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

    # -- checks ------------------------------------------------------------------------------
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
                "units": int(issued["units"]),
                "serial": issued["serial"],
                "start": int(issued["start"] or 0),
                "end": int(issued["end"] or 0),
                "carried_out_grams": int(issued["carried_out_grams"]),
                "merkle_root": doc["merkle_root"],
                "consent_root": doc["consent_root"],
                "quantity_grams": doc["quantity_grams"],
                "carried_in_grams": doc["carried_in_grams"],
                "carried_from": doc["carried_from"],
                "batch_digest": sm3_hex(canonical_bytes(doc)),
                "signature": (bridge["records"].get("issue:" + batch_id) or {}).get("signature", "(none stored)"),
            }
            registry_side = {
                "units": int(record["units"]),
                "serial": record["serial"],
                "start": int(record["start"] or 0),
                "end": int(record["end"] or 0),
                "carried_out_grams": int(record["carried_out_grams"]),
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

    def _groups(self, report: Report, bridge: dict, registry: dict) -> None:
        batches = bridge["batches"]
        ours_by_group: dict[str, list[str]] = {}
        for group in bridge["groups"]:
            ours_by_group[group] = [
                s["batch_id"] for s in bridge["slots"][group] if "issued" in batches[s["batch_id"]]["states"]
            ]
        keys = set(ours_by_group) | {
            g for g, rs in registry["by_group"].items() if any(r["to_holder"] == self.participant for r in rs)
        }
        summary = {}
        for group in sorted(keys):
            chain = sorted(registry["by_group"].get(group, []), key=lambda r: r["position"])
            self._registry_chain(report, group, chain)
            ours = [
                r for r in chain if r["to_holder"] == self.participant and r["batch_id"] not in registry["in_flight"]
            ]
            others = sorted({r["to_holder"] for r in chain} - {self.participant})
            if others:
                report.add("group_units", group, "the group's chain holds other participants' batches", others=others)
            issued = ours_by_group.get(group, [])
            grams = sum(batches[b]["doc"]["quantity_grams"] for b in issued)
            units, carried = bf.tonnes(0, grams)
            registry_units = sum(r["units"] for r in ours)
            registry_carry = ours[-1]["carried_out_grams"] if ours else 0
            if (registry_units, registry_carry) != (units, carried):
                report.add(
                    "group_units",
                    group,
                    "the bank's units in the group are not floor(grams of its issued batches / 1e6)",
                    grams=grams,
                    expected_units=units,
                    expected_carried=carried,
                    registry_units=registry_units,
                    registry_carried=registry_carry,
                )
            self._bridge_chain(report, group, issued, batches)
            summary[group] = {
                "batches": len(issued),
                "grams": grams,
                "units": registry_units,
                "carried": registry_carry,
            }
        report.figures["by_group"] = summary

    @staticmethod
    def _registry_chain(report: Report, group: str, chain: list[dict]) -> None:
        positions = [r["position"] for r in chain]
        if positions != list(range(1, len(chain) + 1)):
            report.add(
                "group_units", group, "the registry's issue records are not positions 1..n", positions=positions[:20]
            )
        previous, next_serial = None, 1
        for record in chain:
            carried_from, carried_in = (previous["batch_id"], previous["carried_out_grams"]) if previous else ("", 0)
            if (record["carried_from"], record["carried_in_grams"]) != (carried_from, carried_in):
                report.add(
                    "group_units",
                    record["batch_id"],
                    "does not carry the previous issue's remainder",
                    stated=[record["carried_from"], record["carried_in_grams"]],
                    expected=[carried_from, carried_in],
                )
            units, out = bf.tonnes(record["carried_in_grams"], record["quantity_grams"])
            if (record["units"], record["carried_out_grams"]) != (units, out):
                report.add(
                    "group_units", record["batch_id"], "units or remainder are not floor((carried in + grams) / 1e6)"
                )
            if record["units"]:
                if (record["start"], record["end"]) != (next_serial, next_serial + record["units"] - 1):
                    report.add(
                        "group_units",
                        record["batch_id"],
                        "serial block is not contiguous with the group's previous block (gap or overlap)",
                        block=[record["start"], record["end"]],
                        expected_start=next_serial,
                    )
                next_serial = (record["end"] or next_serial) + 1
            elif record["start"] is not None:
                report.add("group_units", record["batch_id"], "a batch of 0 units holds a serial block")
            previous = record

    @staticmethod
    def _bridge_chain(report: Report, group: str, issued: list[str], batches: dict) -> None:
        previous = None
        for batch_id in issued:
            doc = batches[batch_id]["doc"]
            carried_from, carried_in = (
                (previous, int(batches[previous]["states"]["issued"]["carried_out_grams"])) if previous else ("", 0)
            )
            if (doc["carried_from"], doc["carried_in_grams"]) != (carried_from, carried_in):
                report.add(
                    "group_units",
                    batch_id,
                    "the bridge's issued batch does not carry its predecessor's remainder",
                    stated=[doc["carried_from"], doc["carried_in_grams"]],
                    expected=[carried_from, carried_in],
                )
            previous = batch_id

    def _leaves(self, report: Report, page: list[tuple[dict, str, bool, int | None]]) -> None:
        """One page of batches' leaves against their reductions' documents: the queued
        candidate (same leaf, at the grams its slot's correction states if any), the `issued`
        index (names the batch), no write-off if issued."""
        ids = sorted({leaf["reduction_id"] for leaf, *_ in page})
        issued_ids = sorted({leaf["reduction_id"] for leaf, _, issued, _ in page if issued})
        candidates = self.repo.docs_of("candidates", ids)
        issued_docs = self.repo.docs_of("issued", issued_ids)
        write_offs = self.repo.docs_of("write_offs", issued_ids, {"_id": 1})
        for leaf, batch_id, issued, lowered in page:
            rid = leaf["reduction_id"]
            candidate = candidates.get(rid)
            if candidate is None:
                report.add("reductions", rid, "batched without a candidate (never queued by intake)", batch_id=batch_id)
            elif lowered is not None and not 0 < lowered < candidate["leaf"]["grams"]:
                report.add(
                    "reductions", rid, "its slot's correction does not lower the queued grams", batch_id=batch_id
                )
            elif {**candidate["leaf"], **({"grams": lowered} if lowered else {})} != leaf:
                report.add("reductions", rid, "the batch's leaf differs from the queued candidate's", batch_id=batch_id)
            if not issued:
                continue
            doc = issued_docs.get(rid)
            if doc is None or doc["batch_id"] != batch_id:
                report.add(
                    "reductions",
                    rid,
                    "its `issued` document does not name the batch that issued it",
                    batch_id=batch_id,
                    issued_doc=doc and doc["batch_id"],
                )
            if rid in write_offs:
                report.add("reductions", rid, "written off, yet in an issued batch", batch_id=batch_id)

    def _reductions(self, report: Report, bridge: dict) -> None:
        batches, issued_count = bridge["batches"], 0
        for rid, held in bridge["holders"].items():
            in_issued = [b for b in held if "issued" in batches[b]["states"]]
            issued_count += bool(in_issued)
            if len(in_issued) > 1:
                report.add("reductions", rid, "issued in more than one batch", batches=in_issued)
            if len(held) > 1 and not _released_then_retried(held, batches):
                report.add("reductions", rid, "in more than one batch", batches=held)
        report.figures.update(reductions_batched=len(bridge["holders"]), reductions_issued=issued_count)

    # -- the ledger ----------------------------------------------------------------------------
    def _invariant(self, report: Report, bridge: dict) -> None:
        registered = bridge["registered"]
        redeemed: dict[str, int] = {}
        corrections: dict[str, dict] = {}  # reduction id -> the pool's correction_write_off
        transfers = 0
        for owner in self.pool_owners:
            after = 0
            while True:
                try:
                    page = self.account.list_entries_after(
                        owner_pid=owner, after_seq=after, limit=ENTRIES_PAGE, types=POOL_TYPES
                    )
                except RemoteError as error:
                    if _missing_account(error):  # a pool chain is opened by its first redemption
                        break
                    raise
                report.cost["account_calls"] += 1
                for entry in page["entries"]:
                    if entry["type"] == "correction_write_off":
                        corrections[entry.get("reduction_id", "")] = entry
                        continue
                    source = entry.get("source_account_id", "")
                    redeemed[source] = redeemed.get(source, 0) + int(entry["grams"])
                    transfers += 1
                if int(page["last_seq"]) <= after:
                    break
                after = int(page["last_seq"])
        self._corrections(report, bridge, corrections)
        owner_of, credited = {}, {}
        ids = sorted(redeemed)
        for start in range(0, len(ids), FIGURES_PAGE):  # account.reconciliation_reads
            figures = self.account.account_figures(account_ids=ids[start : start + FIGURES_PAGE])
            report.cost["account_calls"] += 1
            for account_id, row in figures.items():
                owner_of[row["owner_pid"]] = account_id
                credited[account_id] = int(row["credited_grams"])
        for account_id in ids:
            if account_id not in credited:
                report.add(
                    "invariant",
                    account_id,
                    "pool transfers from an account the ledger does not know",
                    redeemed=redeemed[account_id],
                )
        for owner in sorted(set(registered) - set(owner_of)):
            try:
                totals = self.account.get_totals(owner_pid=owner)
                credits = int(totals["credited_grams"])
            except RemoteError as error:
                if not _missing_account(error):
                    raise
                credits = 0
            report.cost["account_calls"] += 1
            report.add(
                "invariant",
                owner,
                "registered grams of an owner who redeemed nothing to the pool",
                registered=registered[owner],
                redeemed=0,
                credited=credits,
            )
        for owner, account_id in sorted(owner_of.items()):
            row = {
                "registered": registered.get(owner, 0),
                "redeemed": redeemed[account_id],
                "credited": credited[account_id],
            }
            if not row["registered"] <= row["redeemed"] <= row["credited"]:
                report.add("invariant", account_id, "not registered <= redeemed to the pool <= credited", **row)
        totals = self.account.get_totals()
        report.cost["account_calls"] += 1
        total = {
            "registered": sum(registered.values()),
            "redeemed": sum(redeemed.values()),
            "credited": int(totals["credited_grams"]),
        }
        if not total["registered"] <= total["redeemed"] <= total["credited"]:
            report.add("invariant", "total", "not registered <= redeemed to the pool <= credited", **total)
        report.figures.update(
            accounts=len(owner_of),
            pool_transfers=transfers,
            registered_grams=total["registered"],
            redeemed_to_pool_grams=total["redeemed"],
            credited_grams=total["credited"],
            pool_grams=int(totals.get("pool_grams", 0)),
        )

    @staticmethod
    def _corrections(report: Report, bridge: dict, write_offs: dict[str, dict]) -> None:
        """Every gram a correction took off a redeemed reduction is counted once: a batched
        reduction the pool wrote a correction off for is in its batches at exactly the corrected
        grams, and every correction a formed batch's slot applied has its write-off."""
        leaf_grams, batches = bridge["leaf_grams"], bridge["batches"]
        for rid, entry in sorted(write_offs.items()):
            if rid in leaf_grams and leaf_grams[rid] != int(entry.get("corrected_grams", -1)):
                report.add(
                    "corrections",
                    rid,
                    "batched at other grams than the pool's correction write-off leaves",
                    batched=leaf_grams[rid],
                    corrected=entry.get("corrected_grams"),
                    written_off=-int(entry["grams"]),
                )
        for batch_id, batch in sorted(batches.items()):
            if "formed" not in batch["states"]:
                continue  # the write-offs come just before `formed`
            for c in batch["slot"].get("corrections", []):
                if c["reduction_id"] not in write_offs:
                    report.add(
                        "corrections",
                        c["reduction_id"],
                        "the batch carries it at corrected grams the pool has not written off",
                        batch_id=batch_id,
                        corrected=c["grams"],
                    )
        report.figures.update(
            correction_write_offs=len(write_offs),
            correction_written_off_grams=-sum(int(e["grams"]) for e in write_offs.values()),
        )


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


def _released_then_retried(held: list[str], batches: dict) -> bool:
    """Two batches: attempt 1, rejected and released, and the attempt 2 formed from it (R2)."""
    if len(held) != 2:
        return False
    first, second = sorted(held, key=lambda b: batches[b]["slot"]["attempt"])
    return (
        batches[first]["slot"]["attempt"] == 1
        and "released" in batches[first]["states"]
        and batches[second]["slot"]["attempt"] == 2
        and batches[second]["slot"]["retry_of"] == first
    )


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


def publish(result: dict) -> None:
    """The report as gauges and one structured log line (warning when anything differs)."""
    for check, count in result["counts"].items():
        DIFFERENCES.labels(check).set(count)
    LAST_RUN.set(time.time())
    extra = {
        "ok": result["ok"],
        "counts": result["counts"],
        "in_flight": len(result["in_flight"]),
        "seconds": result["seconds"],
        "figures": {k: v for k, v in result["figures"].items() if not isinstance(v, dict)},
        "cost": result["cost"],
    }
    if result["ok"]:
        log.info("exchange reconciliation: registry, bridge and ledger agree", extra=extra)
    else:
        extra["differences"] = result["differences"][:20]
        log.warning("exchange reconciliation found differences (reported, not fixed)", extra=extra)


def for_bridge(bridge, account) -> Reconciler:
    """The reconciler over a Bridge's repository, registry client and participant."""
    return Reconciler(bridge.repo, bridge.units.registry, account, bridge.units.participant)
