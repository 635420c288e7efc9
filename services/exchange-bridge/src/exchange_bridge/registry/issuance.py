"""POST /v1/batches: a verified batch issued as whole tonnes, its serials, exactly once.

Order of writes (each a unique insert; a crash between two is finished by re-sending the
same batch, which is why the bridge re-sends until it learns the outcome):
  1. the request nonce                         (Caller.commit)
  2. one `reductions` claim per leaf           (_id = reduction id, tagged with the batch id)
  3. the group's next `issuances` link         (_id = "group:n": the commitment point)
  4. the `batches` document, then `transitions`, the signed issue record, holdings, sequence.
A claim taken by another batch (2) or a link taken by another batch (3) refuses the whole
batch: the claims this call inserted are then deleted, filtered by this batch id — the one
compensating delete in the registry; nothing else of the batch was written yet.
An injected rejection stores the batch as rejected (1, then 4 only): it claims no reduction,
so they stay free for another batch (ADR 0005 R2).
"""

from carbon_common.canonical import canonical_bytes
from carbon_common.clock import utc_now_iso
from carbon_common.mongo import find_by_ids, insert_new, insert_or_get, insert_or_get_many, json_text
from exchange_bridge import batch_format as bf
from exchange_bridge.registry import signing, validation
from exchange_bridge.registry.blocks import ACTIVE, make_block
from exchange_bridge.registry.errors import ApiError

LIFECYCLE = ("submitted", "verified", "rejected", "issued")


