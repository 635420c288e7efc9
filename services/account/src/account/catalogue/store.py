"""The catalogue's collections (database carbon_account) — the only catalogue module that
touches MongoDB/FerretDB.

  catalogue_items        one document per item version, `_id` "<item_id>:<version>"; insert-only
                         (a change is a new version, never an update): the item's audit trail
  catalogue_heads        {_id: item_id, version}: the item exists (inserted before version 1) and
                         a hint where its newest version is (raised with $max, never trusted:
                         readers walk forward from it by `_id`)
  catalogue_claims       {_id: slot id, attempt, redemption, at}: a stock slot or a per-customer
                         limit slot held by one redemption attempt (account.catalogue.claims)
  catalogue_redemptions  {_id: redemption entry id, item, version, price, claims, attempt, …}:
                         inserted before the debit; names the attempt whose claims count
  catalogue_fulfilments  "<id>:report" the decision on a partner fulfilment (the first report
                         or the expiry: first writer wins), "<id>:closed" its fate once applied
  catalogue_open         {_id: redemption entry id, fulfil_by, announced}: partner fulfilments
                         still open (small: dropped once closed)

Every correctness-relevant write is an insert with a deterministic `_id` (ADR 0002). Deletes
are conditional on the holder (a claim or redemption document is removed only by the attempt
that wrote it, or as a stale one: `attempt` in the filter), so a removal never frees a slot
another attempt took meanwhile. The redemption path reads by `_id` only (single or `$in`);
the timer's two queries on `catalogue_open` and the listing's read of `catalogue_heads` are
queries on small collections.

The redemption path's single-document steps (replay lookup, claims insert, version re-check,
redemption insert) are coalesced (carbon_common.coalesce): the concurrent redemptions of a
process share one command per step — one `$in` read or one unordered insert for all of them.
"""

from pymongo import ASCENDING, UpdateOne

from carbon_common.clock import utc_now
from carbon_common.coalesce import Coalesced
from carbon_common.mongo import create_query_index, find_by_ids, insert_new, insert_or_get_many


