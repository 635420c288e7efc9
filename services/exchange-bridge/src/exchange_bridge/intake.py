"""Intake: the bank pool's new `redemption_transfer` entries -> queued reductions, per group.

The `intake` chain is the bridge's watermark. Link n+1 is decided once (unique insert of
`_id = n+1`, first writer wins) and says: this page of this pool chain (after_seq, last_seq]
was read; the watermark of every pool chain is now `marks`; each group's queue now ends at
`tails` (slices, cumulative grams); and these reductions joined these groups (one slice per
group). Before a link is inserted its reductions are stored as `candidates` (`_id` =
reduction id); after it, its slices (`<group>#<k>`). A crash in between is repaired by the
next pass (any instance), which stores the head link's slices again before anything else
(unique inserts: the same documents), and every link is materialized before the next is
appended. So every transfer is read once, every reduction is queued once, and a pass reads
only what is new: its cost does not depend on the history.

A transfer made before provenance existed has no contributions: its grams stay in the pool,
unbatched. A reduction a correction lowered after it was redeemed comes with `grams` =
min(original, corrected) and `written_off_grams` (ADR 0005 §2): it is queued at those grams
(not at all when 0), and before its link is inserted the account writes the difference off
the pool (`account.write_off_corrections`, one `correction_write_off` entry per reduction,
idempotent), so a crash in between only repeats a write that is already there. A
contribution that cannot make a valid leaf is written off here (`write_offs`, reason
`unbatchable: …`), never queued.
"""

import logging

from nameko.exceptions import RemoteError

from carbon_common.clock import utc_now_iso

from exchange_bridge import metrics, rules

log = logging.getLogger(__name__)
PAGE_SIZE = 500  # entries per list_entries_after call (and transfers per contributions call)
MAX_LINK_REDUCTIONS = 20_000  # a link stops at the transfer that reaches it (its size stays bounded)
MAX_PAGES_PER_PASS = 50  # per pool chain; the rest waits for the next pass


def marks_of(link: dict | None) -> dict[str, int]:
    return {mark["pool"]: mark["seq"] for mark in (link or {}).get("marks", [])}


def tails_of(link: dict | None) -> dict[str, tuple[int, int]]:
    """group -> (slices, cumulative grams queued) after `link`."""
    return {tail["group"]: (tail["slices"], tail["grams"]) for tail in (link or {}).get("tails", [])}


