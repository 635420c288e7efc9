"""Recalculation after a correction: reverse and recompute every affected, unlocked reduction.

For each `corrected` version in the catalog, every stored reduction pinned to the version it
supersedes and not already handled is either refused or recalculated. Refused, when an
exchange batch holds it (locked): a `reduction_reversal_refused` event (code
`locked_at_exchange`, with the grams the corrected versions would give) that the account records
as a zero-gram entry, and no reversal or superseding reduction. Otherwise:
  1. reversed   (ReductionReversed, event_id derived from the old reduction_id, with the grams
                the corrected versions give: the account keeps them if the reduction was redeemed)
  2. recomputed with the versions now in force (ReductionCalculated revision+1,
     supersedes = old id; or BehaviourRejected if the corrected rules make it ineligible)
  3. marked reversed in the store (last, so a crash before it just repeats 1–2 with the same ids).
Re-running publishes nothing new: reversed reductions are skipped, the new ones are pinned to
the corrected version. The ledger stays append-only: nothing is updated or deleted.
"""

from dataclasses import dataclass, field
from typing import Callable

from calc.catalog import Catalog, Methodology
from calc.domain import Calculation
from calc.processing import Publish, outcome_for, publish_stored, store_outcome
from calc.repository import CalcRepository
from calc.schemas import refusal_event_id, reversal_event_id, reversal_payload


@dataclass
class Progress:
    correction: str  # e.g. "factor set cn_grid_average 2 -> 2.1"
    total: int
    checked: int = 0
    recalculated: int = 0
    now_rejected: int = 0
    refused_locked: int = 0
    skipped_done: int = 0
    reductions: list[str] = field(default_factory=list, repr=False)  # new reduction ids

    def line(self) -> str:
        pct = 100 * self.checked // self.total if self.total else 100
        return (
            f"{self.correction}: {self.checked}/{self.total} ({pct}%) checked, "
            f"{self.recalculated} recalculated, {self.now_rejected} now rejected, "
            f"{self.refused_locked} refused (locked at the exchange), {self.skipped_done} already done"
        )


def _recalculate_one(
    doc: dict, catalog: Catalog, repo: CalcRepository, publish: Publish, corrected_by: str, progress: Progress
) -> None:
    old = doc["payload"]
    outcome = outcome_for(doc["record"], catalog)  # pure: computed first, so the reversal names its grams
    reversal = {
        **reversal_payload(old, corrected_by),
        "corrected_grams": int(outcome.grams) if isinstance(outcome, Calculation) else 0,
    }
    publish("reduction_reversed", reversal, event_id=reversal_event_id(old["reduction_id"]))
    new, _ = store_outcome(doc["record"], outcome, repo, revision=old["revision"] + 1, supersedes=old["reduction_id"])
    publish_stored(new, publish)
    repo.save_reversal(reversal)
    if new["kind"] == "reduction":
        progress.recalculated += 1
        progress.reductions.append(new["_id"])
    else:
        progress.now_rejected += 1


def _refuse_locked(
    doc: dict, lock: dict, catalog: Catalog, repo: CalcRepository, publish: Publish, corrected_by: str
) -> None:
    """The exchange holds this reduction: say so, publish no reversal (ADR 0005 §4)."""
    old = doc["payload"]
    corrected = outcome_for(doc["record"], catalog)
    payload = {
        **{k: old[k] for k in ("reduction_id", "record_key", "user_pid", "scenario")},
        "code": "locked_at_exchange",
        "batch_id": lock.get("batch_id", ""),
        "corrected_by_version": corrected_by,
        "original_grams": int(old["grams"]),
        "corrected_grams": int(corrected.grams) if isinstance(corrected, Calculation) else 0,
    }
    publish("reduction_reversal_refused", payload, event_id=refusal_event_id(old["reduction_id"]))
    # marked handled last: a crash before it publishes the same event (same id) again
    repo.save_reversal({**reversal_payload(old, corrected_by, reason="locked_at_exchange"), "refused": True})


def recalculate(
    catalog: Catalog, repo: CalcRepository, publish: Publish, report: Callable[[str], None] = print, every: int = 100
) -> list[Progress]:
    results = []
    for correction in catalog.corrections():
        kind = "methodology" if isinstance(correction, Methodology) else "factor_set"
        progress = Progress(
            f"{kind.replace('_', ' ')} {correction.id} {correction.supersedes} -> {correction.version}",
            total=repo.count_pinned_to(kind, correction.id, correction.supersedes),
        )
        report(progress.line())
        for doc in repo.pinned_to(kind, correction.id, correction.supersedes):
            progress.checked += 1
            lock = repo.lock_of(doc["_id"])
            if repo.is_reversed(doc["_id"]):
                progress.skipped_done += 1
            elif lock is not None:
                _refuse_locked(doc, lock, catalog, repo, publish, correction.version)
                progress.refused_locked += 1
            else:
                _recalculate_one(doc, catalog, repo, publish, correction.version, progress)
            if progress.checked % every == 0:
                report(progress.line())
        report(progress.line())
        results.append(progress)
    return results
