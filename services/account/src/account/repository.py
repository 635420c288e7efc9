"""The only module that touches MongoDB/FerretDB.

Collections (database carbon_account):
  accounts  {_id: account_id, owner_pid, kind, opened_at, alias?}   owner lookup, personal links
  entries   the ledger: insert-only, _id = idempotency id, unique (account_id, seq)
  states    {_id: "<account_id>:<seq>"} the account state after entry seq (derived, rebuildable)
  heads     {_id: account_id, seq} a hint where the newest state is (may lag; never trusted)
  claims    {_id: dedup claim id, record_key, reduction_id}   one record per real-world behaviour
  outbox    {_id: entry_id}   RPC-made entries whose events still have to be published (the
            marker is written before the entry; batch-credited entries need none: their events
            are published before the message that caused them is acked)
  revoked_consents  {_id: consent_id, revoked_at, recorded_at}   insert-only, one per consent
            revoked in ingest (`consent_revoked`): a batch's credits read them by `_id` and
            decline the reductions of a revoked consent (`consent_revoked`)

FerretDB v1 answers only `_id` lookups without scanning, so the write path (appending,
caps, idempotency) uses `_id` lookups and inserts only; the read/query paths use ordinary
indexed queries (indexed on MongoDB, scans on FerretDB).
"""

import json

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.errors import BulkWriteError

from carbon_common.canonical import canonical_json
from carbon_common.clock import utc_now
from carbon_common.mongo import (
    create_query_index,
    find_by_ids,
    from_json_body,
    insert_new,
    insert_or_get_many,
    is_duplicate_key,
)


# An entry is stored as its canonical JSON (`entry`) plus copies of the fields queries filter
# or sort on. FerretDB stores the string ~4x faster than the same nested document (measured
# 15,816 vs 3,727 docs/s); the string is exactly what the entry's SM3 hash covers, minus `hash`.
# Each copied field costs FerretDB ~2-3 µs per insert: documents written before 2026-11-30
# also carry record_key, reduction_id and owner_pid, which nothing queries.
ENTRY_QUERY_FIELDS = (
    "account_id",
    "seq",
    "type",
    "month",
    "posted_at",
    "scenario",
    "cap_keys",
    "grams",
)


def _entry_to_doc(entry: dict) -> dict:
    doc = {k: entry[k] for k in ENTRY_QUERY_FIELDS if k in entry}
    doc["_id"] = entry["_id"]
    doc["entry"] = canonical_json(entry)
    return doc


def entry_of(doc: dict | None) -> dict | None:
    """A stored entry document -> the entry (documents written before 2026-11-29 are the entry)."""
    # The copies win: an edit to either the string or a copy then breaks the entry's hash.
    return from_json_body(doc, "entry", ENTRY_QUERY_FIELDS, loads=json.loads)


def _state_to_doc(state: dict) -> dict:
    """The state travels as one JSON string: derived data nobody queries by field, and FerretDB
    stores a string ~3x faster than the same nested document (measured: 15,371 vs 5,494 docs/s).
    Only `_id` beside it (documents before 2026-11-30 also copy account_id and seq)."""
    return {"_id": f"{state['account_id']}:{state['seq']}", "state": canonical_json(state)}


def _doc_to_state(doc: dict) -> dict:
    if "state" in doc:
        return json.loads(doc["state"])
    # written before 2026-11-29: fields at the top, maps as lists of small documents
    state = {k: v for k, v in doc.items() if k != "_id"}
    state["usage"] = {u["key"]: [u["grams"], u["count"]] for u in doc["usage"]}
    state["earned_by_month"] = {e["month"]: e["grams"] for e in doc["earned_by_month"]}
    return state


