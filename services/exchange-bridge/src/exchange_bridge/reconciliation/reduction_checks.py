"""Check `reductions`: every reduction is in at most one batch (two only as a released attempt 1
and its attempt 2), issued at most once, and its bridge documents (queued candidate, `issued`
index, write-off) agree with the batch that holds it."""

from exchange_bridge.reconciliation.report import Report


class ReductionChecks:
    """The reduction checks of a Reconciler (`self.repo`)."""

    def _leaves(
        self, report: Report, page: list[tuple[dict, str, bool, int | None]], batched: dict, rejected: set
    ) -> None:
        """One page of batches' leaves against their reductions' documents: the queued
        candidate (same leaf, at the grams its slot's correction states if any), the `issued`
        index (names the batch), no write-off if issued. Fills `batched` (reduction id -> batch,
        grams, pool transfer) for the leaves of batches not `rejected`: what the exchange holds."""
        ids = sorted({leaf["reduction_id"] for leaf, *_ in page})
        issued_ids = sorted({leaf["reduction_id"] for leaf, _, issued, _ in page if issued})
        candidates = self.repo.docs_of("candidates", ids)
        issued_docs = self.repo.docs_of("issued", issued_ids)
        write_offs = self.repo.docs_of("write_offs", issued_ids, {"_id": 1})
        for leaf, batch_id, issued, lowered in page:
            rid = leaf["reduction_id"]
            candidate = candidates.get(rid)
            if candidate is not None and batch_id not in rejected and candidate.get("transfer_entry_id"):
                batched[rid] = {
                    "batch_id": batch_id,
                    "grams": leaf["grams"],
                    "transfer_entry_id": candidate["transfer_entry_id"],
                }
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