class Issuance:
    def __init__(self, db, chains, records, ledger, participants, catalogue, max_leaves: int):
        self.db, self.chains, self.records, self.ledger = db, chains, records, ledger
        self.participants, self.catalogue, self.max_leaves = participants, catalogue, max_leaves

    def submit(self, caller, body, reject: bool = False) -> bool:
        """Submit one batch -> whether it was stored now (False: the same batch was already)."""
        sub = validation.parse(body, self.catalogue, self.max_leaves)
        stored = self.db.batches.find_one({"_id": sub.batch_id})
        if stored is not None:
            if stored["digest"] != sub.digest or stored["participant"] != caller.participant:
                raise ApiError("batch_conflict", f"another batch was submitted as {sub.batch_id}")
            self.finish(stored)
            return False
        public_key = self.participants.active_key(caller.participant, sub.key_id, missing="batch_key_not_owned")
        if not signing.verify(public_key, canonical_bytes(sub.batch), sub.signature):
            raise ApiError("batch_signature_invalid", "signature is not the SM2 signature of the canonical batch")
        link_n = self._link_position(sub)
        self._check_unclaimed(sub)
        received_at = utc_now_iso()
        caller.commit()
        if reject:
            doc = self._batch_doc(sub, caller.participant, None, received_at, rejected="injected")
            self.finish(insert_or_get(self.db.batches, doc)[0])
            return True
        inserted = self._claim(sub)
        link = self._link(sub, caller.participant, link_n, inserted)
        doc = self._batch_doc(sub, caller.participant, link["n"], received_at)
        stored, created = insert_or_get(self.db.batches, doc)
        self.finish(stored)
        return created

    def _link_position(self, sub) -> int:
        """n of the link this batch will take; carried_mismatch unless it follows the group's head."""
        n = self.chains.length("issuances", sub.group)
        head = self.chains.read("issuances", sub.group, n)
        if head is not None and head["batch_id"] == sub.batch_id:
            return n  # linked by an earlier attempt that did not finish
        expected_from, expected_in = (head["batch_id"], head["carried_out_grams"]) if head else ("", 0)
        if (sub.batch["carried_from"], sub.batch["carried_in_grams"]) == (expected_from, expected_in):
            return n + 1
        earlier = self.db.issuances.find_one({"batch_id": sub.batch_id})  # rare: a scan, only when refusing
        if earlier is not None:
            return earlier["n"]
        raise ApiError(
            "carried_mismatch",
            f"group {sub.group} continues from batch {expected_from or '(none)'} carrying {expected_in} g: "
            "carried_from and carried_in_grams must say so",
        )

    def _check_unclaimed(self, sub) -> None:
        claims = find_by_ids(self.db.reductions, [leaf["reduction_id"] for leaf in sub.leaves])
        taken = sorted(rid for rid, claim in claims.items() if claim["batch_id"] != sub.batch_id)
        if taken:
            raise ApiError("duplicate_reduction", f"{len(taken)} reductions are in another batch, e.g. {taken[0]}")

    def _claim(self, sub) -> list[str]:
        """Claim every leaf's reduction for this batch -> ids inserted by this call."""
        at = utc_now_iso()
        docs = [{"_id": leaf["reduction_id"], "batch_id": sub.batch_id, "claimed_at": at} for leaf in sub.leaves]
        taken = insert_new(self.db.reductions, docs)
        inserted = [docs[i]["_id"] for i in range(len(docs)) if i not in taken]
        if taken:
            claims = find_by_ids(self.db.reductions, [docs[i]["_id"] for i in taken])
            foreign = sorted(rid for rid, claim in claims.items() if claim["batch_id"] != sub.batch_id)
            if foreign:
                self._release(sub, inserted)
                raise ApiError(
                    "duplicate_reduction", f"{len(foreign)} reductions are in another batch, e.g. {foreign[0]}"
                )
        return inserted

    def _release(self, sub, inserted: list[str]) -> None:
        # The compensating delete: only this call's own claims, only while no link exists for them.
        if inserted:
            self.db.reductions.delete_many({"_id": {"$in": inserted}, "batch_id": sub.batch_id})

    def _link(self, sub, participant: str, n: int, inserted: list[str]) -> dict:
        previous = self.chains.read("issuances", sub.group, n - 1)
        units, carried_out = bf.tonnes(sub.batch["carried_in_grams"], sub.batch["quantity_grams"])
        start = previous["next_serial"] if previous else 1
        link = {
            "_id": self.chains.key(sub.group, n),
            "n": n,
            "group": sub.group,
            "batch_id": sub.batch_id,
            "participant": participant,
            "carried_from": sub.batch["carried_from"],
            "carried_in_grams": sub.batch["carried_in_grams"],
            "quantity_grams": sub.batch["quantity_grams"],
            "units": units,
            "carried_out_grams": carried_out,
            "start": start if units else None,
            "end": start + units - 1 if units else None,
            "next_serial": start + units,
            "at": utc_now_iso(),
        }
        stored, _ = insert_or_get(self.db.issuances, link)  # first writer of "group:n" wins
        if stored["batch_id"] != sub.batch_id:
            self._release(sub, inserted)
            raise ApiError("carried_mismatch", f"another batch ({stored['batch_id']}) was issued first in {sub.group}")
        return stored

    @staticmethod
    def _batch_doc(sub, participant: str, link_n: int | None, received_at: str, rejected: str | None = None) -> dict:
        return {
            "_id": sub.batch_id,
            "batch": sub.batch,
            "leaves": json_text(sub.leaves),  # one string: a big batch stays one compact field
            "consent_hashes": sub.consent_hashes,
            "signature": sub.signature.lower(),
            "key_id": sub.key_id,
            "participant": participant,
            "digest": sub.digest,
            "group": sub.group,
            "link_n": link_n,
            "rejected": rejected,
            "received_at": received_at,
        }

    def finish(self, stored: dict) -> None:
        """Roll the stored batch forward to its decided end (rejected, or issued and recorded)."""
        done = find_by_ids(self.db.transitions, [f"{stored['_id']}:{s}" for s in ("rejected", "issued")])
        if done:
            return
        at = stored["received_at"]
        states = (
            [("submitted", ""), ("rejected", stored["rejected"])]
            if stored["rejected"]
            else [
                ("submitted", ""),
                ("verified", ""),
            ]
        )
        self._transitions(stored["_id"], states, at)
        if stored["rejected"]:
            return
        link = self.chains.read("issuances", stored["group"], stored["link_n"])
        record = self.records.get("issue:" + stored["_id"]) or self.records.sign(self._issue_body(stored, link))
        self.ledger.finish(record)
        self._transitions(stored["_id"], [("issued", "")], link["at"])

    def _transitions(self, batch_id: str, states, at: str) -> None:
        docs = [{"_id": f"{batch_id}:{s}", "batch_id": batch_id, "state": s, "reason": r, "at": at} for s, r in states]
        insert_or_get_many(self.db.transitions, docs)

    @staticmethod
    def _issue_body(stored: dict, link: dict) -> dict:
        batch, units = stored["batch"], link["units"]
        args = (batch["methodology_id"], batch["methodology_version"], batch["vintage"])
        block = None
        if units:
            parent = {
                "batch_id": stored["_id"],
                "methodology_id": args[0],
                "methodology_version": args[1],
                "vintage": args[2],
            }
            block = make_block(
                f"issue:{stored['_id']}/0", parent, link["start"], link["end"], stored["participant"], ACTIVE
            )
        return {
            "op_id": "issue:" + stored["_id"],
            "type": "issue",
            "batch_id": stored["_id"],
            "methodology_id": args[0],
            "methodology_version": args[1],
            "vintage": args[2],
            "units": units,
            "serial": block["serial"] if block else "",
            "start": link["start"],
            "end": link["end"],
            "from_holder": "",
            "to_holder": stored["participant"],
            "beneficiary": "",
            "reason": "",
            "at": link["at"],
            "consumed": "",
            "produced": [block] if block else [],
            "batch_digest": stored["digest"],
            "merkle_root": batch["merkle_root"],
            "consent_root": batch["consent_root"],
            "quantity_grams": batch["quantity_grams"],
            "carried_in_grams": batch["carried_in_grams"],
            "carried_from": batch["carried_from"],
            "carried_out_grams": link["carried_out_grams"],
            "group_position": link["n"],
        }