class CatalogueStore:
    def __init__(self, database):
        self.db = database
        self.items = database["catalogue_items"]
        self.heads = database["catalogue_heads"]
        self.claims = database["catalogue_claims"]
        self.redemptions = database["catalogue_redemptions"]
        self.fulfilments = database["catalogue_fulfilments"]
        self.open = database["catalogue_open"]
        self._redemption_reads = Coalesced(lambda ids: _in_order(find_by_ids(self.redemptions, ids), ids))
        self._version_reads = Coalesced(lambda ids: _in_order(find_by_ids(self.items, ids), ids))
        self._claim_inserts = Coalesced(lambda lists: _inserted_per_list(self.claims, lists))
        self._redemption_inserts = Coalesced(
            lambda docs: [not taken for taken in _inserted_per_list(self.redemptions, [[d] for d in docs])]
        )

    def ensure_indexes(self) -> None:
        create_query_index(self.open, [("announced", ASCENDING)], "announced")
        create_query_index(self.open, [("fulfil_by", ASCENDING)], "fulfil_by")

    # items ---------------------------------------------------------------------------------
    def insert_head(self, item_id: str) -> bool:
        """The item exists from now on (before its first version is inserted); False if it did."""
        return not insert_new(self.heads, [{"_id": item_id, "version": 0, "created_at": utc_now()}])

    def head_hints(self, item_ids) -> dict[str, int]:
        return {d["_id"]: d["version"] for d in find_by_ids(self.heads, item_ids).values()}

    def list_heads(self, after: str = "", limit: int = 0) -> list[str]:
        """Item ids in order (a query on the small heads collection: one document per item)."""
        query = {"_id": {"$gt": after}} if after else {}
        return [d["_id"] for d in self.heads.find(query, {"_id": 1}).sort("_id", ASCENDING).limit(limit)]

    def raise_heads(self, versions: dict[str, int]) -> None:
        if versions:
            self.heads.bulk_write(
                [UpdateOne({"_id": i}, {"$max": {"version": v}}) for i, v in versions.items()], ordered=False
            )

    def insert_version(self, doc: dict) -> bool:
        """False if that version exists (another writer's, or this request's before)."""
        return not insert_new(self.items, [doc])

    def versions_by_ids(self, version_ids) -> dict[str, dict]:
        return find_by_ids(self.items, version_ids)

    def version(self, version_id: str) -> dict | None:
        """One version by `_id` (coalesced with the process's concurrent lookups)."""
        return self._version_reads(version_id)

    # claims ---------------------------------------------------------------------------------
    def claims_by_ids(self, claim_ids) -> dict[str, dict]:
        return find_by_ids(self.claims, claim_ids)

    def held(self, claim_ids) -> set[str]:
        """Which of `claim_ids` are held (`$in` by `_id`, ids only)."""
        out = set()
        ids = list(claim_ids)
        for start in range(0, len(ids), 5000):
            out.update(d["_id"] for d in self.claims.find({"_id": {"$in": ids[start : start + 5000]}}, {"_id": 1}))
        return out

    def insert_claim(self, doc: dict) -> bool:
        return not insert_new(self.claims, [doc])

    def insert_claims(self, docs: list[dict]) -> set[int]:
        """One unordered insert (shared with concurrent callers) -> the indexes of the docs whose
        slot was taken already (by another attempt, or by a caller earlier in the same insert)."""
        return self._claim_inserts(docs) if docs else set()

    def delete_claims(self, claim_ids, attempt: str) -> int:
        """Remove the claims among `claim_ids` that `attempt` holds (others are left alone)."""
        if not claim_ids:
            return 0
        return self.claims.delete_many({"_id": {"$in": list(claim_ids)}, "attempt": attempt}).deleted_count

    # redemptions ----------------------------------------------------------------------------
    def insert_redemption(self, doc: dict) -> bool:
        return self._redemption_inserts(doc)

    def get_redemption(self, redemption_id: str) -> dict | None:
        return self._redemption_reads(redemption_id)

    def redemptions_by_ids(self, redemption_ids, projection=None) -> dict[str, dict]:
        return find_by_ids(self.redemptions, redemption_ids, projection)

    def delete_redemption(self, redemption_id: str, attempt: str) -> None:
        self.redemptions.delete_one({"_id": redemption_id, "attempt": attempt})

    # fulfilments ----------------------------------------------------------------------------
    def decide(self, decision: dict) -> tuple[dict, bool]:
        """Insert a "<id>:report" decision unless one exists -> (the decision that holds, ours)."""
        [(held, created)] = insert_or_get_many(self.fulfilments, [decision])
        return held, created

    def record_closed(self, closed: dict) -> None:
        insert_new(self.fulfilments, [closed])  # a repeat writes the same fate

    def fulfilment_docs(self, ids) -> dict[str, dict]:
        return find_by_ids(self.fulfilments, ids)

    # open partner fulfilments -------------------------------------------------------------------
    def add_open(self, doc: dict) -> None:
        insert_new(self.open, [doc])  # a duplicate is the same marker

    def unannounced(self, limit: int) -> list[dict]:
        return list(self.open.find({"announced": False}).limit(limit))

    def due(self, now_iso: str, limit: int) -> list[dict]:
        return list(self.open.find({"fulfil_by": {"$lte": now_iso}}).limit(limit))

    def mark_announced(self, ids) -> None:
        if ids:  # a marker safe to repeat (ADR 0002)
            self.open.update_many({"_id": {"$in": list(ids)}}, {"$set": {"announced": True}})

    def drop_open(self, ids) -> None:
        if ids:
            self.open.delete_many({"_id": {"$in": list(ids)}})


def _in_order(found: dict, ids: list) -> list:
    return [found.get(i) for i in ids]


def _inserted_per_list(collection, lists: list[list[dict]]) -> list[set[int]]:
    """Every caller's documents in one unordered insert -> per caller, the indexes (in its own
    list) of the documents whose `_id` was taken."""
    taken = insert_new(collection, [doc for docs in lists for doc in docs])
    out, start = [], 0
    for docs in lists:
        out.append({i - start for i in taken if start <= i < start + len(docs)})
        start += len(docs)
    return out
