"""In-memory stand-ins for account's Repository (cosmicpython's FakeRepository) and publisher.

FakeRepository keeps the contract of `account.repository.Repository` that the service layer
(operations, posting, outbox) relies on, including its unique keys, which are what makes the
ledger exactly-once on a database without transactions (integration/
test_account_repository_contract.py holds both to the same assertions):
  entries   unique _id and unique (account_id, seq): `insert_entries_in_order` stops at the
            first hit and says how many went in, as an ordered insert_many does
  accounts  unique _id and unique owner_pid
  states, claims, outbox, revoked_consents   unique _id; the document stored first wins
Everything read back is a fresh copy that went through JSON (entries and states are stored as
canonical JSON by the real repository too), so the caller cannot alter what is stored.

`fail_next(method, exc, after=0)` makes a later call of one method raise before it stores
anything (a crash or a lost connection at that point); the calls after it succeed again.
"""

import copy
import json

from pymongo.errors import DuplicateKeyError

from carbon_common.canonical import canonical_json
from carbon_common.clock import utc_now
from carbon_common.mongo import DUPLICATE_KEY


def _taken(what: str) -> DuplicateKeyError:
    return DuplicateKeyError(f"E11000 duplicate key error: {what}", DUPLICATE_KEY)


def _json_copy(doc: dict) -> dict:
    return json.loads(canonical_json(doc))