class Repository:
    def __init__(self, database):
        self.db = database
        self.accounts = database["accounts"]
        self.entries = database["entries"]
        self.states = database["states"]
        self.heads = database["heads"]
        self.claims = database["claims"]
        self.outbox = database["outbox"]
        self.revoked_consents = database["revoked_consents"]
        self.settlements = database["settlements"]
        self.pending = database["pending_settlements"]

    def ensure_indexes(self) -> None:
        self.entries.create_index(
            [("account_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="account_seq_unique"
        )
        # statements by month and the cap re-sum of old records (queries, not guards)
        create_query_index(self.entries, [("account_id", ASCENDING), ("month", ASCENDING)], "account_month")
        create_query_index(self.entries, [("account_id", ASCENDING), ("cap_keys", ASCENDING)], "account_cap_keys")
        self.accounts.create_index([("owner_pid", ASCENDING)], unique=True, name="owner_unique")

    # accounts
    def get_account(self, account_id: str) -> dict | None:
        return self.accounts.find_one({"_id": account_id})

    def insert_account(self, doc: dict) -> bool:
        """False if the _id or the owner is taken already."""
        return not insert_new(self.accounts, [doc])

    def unlink_personal_data(self, account_id: str, deleted_at: str) -> None:
        self.accounts.update_one(
            {"_id": account_id},
            {"$unset": {"alias": "", "contact": ""}, "$set": {"personal_data_deleted_at": deleted_at}},
        )

    def list_accounts(self, after: str = "", limit: int = 0) -> list[dict]:
        query = {"_id": {"$gt": after}} if after else {}
        return list(self.accounts.find(query).sort("_id", ASCENDING).limit(limit))

    # entries (write path)
    def get_entry(self, entry_id: str) -> dict | None:
        return entry_of(self.entries.find_one({"_id": entry_id}))

    def entries_by_ids(self, entry_ids) -> dict:
        return {k: entry_of(d) for k, d in find_by_ids(self.entries, entry_ids).items()}

    def insert_entries_in_order(self, entries: list[dict]) -> int:
        """Ordered insert_many: -> how many (from the start) were inserted; the one after them
        hit a unique key (its _id or its (account_id, seq)) and nothing later was tried."""
        if not entries:
            return 0
        try:
            self.entries.insert_many([_entry_to_doc(e) for e in entries], ordered=True)
            return len(entries)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if not errors or not is_duplicate_key(exc):
                raise
            return min(e["index"] for e in errors)

    def accounts_by_ids(self, account_ids) -> dict:
        return find_by_ids(self.accounts, account_ids)

    def insert_accounts(self, docs: list[dict]) -> set[int]:
        return insert_new(self.accounts, docs)

    def entry_at(self, account_id: str, seq: int) -> dict | None:
        return entry_of(self.entries.find_one({"account_id": account_id, "seq": seq}))

    def cap_usage_scan(self, account_id: str, key: str, max_seq: int) -> tuple[int, int]:
        grams = count = 0
        for found in self.entries.find({"account_id": account_id, "cap_keys": key, "seq": {"$lte": max_seq}}):
            doc = entry_of(found)
            grams += doc.get("cap_grams", 0)
            count += doc.get("cap_count", 0)
        return grams, count

    # states
    def get_state(self, account_id: str, seq: int) -> dict | None:
        doc = self.states.find_one({"_id": f"{account_id}:{seq}"})
        return _doc_to_state(doc) if doc else None

    def insert_state(self, state: dict) -> None:
        self.insert_states([state])

    def insert_states(self, states: list[dict]) -> None:
        insert_new(self.states, [_state_to_doc(s) for s in states])  # a duplicate is an identical copy

    def states_at(self, seqs: dict[str, int]) -> dict[str, dict]:
        """account_id -> its state after entry seqs[account_id], where that state exists."""
        states = map(_doc_to_state, find_by_ids(self.states, [f"{a}:{seq}" for a, seq in seqs.items()]).values())
        return {state["account_id"]: state for state in states}

    def states_by_seq(self, account_id: str, seqs) -> dict[int, dict]:
        """seq -> the account's state after that entry, for those that exist (one `$in`)."""
        states = map(_doc_to_state, find_by_ids(self.states, [f"{account_id}:{seq}" for seq in seqs]).values())
        return {state["seq"]: state for state in states}

    def head_hints(self, account_ids) -> dict[str, int]:
        return {d["_id"]: d["seq"] for d in find_by_ids(self.heads, account_ids).values()}

    def set_head_hints(self, seqs: dict[str, int]) -> None:
        if seqs:
            self.heads.bulk_write(
                [UpdateOne({"_id": a}, {"$max": {"seq": s}}, upsert=True) for a, s in seqs.items()], ordered=False
            )

    # dedup claims
    def claim_many(self, claims: list[dict]) -> dict[str, dict]:
        """Insert the claims that are free; claim id -> the claim that holds the key (ours or another's)."""
        return {c["_id"]: held for c, (held, _) in zip(claims, insert_or_get_many(self.claims, claims))}

    # revoked consents
    def insert_revoked_consent(self, doc: dict) -> bool:
        """Insert-only: True if this consent's revocation is new here (a repeat keeps the first)."""
        return not insert_new(self.revoked_consents, [doc])

    def revoked_consents_among(self, consent_ids) -> dict[str, dict]:
        """consent_id -> its revocation, for those of `consent_ids` revoked (one `$in` by `_id`;
        mostly misses, which FerretDB answers almost for free)."""
        return find_by_ids(self.revoked_consents, consent_ids)

    # outbox
    def add_outbox(self, entry_id: str, account_id: str, traceparent: str = "") -> None:
        """`traceparent`: the trace that posted the entry, so its events continue that trace."""
        insert_new(
            self.outbox,
            [{"_id": entry_id, "account_id": account_id, "traceparent": traceparent, "created_at": utc_now()}],
        )  # a duplicate is the same marker

    def add_outbox_many(self, markers: list[tuple]) -> None:
        """Markers for (entry id, account id[, traceparent]) tuples, with one insert (a group of
        appends; without a traceparent there is no trace to continue)."""
        now = utc_now()
        insert_new(
            self.outbox,
            [
                {"_id": m[0], "account_id": m[1], "traceparent": m[2] if len(m) > 2 else "", "created_at": now}
                for m in markers
            ],
        )  # a duplicate is the same marker

    # settlement: one fate per redemption (first writer wins), markers of pending ones
    def decide_settlements(self, fates: list[dict]) -> dict[str, str]:
        """Insert each {_id: redemption id, outcome} unless one exists -> id: the outcome that holds."""
        return {f["_id"]: held["outcome"] for f, (held, _) in zip(fates, insert_or_get_many(self.settlements, fates))}

    def add_pending_settlements(self, markers: list[dict]) -> None:
        insert_new(self.pending, markers)  # a duplicate is the same marker

    def pending_settlements(self, limit: int) -> list[dict]:
        """Redemptions waiting to be settled or refunded (a small collection: decided ones leave)."""
        return list(self.pending.find({}).limit(limit))

    def drop_pending_settlements(self, redemption_ids) -> None:
        if redemption_ids:
            self.pending.delete_many({"_id": {"$in": list(redemption_ids)}})

    def pending_outbox(self, limit: int) -> list[dict]:
        """Markers of entries whose events are not yet confirmed published (a small collection)."""
        return list(self.outbox.find({}).limit(limit))

    def drop_outbox(self, entry_ids) -> None:
        if entry_ids:
            self.outbox.delete_many({"_id": {"$in": list(entry_ids)}})

    # read path
    def list_entries(
        self,
        account_id: str,
        *,
        before_seq: int | None = None,
        types=None,
        scenario: str | None = None,
        posted_from: str | None = None,
        posted_to: str | None = None,
        limit: int = 50,
    ) -> list[dict]:
        query: dict = {"account_id": account_id}
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        if types:
            query["type"] = {"$in": list(types)}
        if scenario:
            query["scenario"] = scenario
        if posted_from or posted_to:
            query["posted_at"] = {
                **({"$gte": posted_from} if posted_from else {}),
                **({"$lt": posted_to} if posted_to else {}),
            }
        return [entry_of(d) for d in self.entries.find(query).sort("seq", DESCENDING).limit(limit)]

    def entries_in_month(self, account_id: str, month: str) -> list[dict]:
        return [
            entry_of(d) for d in self.entries.find({"account_id": account_id, "month": month}).sort("seq", ASCENDING)
        ]

    def last_entry_before_month(self, account_id: str, month: str) -> dict | None:
        found = list(
            self.entries.find({"account_id": account_id, "month": {"$lt": month}}).sort("seq", DESCENDING).limit(1)
        )
        return entry_of(found[0]) if found else None

    def account_entries(self, account_id: str) -> list[dict]:
        return [entry_of(d) for d in self.entries.find({"account_id": account_id}).sort("seq", ASCENDING)]

    def entries_by_account(self) -> dict[str, list[dict]]:
        """Every entry, grouped by account and ordered by seq, in one scan (operator tools)."""
        grouped: dict[str, list[dict]] = {}
        for doc in self.entries.find({}):
            entry = entry_of(doc)
            grouped.setdefault(entry["account_id"], []).append(entry)
        for entries in grouped.values():
            entries.sort(key=lambda e: e["seq"])
        return grouped
