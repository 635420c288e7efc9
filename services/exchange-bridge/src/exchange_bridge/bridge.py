"""One bridge pass, and the bridge's calls on issued units.

A pass (timer every BRIDGE_INTERVAL_SECONDS, or RPC `run_batch`):
  1. intake     new pool transfers -> their reductions queued per group (exchange_bridge.intake)
  2. lifecycle  per group: drive the head batch through the registry's lifecycle, and form the
                group's next batch when its queued grams and carried remainder reach
                BRIDGE_MIN_GRAMS (exchange_bridge.lifecycle)
Every step is an insert with a deterministic `_id`, so two bridge instances may run passes at
the same time and a pass that dies anywhere is finished by the next one.
"""

import logging

from carbon_common.accounts import POOL_OWNERS
from carbon_common.clock import utc_now_iso

from exchange_bridge import certificate, rules
from exchange_bridge.announce import Announcer
from exchange_bridge.errors import InvalidRequest
from exchange_bridge.intake import Intake, marks_of, tails_of
from exchange_bridge.lifecycle import Lifecycle
from exchange_bridge.units import Units

log = logging.getLogger(__name__)
DEFAULT_MIN_GRAMS = 1_000_000  # one tonne
DEFAULT_MAX_LEAVES = 10_000  # half the registry's REGISTRY_MAX_LEAVES


class Bridge:
    def __init__(
        self,
        account,
        repo,
        registry,
        signer,
        dispatch,
        participant: str = "",
        min_grams: int = DEFAULT_MIN_GRAMS,
        max_leaves: int = DEFAULT_MAX_LEAVES,
        pool_owners=POOL_OWNERS,
    ):
        self.repo = repo
        self.announcer = Announcer(dispatch, repo)
        self.intake = Intake(account, repo, pool_owners)
        self.lifecycle = Lifecycle(account, repo, registry, signer, self.announcer, min_grams, max_leaves)
        self.units = Units(repo, registry, self.announcer, participant)

    def run(self) -> dict:
        """One pass -> {registered: batches issued by this pass, failed: batches left waiting on
        an unknown outcome or a holding refusal (+ groups that failed), formed, rejected,
        released, written_off, intake: {links, reductions}}."""
        try:
            head, added = self.intake.run()
        except Exception:  # the account is unavailable: batches in flight still advance
            log.exception("bridge intake failed: resumed by the next pass")
            head, added = self.repo.intake_head()[1], {"links": 0, "reductions": 0, "failed": True}
        result = self.lifecycle.run(tails_of(head))
        return {
            "registered": result["registered"],
            "failed": len(result["waiting"]) + result["errors"] + int(added.get("failed", False)),
            "formed": result["formed"],
            "rejected": result["rejected"],
            "released": result["released"],
            "written_off": result["written_off"],
            "waiting": result["waiting"],
            "intake": added,
        }

    # -- reads ---------------------------------------------------------------------------
    def overview(self) -> dict:
        """Where the bridge stands: the intake watermark and, per group, the queue and the head
        batch (what `python -m exchange_bridge.cli.status` prints)."""
        n, head = self.repo.intake_head()
        tails = tails_of(head)
        heads = self.repo.slot_heads(sorted(tails)) if tails else {}
        batch_ids = [slot["batch_id"] for _, slot in heads.values() if slot]
        states = self.repo.transitions_of(batch_ids) if batch_ids else {}
        groups = []
        for group in sorted(tails):
            slices, queued = tails[group]
            count, slot = heads[group]
            slot_states = states.get(slot["batch_id"], {}) if slot else {}
            _, span = rules.next_range(slot, slot_states)
            carried_from, carried_in = rules.carry_after(slot, slot_states)
            latest = next((s for s in reversed(rules.LIFECYCLE) if s in slot_states), "") if slot else ""
            groups.append(
                {
                    "group": group,
                    "queued_grams": queued,
                    "pending_grams": queued - span["cum_from"],
                    "carried_in_grams": carried_in,
                    "carried_from": carried_from,
                    "batches": count,
                    "head_batch_id": slot["batch_id"] if slot else "",
                    "head_attempt": slot["attempt"] if slot else 0,
                    "head_state": latest,
                }
            )
        return {"intake_links": n, "watermarks": marks_of(head), "groups": groups}

    def batch_status(self, batch_id: str) -> dict | None:
        batch = self.repo.batch(batch_id)
        if batch is None:
            return None
        states = self.repo.transitions_of([batch_id])[batch_id]
        operations = self.repo.unit_ops_of(batch_id)
        return {
            "batch_id": batch_id,
            "slot": batch["slot"],
            "batch": batch["batch"],
            "states": {s: {k: v for k, v in t.items() if k not in ("_id", "batch_id")} for s, t in states.items()},
            "state": next((s for s in reversed(rules.LIFECYCLE) if s in states), ""),
            "reduction_ids": sorted(leaf["reduction_id"] for leaf in batch["leaves"]),
            "operations": [op["op_id"] for op in operations],
        }

    def certificate_material(self, batch_id: str) -> dict | None:
        """What a certificate needs of one batch, as stored."""
        batch = self.repo.batch(batch_id)
        if batch is None:
            return None
        ops = [op["op_id"] for op in self.repo.unit_ops_of(batch_id)]
        records = self.repo.records_of(["issue:" + batch_id, *ops])
        return {
            "batch": batch["batch"],
            "bank_signature": batch["signature"],
            "leaves": batch["leaves"],
            "issuance": records.get("issue:" + batch_id),
            "retirements": [records[op] for op in ops if op in records and records[op]["type"] == "retire"],
        }

    def certificate(self, owner_pid: str, reduction_ids: list[str]) -> dict:
        """The owner's retirement certificate over the batches that issued these reductions."""
        if not isinstance(owner_pid, str) or not owner_pid:
            raise InvalidRequest("owner_pid is required")
        if not isinstance(reduction_ids, list) or not 0 < len(reduction_ids) <= 10_000:
            raise InvalidRequest("give 1-10000 reduction ids")
        issued = self.repo.issued_of([str(r) for r in reduction_ids])
        batch_ids = sorted({doc["batch_id"] for doc in issued.values() if doc["owner_pid"] == owner_pid})
        materials = [m for b in batch_ids if (m := self.certificate_material(b)) is not None]
        return certificate.build(owner_pid, materials, utc_now_iso())