class FakeRepository:
    def __init__(self):
        self._accounts: dict[str, dict] = {}
        self._owners: dict[str, str] = {}  # unique owner_pid -> account _id
        self._entries: dict[str, str] = {}  # _id -> canonical JSON of the entry
        self._seqs: dict[tuple[str, int], str] = {}  # unique (account_id, seq) -> entry _id
        self._states: dict[str, str] = {}  # "<account_id>:<seq>" -> canonical JSON
        self._heads: dict[str, int] = {}
        self._claims: dict[str, dict] = {}
        self._outbox: dict[str, dict] = {}
        self._revoked_consents: dict[str, dict] = {}
        self._settlements: dict[str, dict] = {}
        self._pending: dict[str, dict] = {}

    # fault injection ----------------------------------------------------------------------
    def fail_next(self, method: str, exc: Exception, after: int = 0) -> None:
        """The call of `method` after `after` successful ones raises `exc`, storing nothing."""
        real = getattr(type(self), method).__get__(self)
        calls = {"n": 0}

        def failing(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] <= after:
                return real(*args, **kwargs)
            del self.__dict__[method]  # the next call is the real one again
            raise exc

        setattr(self, method, failing)

    # accounts ------------------------------------------------------------------------------
    def get_account(self, account_id: str) -> dict | None:
        doc = self._accounts.get(account_id)
        return copy.deepcopy(doc) if doc else None

    def insert_account(self, doc: dict) -> bool:
        return not self.insert_accounts([doc])

    def insert_accounts(self, docs: list[dict]) -> set[int]:
        """Unordered insert: -> indexes whose _id or owner_pid was taken (the others went in)."""
        taken = set()
        for i, doc in enumerate(docs):
            if doc["_id"] in self._accounts or doc["owner_pid"] in self._owners:
                taken.add(i)
                continue
            self._accounts[doc["_id"]] = copy.deepcopy(doc)
            self._owners[doc["owner_pid"]] = doc["_id"]
        return taken

    def accounts_by_ids(self, account_ids) -> dict:
        return {a: copy.deepcopy(self._accounts[a]) for a in account_ids if a in self._accounts}

    def unlink_personal_data(self, account_id: str, deleted_at: str) -> None:
        doc = self._accounts.get(account_id)
        if doc is not None:
            doc.pop("alias", None)
            doc.pop("contact", None)
            doc["personal_data_deleted_at"] = deleted_at

    # entries -------------------------------------------------------------------------------
    def get_entry(self, entry_id: str) -> dict | None:
        text = self._entries.get(entry_id)
        return json.loads(text) if text else None

    def entries_by_ids(self, entry_ids) -> dict:
        return {e: json.loads(self._entries[e]) for e in entry_ids if e in self._entries}

    def _insert_entry(self, entry: dict) -> None:
        if entry["_id"] in self._entries:
            raise _taken(f"entries _id {entry['_id']}")
        key = (entry["account_id"], entry["seq"])
        if key in self._seqs:
            raise _taken(f"entries account_seq_unique {key}")
        self._entries[entry["_id"]] = canonical_json(entry)
        self._seqs[key] = entry["_id"]

    def insert_entries_in_order(self, entries: list[dict]) -> int:
        for count, entry in enumerate(entries):
            try:
                self._insert_entry(entry)
            except DuplicateKeyError:
                return count
        return len(entries)

    def entry_at(self, account_id: str, seq: int) -> dict | None:
        entry_id = self._seqs.get((account_id, seq))
        return self.get_entry(entry_id) if entry_id else None

    def cap_usage_scan(self, account_id: str, key: str, max_seq: int) -> tuple[int, int]:
        grams = count = 0
        for entry in self.account_entries(account_id):
            if entry["seq"] <= max_seq and key in entry.get("cap_keys", ()):
                grams += entry.get("cap_grams", 0)
                count += entry.get("cap_count", 0)
        return grams, count

    def account_entries(self, account_id: str) -> list[dict]:
        seqs = sorted(seq for (a, seq) in self._seqs if a == account_id)
        return [self.get_entry(self._seqs[(account_id, seq)]) for seq in seqs]

    # states and head hints -------------------------------------------------------------------
    def get_state(self, account_id: str, seq: int) -> dict | None:
        text = self._states.get(f"{account_id}:{seq}")
        return json.loads(text) if text else None

    def insert_state(self, state: dict) -> None:
        self.insert_states([state])

    def insert_states(self, states: list[dict]) -> None:
        for state in states:  # a duplicate is an identical copy: the first stays
            self._states.setdefault(f"{state['account_id']}:{state['seq']}", canonical_json(state))

    def states_at(self, seqs: dict[str, int]) -> dict[str, dict]:
        found = {a: self.get_state(a, seq) for a, seq in seqs.items()}
        return {a: state for a, state in found.items() if state is not None}

    def states_by_seq(self, account_id: str, seqs) -> dict[int, dict]:
        found = {seq: self.get_state(account_id, seq) for seq in seqs}
        return {seq: state for seq, state in found.items() if state is not None}

    def head_hints(self, account_ids) -> dict[str, int]:
        return {a: self._heads[a] for a in account_ids if a in self._heads}

    def set_head_hints(self, seqs: dict[str, int]) -> None:
        for account_id, seq in seqs.items():
            self._heads[account_id] = max(self._heads.get(account_id, 0), seq)

    # dedup claims ----------------------------------------------------------------------------
    def claim_many(self, claims: list[dict]) -> dict[str, dict]:
        for claim in claims:
            self._claims.setdefault(claim["_id"], _json_copy(claim))
        return {c["_id"]: copy.deepcopy(self._claims[c["_id"]]) for c in claims}

    # revoked consents ------------------------------------------------------------------------
    def insert_revoked_consent(self, doc: dict) -> bool:
        if doc["_id"] in self._revoked_consents:
            return False
        self._revoked_consents[doc["_id"]] = _json_copy(doc)
        return True

    def revoked_consents_among(self, consent_ids) -> dict[str, dict]:
        return {c: copy.deepcopy(self._revoked_consents[c]) for c in consent_ids if c in self._revoked_consents}

    # outbox ----------------------------------------------------------------------------------
    def add_outbox(self, entry_id: str, account_id: str, traceparent: str = "") -> None:
        self._outbox.setdefault(
            entry_id, {"_id": entry_id, "account_id": account_id, "traceparent": traceparent, "created_at": utc_now()}
        )

    def add_outbox_many(self, markers: list[tuple]) -> None:
        for marker in markers:  # (entry id, account id[, traceparent])
            self.add_outbox(*marker)

    def decide_settlements(self, fates: list[dict]) -> dict[str, str]:
        for fate in fates:
            self._settlements.setdefault(fate["_id"], _json_copy(fate))
        return {f["_id"]: self._settlements[f["_id"]]["outcome"] for f in fates}

    def add_pending_settlements(self, markers: list[dict]) -> None:
        for marker in markers:
            self._pending.setdefault(marker["_id"], _json_copy(marker))

    def pending_settlements(self, limit: int) -> list[dict]:
        return [copy.deepcopy(m) for m in list(self._pending.values())[:limit]]

    def drop_pending_settlements(self, redemption_ids) -> None:
        for rid in redemption_ids:
            self._pending.pop(rid, None)

    def pending_outbox(self, limit: int) -> list[dict]:
        return [copy.deepcopy(m) for m in list(self._outbox.values())[:limit]]

    def drop_outbox(self, entry_ids) -> None:
        for entry_id in entry_ids:
            self._outbox.pop(entry_id, None)


class FakePublisher:
    """BatchPublisher.publish_many: records what a confirmed publish would have sent."""

    def __init__(self):
        self.published: list[tuple[str, dict, str, str]] = []

    def publish_many(self, items) -> None:
        self.published.extend(items)