class Intake:
    def __init__(
        self, account, repo, pool_owners, page_size: int = PAGE_SIZE, max_link_reductions: int = MAX_LINK_REDUCTIONS
    ):
        self.account, self.repo, self.pool_owners = account, repo, tuple(pool_owners)
        self.page_size, self.max_link_reductions = page_size, max_link_reductions

    def run(self) -> tuple[dict | None, dict]:
        """-> (the head link after this pass, {links, reductions} added by this instance)."""
        n, head = self.repo.intake_head()
        if head is not None:
            self.materialize(head)
        added = {"links": 0, "reductions": 0}
        for owner in self.pool_owners:
            for _ in range(MAX_PAGES_PER_PASS):
                after = marks_of(head).get(owner, 0)
                page = self._page(owner, after)
                if page is None or page["last_seq"] <= after:
                    break
                link = self._link(n + 1, head, owner, after, page)
                stored, created = self.repo.add_link(link)
                self.materialize(stored)
                n, head = stored["_id"], stored
                if created:
                    added["links"] += 1
                    added["reductions"] += stored["reductions"]
                    metrics.INTAKE_REDUCTIONS.inc(stored["reductions"])
        return head, added

    def _page(self, owner: str, after: int) -> dict | None:
        try:
            return self.account.list_entries_after(
                owner_pid=owner, after_seq=after, limit=self.page_size, types=["redemption_transfer"]
            )
        except RemoteError as error:
            if error.exc_type == "LookupError":  # the pool chain is opened by its first redemption
                return None
            raise

    def _contributions(self, transfers: list[dict]) -> dict[str, list]:
        out = {}
        for start in range(0, len(transfers), PAGE_SIZE):
            ids = [t["entry_id"] for t in transfers[start : start + PAGE_SIZE]]
            out.update(self.account.contributions(ids))
        return out

    def _link(self, n: int, head: dict | None, owner: str, after: int, page: dict) -> dict:
        transfers = [e for e in page["entries"] if e["type"] == "redemption_transfer" and int(e["grams"]) > 0]
        contributions = self._contributions(transfers)
        last_seq, rows, candidates, unbatchable, seen = page["last_seq"], {}, [], [], set()
        corrected = []  # reductions a correction lowered after they were redeemed
        for index, transfer in enumerate(transfers):
            if len(seen) >= self.max_link_reductions and index > 0:
                last_seq = transfers[index - 1]["seq"]  # the next link starts at this transfer
                break
            for contribution in contributions.get(transfer["entry_id"], []):
                rid = contribution.get("reduction_id")
                if rid in seen:
                    continue
                seen.add(rid)
                if int(contribution.get("written_off_grams") or 0) > 0:
                    corrected.append({"reduction_id": rid, "transfer_entry_id": transfer["entry_id"]})
                    if contribution.get("grams") == 0:
                        continue  # corrected to nothing: all of it is written off, nothing queued
                try:
                    doc = rules.candidate(contribution, owner)
                except rules.Unbatchable as error:
                    unbatchable.append(_unbatchable(contribution, owner, str(error)))
                    continue
                candidates.append(doc)
                rows.setdefault(doc["group"], []).append([doc["_id"], doc["leaf"]["grams"]])
        for start in range(0, len(corrected), PAGE_SIZE):
            self.account.write_off_corrections(corrected[start : start + PAGE_SIZE])
        self.repo.add_candidates(candidates)
        if unbatchable:
            self._write_off(unbatchable)
        tails = tails_of(head)
        groups = []
        for group in sorted(rows):
            k, grams = tails.get(group, (0, 0))
            added = sum(g for _, g in rows[group])
            groups.append([group, k + 1, rows[group]])
            tails[group] = (k + 1, grams + added)
        marks = marks_of(head)
        marks[owner] = last_seq
        return {
            "_id": n,
            "pool": owner,
            "after_seq": after,
            "last_seq": last_seq,
            # lists of documents: FerretDB v1 stores no array inside an array
            "marks": [{"pool": o, "seq": marks[o]} for o in sorted(marks)],
            "tails": [{"group": g, "slices": tails[g][0], "grams": tails[g][1]} for g in sorted(tails)],
            "groups": groups,
            "transfers": len(transfers),
            "reductions": len(candidates),
            "at": utc_now_iso(),
        }

    def _write_off(self, docs: list[dict]) -> None:
        for stored, created in self.repo.add_write_offs(docs):
            if created:
                metrics.WRITTEN_OFF_GRAMS.inc(stored["grams"])
                log.error(
                    "reduction written off at intake: it cannot make a valid leaf",
                    extra={"reduction_id": stored["_id"], "reason": stored["reason"]},
                )

    def materialize(self, link: dict) -> None:
        """Store the link's slices (again): the same documents, whoever wrote them first."""
        self.repo.add_slices(
            [
                {
                    "_id": rules.slice_id(group, k),
                    "group": group,
                    "k": k,
                    "link": link["_id"],
                    "reductions": reductions,
                    "grams": sum(g for _, g in reductions),
                }
                for group, k, reductions in link["groups"]
            ]
        )


def _unbatchable(contribution: dict, owner: str, reason: str) -> dict:
    grams = contribution.get("grams")
    return {
        "_id": str(contribution.get("reduction_id") or f"transfer:{contribution.get('transfer_entry_id')}"),
        "grams": grams if type(grams) is int else 0,
        "owner_pid": str(contribution.get("owner_pid") or ""),
        "batch_id": "",
        "first_batch_id": "",
        "code": "unbatchable",
        "reason": f"unbatchable: {reason}",
        "transfer_entry_id": contribution.get("transfer_entry_id", ""),
        "pool": owner,
        "at": utc_now_iso(),
    }
