"""Integrity check: recompute every account's chain from its entries and report any edit.

For each account, entries must run seq 1..N without gaps, each must hash (SM3) to its stored
hash, link to its predecessor's hash, and re-sealing it against the recomputed state must give
the stored balance, status and hash. The derived head state must agree with the entries.
"""

from dataclasses import dataclass, field

from account import ledger


@dataclass
class Problem:
    account_id: str
    seq: int
    entry_id: str
    kind: str
    detail: str


@dataclass
class Report:
    accounts: int = 0
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(account_id: str, entries: list[dict]) -> tuple[list[Problem], dict]:
    """Problems found and the recomputed final state."""
    problems = []
    state = ledger.genesis_state(account_id)
    for entry in entries:

        def report(kind, detail, entry=entry):
            problems.append(Problem(account_id, entry.get("seq", -1), str(entry.get("_id")), kind, detail))

        if entry.get("seq") != state["seq"] + 1:
            report("sequence_gap", f"expected seq {state['seq'] + 1}, found {entry.get('seq')}")
        if entry.get("prev_hash") != state["hash"]:
            report("broken_link", "prev_hash does not match the previous entry's hash")
        if ledger.entry_hash(entry) != entry.get("hash"):
            report("hash_mismatch", "entry content was changed after it was written")
        if not isinstance(entry.get("grams"), int) or isinstance(entry.get("grams"), bool):
            report("not_integer", f"grams is {entry.get('grams')!r}")
            break
        try:
            rebuilt, state = ledger.seal(
                state,
                ledger.draft_of(entry),
                entry["posted_at"],
                lambda _trailing, entry=entry: entry.get("tier_after", ""),
            )
        except ledger.InsufficientBalance as exc:
            report("negative_balance", str(exc))
            break
        if rebuilt["balance_after"] != entry.get("balance_after"):
            report("balance_mismatch", f"stored {entry.get('balance_after')}, recomputed {rebuilt['balance_after']}")
        state = {**state, "seq": entry.get("seq", state["seq"]), "hash": entry.get("hash", "")}
    return problems, state


def verify_account(repository, account_id: str, entries: list[dict] | None = None) -> tuple[list[Problem], int]:
    entries = repository.account_entries(account_id) if entries is None else entries
    problems, state = verify_chain(account_id, entries)
    head = repository.get_state(account_id, state["seq"]) if entries else None
    if entries and (head is None or head["balance"] != state["balance"] or head["hash"] != entries[-1].get("hash")):
        problems.append(
            Problem(
                account_id, state["seq"], "", "state_mismatch", "the stored account state disagrees with the entries"
            )
        )
    return problems, len(entries)


def verify_all(repository, account_ids: list[str] | None = None) -> Report:
    report = Report()
    # One pass over the ledger, grouped here: a query per account would read the whole
    # collection once per account on FerretDB (docs/adr/0002-insert-only-storage-on-ferretdb.md).
    by_account = repository.entries_by_account() if not account_ids else {}
    for account_id in account_ids or sorted(by_account):
        problems, count = verify_account(repository, account_id, by_account.get(account_id))
        report.accounts += 1
        report.entries += count
        report.problems.extend(problems)
    return report
