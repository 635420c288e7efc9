"""Checks against the ledger: `invariant` (for each account and in total: registered ≤ redeemed
to the pool ≤ credited) and `corrections` (a gram a correction took off a redeemed reduction is
counted once), from the pool chains' transfers and correction write-offs and the accounts'
figures (RPCs of the account service)."""

from nameko.exceptions import RemoteError

from exchange_bridge.lifecycle import PAGE as CORRECTIONS_PAGE
from exchange_bridge.lifecycle import lowered
from exchange_bridge.reconciliation.report import Report

POOL_TYPES = ["redemption_transfer", "correction_write_off"]
ENTRIES_PAGE = 1000  # account.list_entries_after's largest page
FIGURES_PAGE = 500  # account.account_figures' largest call


def _missing_account(error: RemoteError) -> bool:
    return getattr(error, "exc_type", "") == "LookupError"


class LedgerChecks:
    """The ledger checks of a Reconciler (`self.account`, `self.pool_owners`)."""

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

    def _late_corrections(self, report: Report, bridge: dict) -> None:
        """A reduction a correction lowered after its batch was formed (ADR 0005 §2: the slot had
        decided its grams, the signed batch holds them): the exchange holds more grams of it than
        the ledger keeps. Listed under `overstated` with the grams over — not a difference: no
        run can take it back, and whether to cancel units for it is the bank's call
        (docs/deploy.md, Exchange reconciliation); the gauge carbon_exchange_overstated_grams."""
        batched = bridge["batched"]
        held = {rid: (batched[rid]["transfer_entry_id"], batched[rid]["grams"]) for rid in sorted(batched)}
        kept = lowered(self.account, held)
        report.cost["account_calls"] += -(-len(held) // CORRECTIONS_PAGE)
        for rid, grams in kept.items():
            held_grams = batched[rid]["grams"]
            report.overstated.append(
                {
                    "reduction_id": rid,
                    "batch_id": batched[rid]["batch_id"],
                    "batched": held_grams,
                    "corrected": grams,
                    "over": held_grams - grams,
                }
            )
        report.figures.update(
            corrected_after_batching=len(kept),
            overstated_at_exchange_grams=sum(o["over"] for o in report.overstated),
        )
