"""`Enterprises`: linking and unlinking employees' accounts with their consent, what an employee
sees of its links, and an enterprise's aggregate per month (docs/enterprise.md).

Every read is by `_id` (single or `$in`), every write an insert with a deterministic `_id`:
- a change (link or unlink) of a pair claims its request key first (one document per employee
  and key: the same key for another request is refused), then inserts the next document of the
  pair's chain; a lost race (the position taken) reads the chain again: the request's own
  document there is a replay, otherwise it is decided again on the newer state. A first link
  of a pair adds the enterprise to the employee's index (`enterprise_members`) before the link
  document, so the read model never misses a link.
- chains and indexes are immutable prefixes: each process keeps what it read and walks forward
  from there (`$in` of PROBE positions per pair per round).
- the aggregate reads one enterprise's slots of one month, `<enterprise>:<month>:0, 1, …`,
  SLOT_PROBE at a time with `$in`, until the first missing one (slots are contiguous: each is
  inserted at the first free position).
"""

import threading
from datetime import datetime, timedelta, timezone

from carbon_common.clock import utc_now_iso

from account.enterprise import links
from account.enterprise.links import LINK, UNLINK, Chain
from account.ledger import AccountNotOpen, InvalidRequest, RequestKeyReused

PROBE = 4  # chain / index positions read per pair and round
SLOT_PROBE = 64  # slots read per `$in` by the aggregate
CONSENT_SKEW = timedelta(minutes=5)  # a consent time later than now by more than this is refused
CACHE_LIMIT = 200_000  # pairs / employees remembered per process (then forgotten and read again)


