"""The pure domain of enterprise accounts (docs/enterprise.md): ids, an employee's link chain
with one enterprise and what it says, the link/unlink decisions, the per-enterprise pseudonym,
the period of a credit and the aggregate with its withholding rule. No I/O.

A link chain is the insert-only history of one (enterprise, employee) pair: documents
`<enterprise>:<employee>:<n>`, n = 0, 1, 2, … with n even a `link` (the employee's consent,
recorded as given) and n odd an `unlink` (the consent revoked). So the chain's length says the
state (odd: linked) and two writers racing for the same n are decided by the unique `_id`:
the loser reads the chain again and decides on the newer state. Each document's `at` is when
the platform recorded it; a credit counts for the enterprise when it was posted inside a
[link.at, unlink.at) interval."""

import hmac
from collections import defaultdict
from dataclasses import dataclass

from carbon_common.gm import hmac_sm3_hex, sm3_hex

from account import caps
from account.ledger import LedgerError

LINK, UNLINK = "link", "unlink"
MIN_GROUP = 5  # ENTERPRISE_MIN_GROUP: fewer distinct contributors than this and a group is withheld
FINGERPRINT = ("employee_id", "enterprise_id", "action", "consent_ref", "consented_at", "reason")


class AlreadyLinked(LedgerError):
    code = "already_linked"


class NotLinked(LedgerError):
    code = "not_linked"


# --- ids -------------------------------------------------------------------------------------
def link_id(enterprise_id: str, employee_id: str, n: int) -> str:
    return f"{enterprise_id}:{employee_id}:{n}"


def member_id(employee_id: str, k: int) -> str:
    """The employee's index of the enterprises it ever linked to: slot k names one of them."""
    return f"{employee_id}:{k}"


def request_id(employee_id: str, request_key: str) -> str:
    """A link/unlink request's key, per employee (a bank app retries with the same key)."""
    return sm3_hex(f"enterprise-link:{employee_id}:{request_key}".encode("utf-8"))


def slot_id(enterprise_id: str, period: str, n: int) -> str:
    """Slot n of an enterprise's contributions in a period (YYYY-MM)."""
    return f"{enterprise_id}:{period}:{n}"


def action_of(n: int) -> str:
    return LINK if n % 2 == 0 else UNLINK


def period_of(posted_at: str) -> str:
    """The month (YYYY-MM, China Standard Time, like statements) a credit was posted in."""
    return caps.statement_month(posted_at)


def pseudonym(key: bytes, enterprise_id: str, employee_id: str) -> str:
    """HMAC-SM3 of the employee's account under the platform's key, per enterprise: stable within
    one enterprise (to count distinct contributors), unrelated across enterprises and to every
    other id the platform publishes, so it joins with nothing."""
    return hmac_sm3_hex(key, f"enterprise-member:{enterprise_id}:{employee_id}".encode("utf-8"))[:32]


# --- a chain -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Chain:
    enterprise_id: str
    employee_id: str
    docs: tuple = ()  # documents n = 0 … len-1, in order

    @property
    def linked(self) -> bool:
        return len(self.docs) % 2 == 1

    @property
    def next_n(self) -> int:
        return len(self.docs)

    def linked_at(self, when: str) -> bool:
        """Whether the pair was linked at `when` (UTC text in the ledger's posted_at shape)."""
        for i in range(0, len(self.docs), 2):
            start = self.docs[i]["at"]
            end = self.docs[i + 1]["at"] if i + 1 < len(self.docs) else None
            if start <= when and (end is None or when < end):
                return True
        return False

    def by_request(self, request_key: str) -> dict | None:
        return next((d for d in self.docs if d["request_key"] == request_key), None)

    def view(self) -> dict:
        """What the employee sees of it: the current state and the consent it rests on."""
        last_link = self.docs[-1] if self.linked else (self.docs[-2] if len(self.docs) >= 2 else None)
        return {
            "enterprise_id": self.enterprise_id,
            "employee_id": self.employee_id,
            "linked": self.linked,
            "linked_at": last_link["at"] if last_link else "",
            "unlinked_at": "" if self.linked or not self.docs else self.docs[-1]["at"],
            "consent_ref": last_link["consent_ref"] if last_link else "",
            "consented_at": last_link["consented_at"] if last_link else "",
            "changes": len(self.docs),
        }


def draft(chain: Chain, action: str, request: dict, now: str) -> dict:
    """The next document of the chain for a link or unlink request -> the document to insert.
    request: {request_key, consent_ref, consented_at, reason}. Raises AlreadyLinked/NotLinked."""
    if action == LINK and chain.linked:
        raise AlreadyLinked("the employee's account is linked to this enterprise already")
    if action == UNLINK and not chain.linked:
        raise NotLinked("the employee's account is not linked to this enterprise")
    n = chain.next_n
    return {
        "_id": link_id(chain.enterprise_id, chain.employee_id, n),
        "enterprise_id": chain.enterprise_id,
        "employee_id": chain.employee_id,
        "n": n,
        "action": action,
        "at": now,
        "request_key": request["request_key"],
        "consent_ref": request.get("consent_ref", "") if action == LINK else "",
        "consented_at": request.get("consented_at", "") if action == LINK else "",
        "reason": request.get("reason", ""),
    }


def fingerprint(doc: dict) -> dict:
    return {k: doc.get(k, "") for k in FINGERPRINT}


def same_request(stored: dict, asked: dict) -> bool:
    return all(hmac.compare_digest(str(stored.get(k, "")), str(asked.get(k, ""))) for k in FINGERPRINT)


# --- the aggregate ---------------------------------------------------------------------------------
def aggregate(contributions, min_group: int = MIN_GROUP) -> list[dict]:
    """Groups (one per scenario) of one enterprise and period from its contributions
    [{entry_id, scenario, pseudonym, grams}] (a reversal is a negative one). A contribution
    seen twice (a slot written again after a crash) counts once. A group with fewer than
    `min_group` distinct employees whose net grams are positive is withheld: no figures."""
    seen, net = set(), defaultdict(lambda: defaultdict(int))
    credited, reversed_ = defaultdict(int), defaultdict(int)
    for c in contributions:
        if c["entry_id"] in seen:
            continue
        seen.add(c["entry_id"])
        net[c["scenario"]][c["pseudonym"]] += c["grams"]
        if c["grams"] >= 0:
            credited[c["scenario"]] += c["grams"]
        else:
            reversed_[c["scenario"]] -= c["grams"]
    groups = []
    for scenario in sorted(net):
        contributors = sum(1 for grams in net[scenario].values() if grams > 0)
        if contributors < min_group:
            groups.append({"scenario": scenario, "withheld": True, "contributors": 0, "grams": 0, "reversed_grams": 0})
            continue
        groups.append(
            {
                "scenario": scenario,
                "withheld": False,
                "contributors": contributors,
                "grams": credited[scenario] - reversed_[scenario],
                "reversed_grams": reversed_[scenario],
            }
        )
    return groups
