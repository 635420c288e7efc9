"""The enterprise aggregate as a read model of `account.events`, off the crediting path.

Its own queue (carbon_common.topology ROUTES) carries `entries_posted` (account.feed: one event
per publishing batch, listing its individual credits and reversals) to the account service's
batch handler, which passes the entries here. What they stand for:
- `account_credited` reason `reduction` of an individual account: a credit. It counts for every
  enterprise the employee was linked to when it was posted (a [link, unlink) interval of the
  pair's chain), in the month it was posted (China Standard Time), under its scenario, with the
  employee's per-enterprise pseudonym (links.pseudonym) — never the employee's pseudonym or
  account id.
- `account_debited` reason `reversal`: the grams taken back from a credit are subtracted where
  that credit counted (same enterprises, month and scenario). The event names the reduction
  only, so the credit entry is read from the ledger (by `_id`) and judged here first if its own
  batch has not been handled yet: reversals are published by the outbox relay, credits by the
  credit batches, and the two arrive in any order.
Everything else (redemptions, refunds, the pool, enterprise accounts' own credits) is ignored.

A batch costs: one `$in` on enterprise_contributions (the batch's entry ids and the credits its
reversals name: a redelivery stops there), one on the ledger's entries for those credits not
handled yet (reversals only), one per round on the employees' indexes (mostly one: misses for
employees never linked), one per round on the pairs' chains, then one unordered insert of one
slot per (enterprise, month) touched and one of the contribution documents. Nothing is written
for a credit that counts nowhere.

Idempotent: a contribution document (`_id` = entry id) is written after its slot; a redelivered
event whose document exists writes nothing. A crash between the two writes the slot again on
redelivery: the aggregate counts each entry id once.
"""

import logging
from dataclasses import dataclass

from account import feed, ledger
from account.enterprise import links

log = logging.getLogger(__name__)
CREDIT, REVERSAL = feed.CREDIT, feed.REVERSAL


@dataclass(frozen=True)
class Item:
    """One event the read model acts on."""

    kind: str  # credit | reversal
    entry_id: str
    employee_id: str  # the individual account
    posted_at: str
    grams: int  # a credit's grams; a reversal's grams taken back (positive)
    scenario: str = ""
    reduction_id: str = ""


def item_of(event_type: str, data: dict) -> Item | None:
    """The read model's view of an account event's payload, or None when it does not act on it.
    Raises ValueError for a payload without the fields it needs (a contract violation)."""
    posted = feed.posted_entry(event_type, data)
    return None if posted is None else item_of_posted(posted)


def item_of_posted(posted: dict) -> Item:
    """An `entries_posted` entry (account.feed) as the read model's item (ValueError if invalid)."""
    feed.check(posted)
    return Item(
        posted["kind"],
        posted["entry_id"],
        posted["account_id"],
        posted["posted_at"],
        int(posted["grams"]),
        posted.get("scenario", ""),
        posted.get("reduction_id", ""),
    )


def item_of_entry(entry: dict) -> Item | None:
    """A credit entry of the ledger as the read model's credit (for a reversal's credit)."""
    if entry.get("type") != ledger.CREDIT or entry.get("account_kind") != "individual" or entry["grams"] <= 0:
        return None
    return Item(CREDIT, entry["_id"], entry["account_id"], entry["posted_at"], entry["grams"], entry["scenario"])


class ReadModel:
    def __init__(self, enterprises):
        """enterprises: account.enterprise.enterprise.Enterprises (chains, indexes, slots, store)."""
        self.enterprises = enterprises
        self.store = enterprises.store
        self.repo = enterprises.repo

    def apply(self, items: list[Item]) -> dict:
        """Apply a batch of items, each once. -> {credits, reversals, contributions, slots}."""
        credits = {i.entry_id: i for i in items if i.kind == CREDIT}
        reversals = {i.entry_id: i for i in items if i.kind == REVERSAL}
        credit_of = {r: ledger.credit_entry_id(item.reduction_id) for r, item in reversals.items()}
        done = self.store.contributions_by_ids([*credits, *reversals, *credit_of.values()])
        # the credits reversals name that neither this batch nor an earlier one handled
        unknown = [c for c in dict.fromkeys(credit_of.values()) if c not in done and c not in credits]
        for entry in self.repo.entries_by_ids(unknown).values():
            found = item_of_entry(entry)
            if found is not None:
                credits[found.entry_id] = found
        todo = [c for c in credits.values() if c.entry_id not in done]
        parts = self._judge(todo)
        known = {eid: doc["parts"] for eid, doc in done.items()} | parts
        for rid, item in reversals.items():
            if rid in done:
                continue
            taken = [{**p, "grams": -item.grams} for p in known.get(credit_of[rid], ())] if item.grams else []
            if taken:
                parts[rid] = taken
        groups: dict[tuple[str, str], list[dict]] = {}
        for entry_id, entry_parts in parts.items():
            for p in entry_parts:
                groups.setdefault((p["enterprise_id"], p["period"]), []).append(
                    {"entry_id": entry_id, "scenario": p["scenario"], "pseudonym": p["pseudonym"], "grams": p["grams"]}
                )
        slots = self.enterprises.append_slots(groups)
        now = self.enterprises.now()
        self.store.insert_contributions([{"_id": eid, "parts": p, "at": now} for eid, p in parts.items()])
        return {
            "credits": len(todo),
            "reversals": sum(1 for r in reversals if r not in done),
            "contributions": sum(len(p) for p in parts.values()),
            "slots": slots,
        }

    def _judge(self, credits: list[Item]) -> dict[str, list[dict]]:
        """entry id -> its parts [{enterprise_id, period, scenario, pseudonym, grams}] for the
        credits that count somewhere (linked when posted)."""
        if not credits:
            return {}
        of = self.enterprises.enterprises_of({c.employee_id for c in credits})
        pairs = [(ent, c.employee_id) for c in credits for ent in of[c.employee_id]]
        chains = self.enterprises.chains(pairs) if pairs else {}
        key = self.enterprises.key if pairs else b""
        out = {}
        for c in credits:
            entry_parts = [
                {
                    "enterprise_id": ent,
                    "period": links.period_of(c.posted_at),
                    "scenario": c.scenario,
                    "pseudonym": links.pseudonym(key, ent, c.employee_id),
                    "grams": c.grams,
                }
                for ent in of[c.employee_id]
                if chains[(ent, c.employee_id)].linked_at(c.posted_at)
            ]
            if entry_parts:
                out[c.entry_id] = entry_parts
        return out
