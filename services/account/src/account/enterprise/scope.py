"""Enterprise scope on the crediting path: an enterprise account earns from enterprise-scope
scenarios only, an individual account never from those (scenarios.yml `scopes:`,
carbon_common.scenarios.scope_of).

`ScopeGuard.screen(reductions)` runs in the reduction batch handler before
LedgerOperations.credit_many, which it leaves as it is. A reduction whose scenario's scope is not
its account's kind gets a `declined` entry with code `scope_mismatch` under the entry id a
credit would have had (ledger.credit_entry_id), so it is judged once like any other reduction:
no cap room, no dedup claim (another enterprise's record of the same certificate is not
blocked by it), and a redelivery finds the entry. An enterprise-scope reduction whose owner has
no account is neither credited nor opened as an individual's (that would make the enterprise's
account impossible to open): its message fails, is retried and then parked in the DLQ, to be
replayed once the enterprise's account is opened (docs/enterprise.md).

Cost: account kinds never change, so each process remembers them; a batch reads the kinds it
does not know with one `$in` by `_id` (accounts new to this process), and nothing once they are
known. Declines are rare and go through the Appender like every entry.
"""

from dataclasses import dataclass, field

from carbon_common.scenarios import scope_of

from account import caps, ledger
from account.operations import AUDIT_FIELDS
from account.posting import Request

SCOPE_MISMATCH = "scope_mismatch"
KINDS_LIMIT = 1_000_000  # account kinds remembered per process (then forgotten and read again)


class EnterpriseAccountMissing(LookupError):
    """An enterprise-scope reduction for an owner without an account: retried, then parked."""


@dataclass
class Screened:
    kept: list[int] = field(default_factory=list)  # indexes of the reductions to credit as usual
    declined: list[tuple[int, dict]] = field(default_factory=list)  # (index, its declined entry)
    missing: list[int] = field(default_factory=list)  # indexes of enterprise-scope ones without an account


class ScopeGuard:
    def __init__(self, ops):
        """ops: account.operations.LedgerOperations."""
        self.ops = ops
        self._kinds: dict[str, str] = {}

    def kinds(self, account_ids) -> dict[str, str]:
        """account id -> kind, for those that exist (remembered; unknown ones read with one `$in`)."""
        unknown = [a for a in dict.fromkeys(account_ids) if a not in self._kinds]
        if unknown:
            if len(self._kinds) > KINDS_LIMIT:
                self._kinds.clear()
            for account_id, doc in self.ops.repo.accounts_by_ids(unknown).items():
                self._kinds[account_id] = doc["kind"]
        return {a: self._kinds[a] for a in account_ids if a in self._kinds}

    def screen(self, reductions: list[dict]) -> Screened:
        out = Screened()
        account_ids = [ledger.account_id_for(r["user_pid"]) for r in reductions]
        kinds = self.kinds(account_ids)
        mismatched = []
        for i, (r, account_id) in enumerate(zip(reductions, account_ids)):
            enterprise_scope = scope_of(r["scenario"]) == "enterprise"
            kind = kinds.get(account_id)
            if kind is None:
                (out.missing if enterprise_scope else out.kept).append(i)
            elif kind == "pool" or enterprise_scope == (kind == "enterprise"):
                out.kept.append(i)
            else:
                mismatched.append(i)
        if mismatched:
            requests = [self._decline(reductions[i]) for i in mismatched]
            results = self.ops.appender.append_many(requests)
            for i, result in zip(mismatched, results):
                if isinstance(result, Exception):
                    raise result
                out.declined.append((i, result[0]))
        return out

    def _decline(self, reduction: dict) -> Request:
        account = self.ops.account_for(reduction["user_pid"], open_kind=None)  # exists: opened if need be
        audit = {k: reduction[k] for k in AUDIT_FIELDS if reduction.get(k) not in (None, "", {})}
        audit["caps"] = [caps.Cap.from_event(c).as_doc() for c in reduction.get("caps", [])]
        draft = {
            "owner_pid": account["owner_pid"],
            "account_kind": account["kind"],
            **audit,
            "requested_grams": int(reduction["grams"]),
            "type": ledger.DECLINED,
            "grams": 0,
            "code": SCOPE_MISMATCH,
            "duplicate_of_record_key": "",
        }
        return Request(account["_id"], ledger.credit_entry_id(reduction["reduction_id"]), lambda state: dict(draft))