class Enterprises:
    def __init__(self, ops, store, *, min_group: int = links.MIN_GROUP, key: bytes | None = None, now=utc_now_iso):
        """ops: account.operations.LedgerOperations (accounts and their states); store:
        account.enterprise.store.EnterpriseStore; key: the pseudonym key (default: the stored one)."""
        self.ops = ops
        self.repo = ops.repo
        self.store = store
        self.min_group = min_group
        self.now = now
        self._key = key
        self._lock = threading.Lock()
        self._chains: dict[tuple[str, str], tuple] = {}  # (enterprise, employee) -> docs read
        self._members: dict[str, tuple] = {}  # employee -> enterprise ids of its index, in order
        self._slot_next: dict[tuple[str, str], int] = {}  # (enterprise, month) -> a free slot, or lower

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = self.store.pseudonym_key()
        return self._key

    # --- reading chains and indexes --------------------------------------------------------------
    def chains(self, pairs) -> dict[tuple[str, str], Chain]:
        """(enterprise, employee) -> its chain as stored now: the cached prefix, walked forward."""
        pairs = list(dict.fromkeys(pairs))
        docs = {p: list(self._chains.get(p, ())) for p in pairs}
        frontier = list(pairs)
        while frontier:
            wanted = [links.link_id(ent, emp, len(docs[(ent, emp)]) + i) for ent, emp in frontier for i in range(PROBE)]
            found = self.store.links_by_ids(wanted)
            more = []
            for ent, emp in frontier:
                start = len(docs[(ent, emp)])
                while (doc := found.get(links.link_id(ent, emp, len(docs[(ent, emp)])))) is not None:
                    docs[(ent, emp)].append(doc)
                if len(docs[(ent, emp)]) - start == PROBE:  # every probed position held one: there may be more
                    more.append((ent, emp))
            frontier = more
        with self._lock:
            if len(self._chains) > CACHE_LIMIT:
                self._chains.clear()
            for p in pairs:
                self._chains[p] = tuple(docs[p])
        return {p: Chain(p[0], p[1], tuple(docs[p])) for p in pairs}

    def enterprises_of(self, employee_ids) -> dict[str, list[str]]:
        """employee -> the enterprises it ever linked to (its index, walked forward), in order."""
        employee_ids = list(dict.fromkeys(employee_ids))
        known = {e: list(self._members.get(e, ())) for e in employee_ids}
        frontier = list(employee_ids)
        while frontier:
            wanted = [links.member_id(e, len(known[e]) + i) for e in frontier for i in range(PROBE)]
            found = self.store.members_by_ids(wanted)
            more = []
            for e in frontier:
                start = len(known[e])
                while (doc := found.get(links.member_id(e, len(known[e])))) is not None:
                    known[e].append(doc["enterprise_id"])
                if len(known[e]) - start == PROBE:  # every probed position held one: there may be more
                    more.append(e)
            frontier = more
        with self._lock:
            if len(self._members) > CACHE_LIMIT:
                self._members.clear()
            for e in employee_ids:
                self._members[e] = tuple(known[e])
        return {e: list(dict.fromkeys(known[e])) for e in employee_ids}

    def _add_member(self, employee_id: str, enterprise_id: str) -> None:
        """Put the enterprise in the employee's index (once; a concurrent writer may add it twice:
        readers drop repeats)."""
        while True:
            known = self.enterprises_of([employee_id])[employee_id]
            if enterprise_id in known:
                return
            k = len(self._members[employee_id])
            doc = {"_id": links.member_id(employee_id, k), "enterprise_id": enterprise_id, "at": self.now()}
            if self.store.insert_member(doc):
                with self._lock:
                    self._members[employee_id] = (*self._members.get(employee_id, ()), enterprise_id)
                return

    # --- accounts ----------------------------------------------------------------------------------
    def _account(self, account_id: str) -> dict:
        doc = self.repo.get_account(account_id)
        if doc is None:
            raise LookupError(account_id)
        return doc

    def _status(self, account_id: str) -> str:
        return self.ops.appender.head(account_id)["status"]

    def enterprise_account(self, account_id: str) -> dict:
        doc = self._account(account_id)
        if doc["kind"] != "enterprise":
            raise InvalidRequest("the enterprise account must be of kind enterprise", "not_enterprise")
        return doc

    def employee_account(self, account_id: str) -> dict:
        doc = self._account(account_id)
        if doc["kind"] != "individual":
            raise InvalidRequest("the employee's account must be of kind individual", "not_individual")
        return doc

    # --- link, unlink, see --------------------------------------------------------------------------
    def link(self, employee_id: str, enterprise_id: str, request_key: str, consent_ref: str, consented_at: str):
        """Link the employee's account to the enterprise on the employee's consent (its reference in
        the bank app and the time the employee agreed, UTC text, recorded as given). -> (the link
        as the employee sees it, the chain document, replayed)."""
        if not consent_ref or not consented_at:
            raise InvalidRequest("a link needs the employee's consent: consent_ref and consented_at", "missing_consent")
        moment = datetime.fromisoformat(consented_at.replace("Z", "+00:00"))
        if moment > datetime.now(timezone.utc) + CONSENT_SKEW:
            raise InvalidRequest("consented_at must not be in the future", "invalid_consented_at")
        request = {"request_key": request_key, "consent_ref": consent_ref, "consented_at": consented_at, "reason": ""}
        return self._change(LINK, employee_id, enterprise_id, request)

    def unlink(self, employee_id: str, enterprise_id: str, request_key: str, reason: str = ""):
        """Revoke the employee's consent: credits posted from now on no longer count for the
        enterprise (those before stay in its aggregate). -> (view, document, replayed)."""
        request = {"request_key": request_key, "consent_ref": "", "consented_at": "", "reason": reason}
        return self._change(UNLINK, employee_id, enterprise_id, request)

    def _change(self, action: str, employee_id: str, enterprise_id: str, request: dict):
        self.employee_account(employee_id)
        self.enterprise_account(enterprise_id)
        pair = (enterprise_id, employee_id)
        asked = {"employee_id": employee_id, "enterprise_id": enterprise_id, "action": action, **request}
        rid = links.request_id(employee_id, request["request_key"])
        stored = self.store.get_request(rid)
        if stored is not None and not links.same_request(stored, asked):
            raise RequestKeyReused("request_key was used for another link or unlink")
        chain = self.chains([pair])[pair]
        if stored is not None and (done := chain.by_request(request["request_key"])) is not None:
            return chain.view(), done, True
        if action == LINK:
            for account_id in (employee_id, enterprise_id):
                if self._status(account_id) != "open":
                    raise AccountNotOpen("both accounts must be open to link")
        links.draft(chain, action, request, self.now())  # refuses before anything is written
        if stored is None and not self.store.insert_request({"_id": rid, **links.fingerprint(asked), "at": self.now()}):
            stored = self.store.get_request(rid)  # the same key, sent twice at once
            if not links.same_request(stored, asked):
                raise RequestKeyReused("request_key was used for another link or unlink")
        if action == LINK and chain.next_n == 0:
            self._add_member(employee_id, enterprise_id)
        while True:
            doc = links.draft(chain, action, request, self.now())
            if self.store.insert_link(doc):
                with self._lock:
                    self._chains[pair] = (*chain.docs, doc)
                chain = Chain(enterprise_id, employee_id, (*chain.docs, doc))
                return chain.view(), doc, False
            chain = self.chains([pair])[pair]  # another change came first
            if (done := chain.by_request(request["request_key"])) is not None:
                return chain.view(), done, True

    def links_of(self, employee_id: str) -> list[dict]:
        """Every enterprise the employee's account was ever linked to, with its state now and the
        consent the current (or last) link rests on, in enterprise id order."""
        self.employee_account(employee_id)
        enterprises = self.enterprises_of([employee_id])[employee_id]
        chains = self.chains([(ent, employee_id) for ent in enterprises])
        return [chains[(ent, employee_id)].view() for ent in sorted(enterprises) if chains[(ent, employee_id)].docs]

    # --- the aggregate -------------------------------------------------------------------------------
    def slots(self, enterprise_id: str, period: str) -> list[dict]:
        """The enterprise's slots of a month, in order: `$in` of SLOT_PROBE ids until one is missing."""
        out, n = [], 0
        while True:
            ids = [links.slot_id(enterprise_id, period, n + i) for i in range(SLOT_PROBE)]
            found = self.store.slots_by_ids(ids)
            for slot_id in ids:
                if slot_id not in found:
                    return out
                out.append(found[slot_id])
            n += SLOT_PROBE

    def aggregate(self, enterprise_id: str, period: str) -> dict:
        """The enterprise's linked employees' net reductions in the month (YYYY-MM, China Standard
        Time), per scenario; a group of fewer than min_group contributors is withheld."""
        self.enterprise_account(enterprise_id)
        slots = self.slots(enterprise_id, period)
        contributions = [c for slot in slots for c in slot["contributions"]]
        groups = links.aggregate(contributions, self.min_group)
        return {
            "enterprise_id": enterprise_id,
            "period": period,
            "min_group": self.min_group,
            "groups": groups,
            "reported_grams": sum(g["grams"] for g in groups if not g["withheld"]),
            "withheld_groups": sum(1 for g in groups if g["withheld"]),
            "slots_read": len(slots),
        }

    # --- slots (the read model's writes) -------------------------------------------------------------
    def next_slot(self, enterprise_id: str, period: str) -> int:
        """A free slot position of (enterprise, month): the cached one, else found by galloping over
        single `_id` lookups (slots are contiguous, so "slot n exists" is monotone)."""
        key = (enterprise_id, period)
        if key in self._slot_next:
            return self._slot_next[key]

        def exists(n: int) -> bool:
            return bool(self.store.slot_ids_among([links.slot_id(enterprise_id, period, n)]))

        if not exists(0):
            low = 0
        else:
            low, high = 0, 1
            while exists(high):
                low, high = high, high * 2
            while high - low > 1:  # slot low exists, slot high does not
                mid = (low + high) // 2
                low, high = (mid, high) if exists(mid) else (low, mid)
            low = high
        self._slot_next[key] = low
        return low

    def append_slots(self, groups: dict[tuple[str, str], list[dict]]) -> int:
        """One slot per (enterprise, month) holding those contributions, each at a free position
        (one unordered insert per round; a taken position moves that group to the next one).
        -> the slots written."""
        pending = dict(groups)
        written = 0
        while pending:
            keys = list(pending)
            at = self.now()
            tried = {key: self.next_slot(*key) for key in keys}
            docs = [
                {
                    "_id": links.slot_id(ent, period, tried[(ent, period)]),
                    "enterprise_id": ent,
                    "period": period,
                    "contributions": pending[(ent, period)],
                    "at": at,
                }
                for ent, period in keys
            ]
            taken = self.store.insert_slots(docs)
            with self._lock:  # past the position tried, never back (another batch may have moved on)
                for key in keys:
                    self._slot_next[key] = max(self._slot_next.get(key, 0), tried[key] + 1)
            for i, key in enumerate(keys):
                if i not in taken:
                    written += 1
                    del pending[key]
        if len(self._slot_next) > CACHE_LIMIT:
            self._slot_next.clear()
        return written
