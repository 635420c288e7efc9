"""The batch state machine, one group at a time (ADR 0005 §4-6).

  formed -> submitted -> verified -> issued                       (units, carried remainder)
                      \\-> rejected -> released  (attempt 1: the same reductions form attempt 2)
                                   \\-> written_off (attempt 2: never batched again)

A group has at most one batch in flight: its head slot (`<group>/<n>`). The next slot is formed
only once the head is settled — issued, released or written off, with every event published —
because the next batch states the head's outcome (carried_from / carried_in_grams, or the same
reductions again). Every step is one insert with a deterministic `_id`, and every step can be
re-run by any instance after a crash:

  slot inserted      -> batch document (rebuilt from the slot's queue range and the corrections
                        the slot recorded, if missing)
  batch stored       -> the account writes off what the slot's corrections lowered, then `formed`
  `formed`           -> `submitted` inserted *before* the batch is sent: a batch without it was
                        never sent; one with it and no outcome is looked up (`status`) before it
                        is sent again, whether the process crashed or the answer was lost
  registry outcome   -> issue record, `issued` reductions, `verified`, `issued`; or `rejected`
  `rejected`         -> `releases` + `released`, or `write_offs` + `written_off`
  each transition    -> its event(s), then a `published` marker
"""

import logging

from carbon_common.clock import utc_now_iso
from carbon_common.events import MAX_LINKS

from exchange_bridge import batch_format as bf
from exchange_bridge import metrics, rules
from exchange_bridge.announce import lifecycle_events
from exchange_bridge.registry_client import Rejected, Unknown

log = logging.getLogger(__name__)
MAX_STEPS = 100  # per group per pass
SLICES_PER_READ = 200
PAGE = 500  # reductions per account.corrections / write_off_corrections call (its limit)
REGISTRY_DONE = ("issued", "transferred", "retired", "cancelled")


def lowered(account, held: dict[str, tuple[str, int]]) -> dict[str, int]:
    """Of `held` (reduction id -> (its pool transfer's entry id, grams held)), those a correction
    lowered below the grams held (ADR 0005 §2) -> reduction id -> grams the ledger keeps now.
    RPC account.corrections, PAGE reductions a call."""
    ids, out = list(held), {}
    for start in range(0, len(ids), PAGE):
        items = [{"reduction_id": rid, "transfer_entry_id": held[rid][0]} for rid in ids[start : start + PAGE]]
        for row in account.corrections(items):
            if int(row["grams"]) < held[row["reduction_id"]][1]:
                out[row["reduction_id"]] = int(row["grams"])
    return out


