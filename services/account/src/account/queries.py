"""Read side shared by nameko RPC and the gRPC API: balance, entries, statement, totals."""

import re

from carbon_common.accounts import POOL_OWNERS

from account import ledger, provenance
from account.caps import statement_month
from account.catalogue.statement import catalogue_lines, titles_from
from account.ledger import InvalidRequest

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
HIDDEN = ("published", "traceparent")
KNOWN_ACCOUNTS = 100_000  # account ids a process remembers as existing


def contribution(credit: dict, transfer: dict, reversal: dict | None = None) -> dict:
    """One reduction a pool transfer carries: what an exchange batch needs of it (ADR 0005 §4).
    `grams` is what the exchange may receive: min(given, corrected) when a correction lowered
    the redeemed reduction; the rest is `written_off_grams` (the pool's `correction_write_off`)."""
    grams, written_off = provenance.corrected(credit["available_grams"], reversal)
    return {
        "reduction_id": credit["reduction_id"],
        "grams": grams,
        "original_grams": credit["available_grams"],
        "written_off_grams": written_off,
        "owner_pid": credit["owner_pid"],
        "account_id": credit["account_id"],
        "credit_entry_id": credit["_id"],
        "consent_id": credit.get("consent_id", ""),
        "record_key": credit.get("record_key", ""),
        **{k: credit.get(k, "") for k in ledger.PROVENANCE_FIELDS},
        "traceparent": credit.get("traceparent", ""),
        "transfer_entry_id": transfer["_id"],
        "redemption_entry_id": transfer["source_entry_id"],
    }


def public_entry(entry: dict) -> dict:
    out = {k: v for k, v in entry.items() if k not in HIDDEN and k != "_id"}
    out["entry_id"] = entry["_id"]
    return out