class Lifecycle:
    def __init__(self, account, repo, registry, signer, announcer, min_grams: int, max_leaves: int):
        self.account, self.repo, self.registry, self.signer, self.announcer = account, repo, registry, signer, announcer
        self.min_grams, self.max_leaves = int(min_grams), int(max_leaves)
        self.settled = repo.settled_slots  # remembered per process (the repository's lifetime)

    def run(self, tails: dict[str, tuple[int, int]]) -> dict:
        result = {"formed": [], "registered": [], "rejected": [], "released": [], "written_off": [], "waiting": []}
        result["errors"] = 0
        groups = sorted(tails)
        heads = self.repo.slot_heads(groups) if groups else {}
        for group in groups:
            try:
                self.advance(group, *heads[group], tails[group], result)
            except Exception:  # one group's failure does not stop the others; the next pass resumes it
                log.exception("exchange group not advanced", extra={"group": group})
                result["errors"] += 1
        return result

    def advance(self, group: str, n: int, slot: dict | None, tail: tuple[int, int], result: dict) -> None:
        for _ in range(MAX_STEPS):
            states = {}
            if slot is not None:
                outcome, states = self.drive(slot, result)
                if outcome == "wait":
                    return
                if outcome == "progress":
                    continue
            formed = self.form_next(group, n, slot, states, tail, result)
            if formed is None:
                return
            n, slot = n + 1, formed

    # -- one step of the head slot -------------------------------------------------------
    def drive(self, slot: dict, result: dict) -> tuple[str, dict]:
        """-> ("settled" | "progress" | "wait", the batch's states)."""
        known = self.settled.get(slot["_id"])
        if known is not None:
            return "settled", known
        batch = self.repo.batch(slot["batch_id"]) or self.store_batch(slot)
        states = self.repo.transitions_of([slot["batch_id"]])[slot["batch_id"]]
        if "formed" not in states:
            self.write_off_corrections(slot)
            states["formed"], _ = self.transition(batch, slot, "formed", {"at": slot["created_at"]})
        self.publish_missing(batch, slot, states)
        if any(state in states for state in rules.TERMINAL):
            self.settled[slot["_id"]] = states
            return "settled", states
        if "rejected" in states:
            self.settle_rejection(batch, slot, states, result)
            return "progress", states
        return self.send(batch, slot, states, result), states

    def transition(self, batch: dict, slot: dict, state: str, fields: dict) -> tuple[dict, bool]:
        """Insert the batch's transition to `state` (first writer wins) and, when this call
        inserted it, publish its events -> (stored transition, inserted now)."""
        stored, created = self.repo.add_transition(batch["_id"], state, fields)
        if created:
            metrics.TRANSITIONS.labels(state).inc()
            log.info("exchange batch " + state, extra={"batch_id": batch["_id"], "state": state})
            self.announcer.publish(batch, lifecycle_events(batch, state, stored, slot))
        return stored, created

    def publish_missing(self, batch: dict, slot: dict, states: dict) -> None:
        events = [
            e
            for state in rules.LIFECYCLE
            if state in states
            for e in lifecycle_events(batch, state, states[state], slot)
        ]
        done = self.repo.published_of([event_id for _, event_id, _ in events])
        self.announcer.publish(batch, events, skip=done)

    # -- submission ----------------------------------------------------------------------
    def send(self, batch: dict, slot: dict, states: dict, result: dict) -> str:
        batch_id = batch["_id"]
        if "submitted" in states:  # sent before and no outcome stored: look before sending again
            try:
                record = self.registry.status(batch_id)
            except Unknown:
                return self._unknown(batch_id, result)
            except Rejected as refusal:
                return self.refused(batch, slot, refusal, result)
            if record is not None:
                return self.apply(batch, slot, record, result)
        else:
            self.transition(batch, slot, "submitted", {"at": utc_now_iso()})
        try:
            record = self.registry.submit(submission(batch))
        except Rejected as refusal:
            return self.refused(batch, slot, refusal, result)
        except Unknown:
            return self._unknown(batch_id, result)
        return self.apply(batch, slot, record, result)

    @staticmethod
    def _unknown(batch_id: str, result: dict) -> str:
        metrics.UNKNOWN.inc()
        log.warning("exchange batch outcome unknown: looked up on the next pass", extra={"batch_id": batch_id})
        result["waiting"].append(batch_id)
        return "wait"

    def refused(self, batch: dict, slot: dict, refusal: Rejected, result: dict) -> str:
        batch_id = batch["_id"]
        if refusal.code in rules.CONTENT_REFUSALS:
            metrics.REFUSALS.labels(refusal.code, "rejected").inc()
            fields = {"at": utc_now_iso(), "code": refusal.code, "reason": refusal.reason}
            if self.transition(batch, slot, "rejected", fields)[1]:
                result["rejected"].append(batch_id)
            return "progress"
        metrics.REFUSALS.labels(refusal.code, "held").inc()
        self.repo.add_refusal(batch_id, refusal.code, refusal.reason, utc_now_iso())
        log.error(
            "exchange batch held: the registry refused it for a reason that is not its content; sent again next pass",
            extra={"batch_id": batch_id, "code": refusal.code, "reason": refusal.reason},
        )
        result["waiting"].append(batch_id)
        return "wait"

    def apply(self, batch: dict, slot: dict, record: dict, result: dict) -> str:
        """Store the registry's outcome for the batch (any instance may do it again: same ids)."""
        batch_id = batch["_id"]
        status = record.get("status")
        history = {h["state"]: h for h in record.get("history", []) if "op_id" not in h}
        if status == "rejected":
            at = history.get("rejected", {}).get("at") or utc_now_iso()
            return self._rejected(batch, slot, at, record.get("reason", ""), result)
        if status not in REGISTRY_DONE:
            result["waiting"].append(batch_id)
            return "wait"
        issue = self.repo.add_record(record["issuance"])
        self.repo.add_issued(
            [
                {"_id": leaf["reduction_id"], "batch_id": batch_id, "owner_pid": leaf["owner_pid"]}
                for leaf in batch["leaves"]
            ]
        )
        verified_at = history.get("verified", {}).get("at") or issue["at"]
        self.transition(batch, slot, "verified", {"at": verified_at})
        units, carried_out = bf.tonnes(batch["batch"]["carried_in_grams"], batch["batch"]["quantity_grams"])
        if (issue["units"], issue["carried_out_grams"]) != (units, carried_out):
            log.error(
                "registry issued other units than the batch format says",
                extra={"batch_id": batch_id, "units": issue["units"], "expected_units": units},
            )
        fields = {
            "at": issue["at"],
            "units": issue["units"],
            "serial": issue["serial"],
            "start": issue["start"] or 0,
            "end": issue["end"] or 0,
            "carried_out_grams": issue["carried_out_grams"],
            "record_id": issue["op_id"],
        }
        stored, created = self.repo.add_transition(batch_id, "issued", fields)
        if created:
            metrics.TRANSITIONS.labels("issued").inc()
            metrics.ISSUED_UNITS.inc(stored["units"])
            metrics.ISSUED_GRAMS.inc(batch["batch"]["quantity_grams"])
            log.info(
                "exchange batch issued",
                extra={"batch_id": batch_id, "units": stored["units"], "serial": stored["serial"]},
            )
            self.announcer.publish(batch, lifecycle_events(batch, "issued", stored, slot))
            result["registered"].append(batch_id)
        return "progress"

    def _rejected(self, batch: dict, slot: dict, at: str, reason: str, result: dict) -> str:
        metrics.REFUSALS.labels("rejected", "rejected").inc()
        if self.transition(batch, slot, "rejected", {"at": at, "code": "rejected", "reason": reason})[1]:
            result["rejected"].append(batch["_id"])
        return "progress"

    # -- after a rejection (rule R2) -----------------------------------------------------
    def settle_rejection(self, batch: dict, slot: dict, states: dict, result: dict) -> None:
        rejected, now = states["rejected"], utc_now_iso()
        leaves = batch["leaves"]
        ids = [leaf["reduction_id"] for leaf in leaves]
        if slot["attempt"] < rules.MAX_ATTEMPTS:
            b = batch["batch"]
            next_id = bf.batch_id(b["methodology_id"], b["methodology_version"], b["vintage"], ids, slot["attempt"] + 1)
            self.repo.add_releases(
                [{"_id": rid, "batch_id": batch["_id"], "code": rejected["code"], "at": now} for rid in ids]
            )
            fields = {"at": now, "code": rejected["code"], "next_batch_id": next_id, "count": len(ids)}
            if self.transition(batch, slot, "released", fields)[1]:
                result["released"].append(batch["_id"])
            return
        docs = [
            {
                "_id": leaf["reduction_id"],
                "grams": leaf["grams"],
                "owner_pid": leaf["owner_pid"],
                "group": slot["group"],
                "batch_id": batch["_id"],
                "first_batch_id": slot.get("retry_of", ""),
                "code": rejected["code"],
                "reason": f"rejected in {slot['attempt']} batches",
                "at": now,
            }
            for leaf in leaves
        ]
        for stored, created in self.repo.add_write_offs(docs):
            if created:
                metrics.WRITTEN_OFF_GRAMS.inc(stored["grams"])
        fields = {
            "at": now,
            "code": rejected["code"],
            "grams": sum(leaf["grams"] for leaf in leaves),
            "count": len(ids),
            "first_batch_id": slot.get("retry_of", ""),
        }
        if self.transition(batch, slot, "written_off", fields)[1]:
            log.error(
                "exchange batch written off: its reductions were rejected twice",
                extra={"batch_id": batch["_id"], "grams": fields["grams"], "code": rejected["code"]},
            )
            result["written_off"].append(batch["_id"])

    # -- forming -------------------------------------------------------------------------
    def form_next(self, group: str, n: int, slot: dict | None, states: dict, tail, result: dict) -> dict | None:
        kind, span = rules.next_range(slot, states)
        carried_from, carried_in = rules.carry_after(slot, states)
        tail_k, tail_grams = tail
        if kind == "retry":
            start, end = span["from"], span["to"]
            rows = self.rows_between(group, start, end)
            attempt, retry_of, cum_to = slot["attempt"] + 1, slot["batch_id"], slot["cum_to"]
        else:
            start = span["from"]
            if not rules.due(tail_grams - span["cum_from"], carried_in, self.min_grams):
                return None
            rows, end = self.rows_from(group, start, tail_k)
            attempt, retry_of = 1, ""
            cum_to = span["cum_from"] + sum(grams for _, grams in rows)
        queued = list(dict.fromkeys(rid for rid, _ in rows))  # a reduction queued twice is batched once
        if not queued:
            return None
        candidates = self.candidates(queued)
        corrections = self.corrections(queued, candidates)
        ids, leaves = rules.corrected_leaves(queued, candidates, corrections)
        if not ids:  # every one corrected to nothing: they wait for the group's next reduction
            return None
        first = leaves[0]
        doc = {
            "_id": rules.slot_id(group, n + 1),
            "group": group,
            "n": n + 1,
            "batch_id": bf.batch_id(
                first["methodology_id"], first["methodology_version"], first["vintage"], ids, attempt
            ),
            "attempt": attempt,
            "retry_of": retry_of,
            "from": list(start),
            "to": list(end),
            "cum_from": span["cum_from"],
            "cum_to": cum_to,
            "carried_in_grams": carried_in,
            "carried_from": carried_from,
            "created_at": utc_now_iso(),
            "record_count": len(ids),
            "quantity_grams": sum(leaf["grams"] for leaf in leaves),
            # corrections known when the slot was decided: a rebuild uses these, never newer ones
            "corrections": corrections,
        }
        stored, created = self.repo.add_slot(doc)
        if stored["batch_id"] == doc["batch_id"]:
            self.store_batch(stored, queued, candidates)
        else:  # another instance formed this slot from other reductions first
            self.store_batch(stored)
        if created:
            result["formed"].append(stored["batch_id"])
        return stored

    def rows_from(self, group: str, start, tail_k: int):
        """Up to max_leaves queued reductions from `start`, reading slices a few at a time."""
        rows, cursor = [], tuple(start)
        k = cursor[0]
        while k <= tail_k and len(rows) < self.max_leaves:
            last = min(k + SLICES_PER_READ - 1, tail_k)
            more, cursor = rules.take(self.repo.slices_of(group, k, last), cursor, self.max_leaves - len(rows))
            rows.extend(more)
            k = last + 1
        return rows, cursor

    def rows_between(self, group: str, start, end) -> list[tuple[str, int]]:
        return rules.between(self.repo.slices_of(group, start[0], end[0]), start, end)

    def corrections(self, ids: list[str], candidates: dict) -> list[dict]:
        """The queued reductions a correction lowered below their queued grams since intake
        (ADR 0005 §2), as the ledger says now: [{reduction_id, grams, transfer_entry_id}]."""
        held = {rid: (candidates[rid]["transfer_entry_id"], candidates[rid]["leaf"]["grams"]) for rid in ids}
        kept = lowered(self.account, held)
        return [
            {"reduction_id": rid, "grams": kept[rid], "transfer_entry_id": held[rid][0]} for rid in ids if rid in kept
        ]

    def write_off_corrections(self, slot: dict) -> None:
        """The pool's `correction_write_off` of each reduction the slot's batch carries at lower
        grams than were transferred (the account writes each once, so a re-run writes nothing)."""
        items = [{k: c[k] for k in ("reduction_id", "transfer_entry_id")} for c in slot.get("corrections", [])]
        for start in range(0, len(items), PAGE):
            self.account.write_off_corrections(items[start : start + PAGE])

    def candidates(self, ids: list[str]) -> dict[str, dict]:
        found = self.repo.candidates_of(ids)
        missing = [rid for rid in ids if rid not in found]
        if missing:
            raise RuntimeError(f"{len(missing)} queued reductions have no candidate, e.g. {missing[0]}")
        return found

    def store_batch(self, slot: dict, ids: list[str] | None = None, candidates: dict | None = None) -> dict:
        """The slot's signed batch (built from its queue range when not given its reductions)."""
        if ids is None:
            ids = list(dict.fromkeys(rid for rid, _ in self.rows_between(slot["group"], slot["from"], slot["to"])))
            candidates = self.candidates(ids)
        ids, leaves = rules.corrected_leaves(ids, candidates, slot.get("corrections", []))
        consent_leaves = [bf.consent_leaf_hash(rid, candidates[rid]["consent_id"]) for rid in ids]
        document = bf.batch_document(
            leaves, consent_leaves, slot["carried_in_grams"], slot["carried_from"], slot["created_at"], slot["attempt"]
        )
        if document["batch_id"] != slot["batch_id"]:
            raise RuntimeError(
                f"slot {slot['_id']} names batch {slot['batch_id']}, its reductions make {document['batch_id']}"
            )
        traces = list(dict.fromkeys(candidates[rid]["traceparent"] for rid in ids if candidates[rid]["traceparent"]))
        return self.repo.add_batch(
            {
                "_id": slot["batch_id"],
                "slot": slot["_id"],
                "group": slot["group"],
                "batch": document,
                "signature": self.signer.sign(document),
                "key_id": self.signer.key_id,
                "public_key": self.signer.public_hex,
                "leaves": leaves,
                "consent_leaves": consent_leaves,
                "transfer_entry_ids": sorted({candidates[rid]["transfer_entry_id"] for rid in ids}),
                "traceparents": traces[:MAX_LINKS],
            }
        )


def submission(batch: dict) -> dict:
    """The POST /v1/batches body of a stored batch: exactly its leaves and consent leaves."""
    return {
        "batch": batch["batch"],
        "leaves": batch["leaves"],
        "consent_leaves": batch["consent_leaves"],
        "signature": batch["signature"],
        "key_id": batch["key_id"],
    }