class Queries:
    def __init__(self, repository, appender):
        self.repo = repository
        self.appender = appender
        self._existing: set[str] = set()  # accounts are never deleted: once seen, known here

    def account_id(self, account_id: str | None = None, owner_pid: str | None = None) -> str:
        account_id = account_id or (ledger.account_id_for(owner_pid) if owner_pid else None)
        if not account_id:
            raise InvalidRequest("give account_id or owner_pid", "missing_account")
        if account_id in self._existing:
            return account_id
        if self.repo.get_account(account_id) is None:
            raise LookupError(account_id)
        if len(self._existing) >= KNOWN_ACCOUNTS:
            self._existing.clear()
        self._existing.add(account_id)
        return account_id

    def account(self, account_id: str) -> dict:
        doc = self.repo.get_account(account_id)
        if doc is None:
            raise LookupError(account_id)
        state = self.appender.head(account_id)
        trailing = ledger.trailing_earned(state["earned_by_month"], statement_month(ledger.utc_now_iso()))
        return {
            "account_id": account_id,
            "owner_pid": doc["owner_pid"],
            "kind": doc["kind"],
            "status": state["status"],
            "opened_at": doc["opened_at"],
            "balance_grams": state["balance"],
            "as_of_seq": state["seq"],
            "tier": self.appender.tiers.tier_for(trailing),
            "trailing_12m_grams": trailing,
        }

    def accounts(self, page_size: int = 50, page_token: str = "") -> dict:
        if not 0 <= int(page_size) <= 500:
            raise InvalidRequest("page_size must be 1..500", "invalid_page_size")
        size = int(page_size) or 50
        found = self.repo.list_accounts(after=page_token, limit=size + 1)
        page = found[:size]
        return {
            "accounts": [self.account(doc["_id"]) for doc in page],
            "next_page_token": page[-1]["_id"] if len(found) > size else "",
        }

    def entries(
        self,
        account_id: str,
        page_size: int = 50,
        page_token: str = "",
        types=(),
        scenario: str = "",
        posted_from: str = "",
        posted_to: str = "",
    ) -> dict:
        if not 0 <= int(page_size) <= 500:
            raise InvalidRequest("page_size must be 1..500", "invalid_page_size")
        if page_token and not page_token.isdigit():
            raise InvalidRequest("page_token is not one this API returned", "invalid_page_token")
        unknown = set(types or ()) - set(ledger.ENTRY_TYPES)
        if unknown:
            raise InvalidRequest(f"unknown entry types {sorted(unknown)}", "invalid_type")
        size = int(page_size) or 50
        found = self.repo.list_entries(
            account_id,
            before_seq=int(page_token) if page_token else None,
            types=types,
            scenario=scenario or None,
            posted_from=posted_from or None,
            posted_to=posted_to or None,
            limit=size + 1,
        )
        page = found[:size]
        token = str(page[-1]["seq"]) if len(found) > size else ""
        return {"entries": [public_entry(e) for e in page], "next_page_token": token}

    def entries_after(self, account_id: str, after_seq: int = 0, limit: int = 500, types=()) -> dict:
        """Entries with seq > after_seq in seq order, read by `_id` only (the state of each seq
        names its entry), so a consumer with a watermark costs what is new, not the history.
        -> {entries, last_seq}: last_seq is the newest seq read (the next call's after_seq)."""
        if not 0 < int(limit) <= 1000 or int(after_seq) < 0:
            raise InvalidRequest("limit must be 1..1000 and after_seq >= 0", "invalid_page_size")
        after_seq = int(after_seq)
        states = self.repo.states_by_seq(account_id, range(after_seq + 1, after_seq + int(limit) + 1))
        seqs = []
        for seq in range(after_seq + 1, after_seq + int(limit) + 1):
            if seq not in states:
                break  # the head (or a state still being written): stop at the first gap
            seqs.append(seq)
        entries = self.repo.entries_by_ids([states[seq]["entry_id"] for seq in seqs])
        ordered = [entries[states[seq]["entry_id"]] for seq in seqs]
        return {
            "entries": [public_entry(e) for e in ordered if not types or e["type"] in types],
            "last_seq": seqs[-1] if seqs else after_seq,
        }

    def contributions(self, transfer_entry_ids) -> dict:
        """The reductions each pool transfer completed, by the FIFO rule (account.provenance):
        transfer entry id -> [contribution], `_id` reads only. A transfer made before
        provenance existed has none (it maps to [])."""
        if len(transfer_entry_ids) > 500:
            raise InvalidRequest("at most 500 transfers per call", "invalid_page_size")
        out, completed = {}, {}
        for entry_id, transfer in self.repo.entries_by_ids(list(transfer_entry_ids)).items():
            if transfer["type"] != ledger.REDEMPTION_TRANSFER or "provenance" not in transfer:
                out[entry_id] = []
                continue
            span = transfer["provenance"]
            source = self.repo.get_entry(transfer["source_entry_id"])
            reader = provenance.ChainReader(self.repo, transfer["source_account_id"], source["seq"])
            completed[entry_id] = (transfer, provenance.completed_between(reader, span["from"], span["to"]))
        # the reductions' reversals, one `$in`: a correction of a redeemed one caps its grams
        ids = [ledger.reversal_entry_id(c["reduction_id"]) for _, credits in completed.values() for c in credits]
        reversals = self.repo.entries_by_ids(ids) if ids else {}
        for entry_id, (transfer, credits) in completed.items():
            out[entry_id] = [
                contribution(c, transfer, reversals.get(ledger.reversal_entry_id(c["reduction_id"]))) for c in credits
            ]
        return out

    def corrections(self, items: list[dict]) -> list[dict]:
        """items: [{reduction_id, transfer_entry_id}] -> the ones a correction lowered after they
        were redeemed, with the grams the exchange may receive (read only; the bridge asks when
        it forms a batch, then has `write_off_corrections` write the difference off)."""
        return [
            {
                "reduction_id": low.reduction_id,
                "transfer_entry_id": low.transfer["_id"],
                "grams": low.kept,
                "original_grams": low.given,
                "written_off_grams": low.written_off,
            }
            for low in provenance.lowered(self.repo, items)
        ]

    def statement(self, account_id: str, month: str) -> dict:
        if not MONTH.match(month or ""):
            raise InvalidRequest("month must be YYYY-MM", "invalid_month")
        entries = self.repo.entries_in_month(account_id, month)
        if entries:
            opening = entries[0]["balance_after"] - entries[0]["grams"]
        else:
            before = self.repo.last_entry_before_month(account_id, month)
            opening = before["balance_after"] if before else 0
        statement = build_statement(account_id, month, opening, entries)
        statement["catalogue"] = catalogue_lines(entries, titles_from(self.repo))  # one line per item
        return statement

    def totals(self, account_id: str | None = None) -> dict:
        ids = [account_id] if account_id else [a["_id"] for a in self.repo.list_accounts()]
        totals = {
            "accounts": 0,
            "credited_grams": 0,
            "reversed_grams": 0,
            "redeemed_grams": 0,
            "balance_grams": 0,
            "pool_grams": 0,
        }
        pool_ids = {ledger.account_id_for(owner) for owner in POOL_OWNERS}  # every shard (ADR 0005 §3)
        for aid in ids:
            state = self.appender.head(aid)
            if aid in pool_ids:
                totals["pool_grams"] += state["balance"]
                continue
            totals["accounts"] += 1
            totals["credited_grams"] += state["credited"]
            totals["reversed_grams"] += state["reversed"]
            totals["redeemed_grams"] += state["redeemed"]
            totals["balance_grams"] += state["balance"]
        return totals


def build_statement(account_id: str, month: str, opening: int, entries: list[dict]) -> dict:
    lines: dict[str, dict] = {}
    redeemed = 0
    for e in entries:
        if e["type"] == ledger.REDEMPTION:
            redeemed += -e["grams"]
        scenario = e.get("scenario")
        if not scenario:
            continue
        line = lines.setdefault(
            scenario,
            {
                "scenario": scenario,
                "credited_grams": 0,
                "credited_count": 0,
                "capped_grams": 0,
                "capped_count": 0,
                "declined_count": 0,
                "reversed_grams": 0,
            },
        )
        if e["type"] == ledger.CREDIT:
            line["credited_grams"] += e["grams"]
            line["credited_count"] += 1
        if e["type"] in (ledger.CREDIT, ledger.CAPPED) and e.get("capped_grams"):
            line["capped_grams"] += e["capped_grams"]
            line["capped_count"] += 1
        elif e["type"] == ledger.DECLINED:
            line["declined_count"] += 1
        elif e["type"] == ledger.REVERSAL:
            line["reversed_grams"] += -e["grams"]
    scenarios = sorted(lines.values(), key=lambda line: line["scenario"])
    return {
        "account_id": account_id,
        "month": month,
        "opening_balance": opening,
        "closing_balance": entries[-1]["balance_after"] if entries else opening,
        "scenarios": scenarios,
        "redeemed_grams": redeemed,
        "credited_grams": sum(line["credited_grams"] for line in scenarios),
        "reversed_grams": sum(line["reversed_grams"] for line in scenarios),
    }
