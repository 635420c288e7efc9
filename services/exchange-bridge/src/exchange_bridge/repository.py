"""The bridge's own database (the only Mongo code). FerretDB v1: no transactions, non-atomic
updates, only `_id` filters pushed down. So every decision is a unique insert with a
deterministic `_id` (first writer wins, the loser reads the winner), every read is an `_id`
point read or `$in`, and ordered collections are *chains* (`_id = key:n`, n = 1, 2, … without
gaps) found by probing forward from a hint, never by a query on another field.

intake       chain n = 1, 2, …: one page of one pool chain, decided once: its pool, after_seq,
             last_seq, the watermark of every pool chain, each group's queue tail (slices,
             cumulative grams) and the reductions it added per group.
slices       `<group>#<k>`: the k-th slice of a group's queue (reduction ids and grams, in order).
candidates   reduction id: the reduction's leaf, consent id, trace and pool transfer (once).
slots        `<group>/<n>`: the group's n-th batch (queue range, attempt, carried remainder).
batches      batch id: the signed batch document, its leaves and consent leaves, traces.
transitions  `<batch id>:<state>` (unit operations `<batch id>:<state>:<operation id>`).
published    event id: the transition's event was confirmed by the broker.
records      registry operation id: the registry's signed record (issue, transfer, retire, cancel).
operations   request key: a caller's unit operation (transfer/retire/cancel) and its registry id.
issued       reduction id: the batch that issued it (what a certificate looks up).
releases     reduction id: released from its first, rejected batch (rule R2).
write_offs   reduction id: rejected twice (or unbatchable at intake): never batched again.
refusals     `<batch id>:<code>`: a refusal that holds a batch (it is sent again later).
unit_ops     chain `<batch id>~<n>`: the batch's unit operations in order (a batch has few).
hints        "intake", "slots:<group>": a lower bound of a chain's length (an update with
             $max; a stale or lost value only costs a few more probes).
"""

import orjson

from carbon_common.mongo import find_by_ids, insert_new, insert_or_get, insert_or_get_many, json_text

from exchange_bridge import rules

COLLECTIONS = (
    "intake",
    "slices",
    "candidates",
    "slots",
    "batches",
    "transitions",
    "published",
    "records",
    "operations",
    "issued",
    "releases",
    "write_offs",
    "refusals",
    "unit_ops",
    "hints",
)
CHUNK = 1000  # ids per `$in`


class Repository:
    def __init__(self, db):
        self.db = db
        for name in COLLECTIONS:
            setattr(self, name, db[name])
        self._hints: dict[str, int] = {}  # this process's hints (the stored ones after a restart)
        self.settled_slots: dict[str, dict] = {}  # slot id -> states: a settled slot never changes

    def ensure_indexes(self) -> None:
        """Every collection is keyed by `_id` alone: there is no other index to create."""

    # -- chains ------------------------------------------------------------------------
    def _hint(self, key: str) -> int:
        if key not in self._hints:
            doc = self.hints.find_one({"_id": key})
            self._hints[key] = int(doc["n"]) if doc else 0
        return self._hints[key]

    def raise_hint(self, key: str, n: int) -> None:
        if n > self._hints.get(key, 0):
            self._hints[key] = n
            self.hints.update_one({"_id": key}, {"$max": {"n": n}}, upsert=True)

    def _head(self, collection, key_of, hint_key: str) -> tuple[int, dict | None]:
        """(n, link n) of a chain's last link, (0, None) for an empty chain. Probes forward
        from the hint (doubling, then bisecting): one `$in` when the hint is current."""
        low = self._hint(hint_key)
        found = find_by_ids(collection, [key_of(n) for n in (low, low + 1) if n > 0])
        if low > 0 and key_of(low) not in found:  # a hint beyond the chain: start over
            self._hints[hint_key] = 0
            return self._head(collection, key_of, hint_key)
        if key_of(low + 1) in found:
            low, step = low + 1, 1
            while collection.find_one({"_id": key_of(low + step)}, {"_id": 1}) is not None:
                low, step = low + step, step * 2
            high = low + step
            while high - low > 1:
                middle = (low + high) // 2
                if collection.find_one({"_id": key_of(middle)}, {"_id": 1}) is not None:
                    low = middle
                else:
                    high = middle
            found = find_by_ids(collection, [key_of(low)])
        self.raise_hint(hint_key, low)
        return low, found.get(key_of(low)) if low else None

    # -- intake --------------------------------------------------------------------------
    def intake_head(self) -> tuple[int, dict | None]:
        n, doc = self._head(self.intake, lambda i: i, "intake")
        return n, _link(doc)

    def add_link(self, link: dict) -> tuple[dict, bool]:
        """Insert intake link `link["_id"]` -> (the stored link, inserted now)."""
        doc = {k: v for k, v in link.items() if k != "groups"}
        doc["groups"] = json_text(link["groups"])
        stored, created = insert_or_get(self.intake, doc)
        if created:
            self.raise_hint("intake", link["_id"])
        return _link(stored), created

    def add_candidates(self, docs: list[dict]) -> None:
        insert_new(self.candidates, docs)  # the same reduction again: the same data

    def add_slices(self, docs: list[dict]) -> None:
        insert_new(self.slices, [dict(d, reductions=json_text(d["reductions"])) for d in docs])

    def slices_of(self, group: str, first: int, last: int) -> list[dict]:
        out = []
        for start in range(first, last + 1, CHUNK):
            ids = [rules.slice_id(group, k) for k in range(start, min(start + CHUNK, last + 1))]
            found = find_by_ids(self.slices, ids)
            out.extend(_slice(found[i]) for i in ids if i in found)
        return out

    def candidates_of(self, reduction_ids: list[str]) -> dict[str, dict]:
        out = {}
        for start in range(0, len(reduction_ids), CHUNK):
            out.update(find_by_ids(self.candidates, reduction_ids[start : start + CHUNK]))
        return out

    # -- slots and batches ---------------------------------------------------------------
    def slot_heads(self, groups: list[str]) -> dict[str, tuple[int, dict | None]]:
        """group -> (n, its last slot) for every group, with one `$in` when the hints are current."""
        hints = {g: self._hint("slots:" + g) for g in groups}
        probe = [rules.slot_id(g, n) for g in groups for n in (hints[g], hints[g] + 1) if n > 0]
        found = find_by_ids(self.slots, probe)
        out = {}
        for g in groups:
            n = hints[g]
            if rules.slot_id(g, n + 1) in found or (n > 0 and rules.slot_id(g, n) not in found):
                out[g] = self._head(self.slots, lambda i, g=g: rules.slot_id(g, i), "slots:" + g)
            else:
                out[g] = (n, found.get(rules.slot_id(g, n)) if n else None)
        return out

    def add_slot(self, slot: dict) -> tuple[dict, bool]:
        stored, created = insert_or_get(self.slots, slot)
        if created:
            self.raise_hint("slots:" + slot["group"], slot["n"])
        return stored, created

    def slot(self, group: str, n: int) -> dict | None:
        return self.slots.find_one({"_id": rules.slot_id(group, n)}) if n > 0 else None

    def add_batch(self, doc: dict) -> dict:
        stored, _ = insert_or_get(self.batches, _packed(doc))
        return _unpacked(stored)

    def batch(self, batch_id: str) -> dict | None:
        return _unpacked(self.batches.find_one({"_id": batch_id}))

    def batches_of(self, batch_ids: list[str]) -> dict[str, dict]:
        return {k: _unpacked(v) for k, v in find_by_ids(self.batches, batch_ids).items()}

    # -- transitions and events ----------------------------------------------------------
    def add_transition(self, batch_id: str, state: str, fields: dict, operation: str = "") -> tuple[dict, bool]:
        doc = {"_id": rules.transition_id(batch_id, state, operation), "batch_id": batch_id, "state": state, **fields}
        return insert_or_get(self.transitions, doc)

    def transitions_of(self, batch_ids: list[str]) -> dict[str, dict[str, dict]]:
        """batch id -> {state: transition} for the lifecycle states (not unit operations)."""
        ids = [rules.transition_id(b, s) for b in batch_ids for s in rules.LIFECYCLE]
        out: dict[str, dict[str, dict]] = {b: {} for b in batch_ids}
        for doc in find_by_ids(self.transitions, ids).values():
            out[doc["batch_id"]][doc["state"]] = doc
        return out

    def published_of(self, event_ids: list[str]) -> set[str]:
        return set(find_by_ids(self.published, event_ids, {"_id": 1}))

    def mark_published(self, event_id: str, at: str) -> None:
        insert_new(self.published, [{"_id": event_id, "at": at}])

    # -- registry records, operations, reductions' fates ---------------------------------
    def add_record(self, record: dict) -> dict:
        stored, _ = insert_or_get(self.records, {**record, "_id": record["op_id"]})
        return {k: v for k, v in stored.items() if k != "_id"}

    def records_of(self, op_ids: list[str]) -> dict[str, dict]:
        return {k: {f: v for f, v in d.items() if f != "_id"} for k, d in find_by_ids(self.records, op_ids).items()}

    def add_operation(self, doc: dict) -> tuple[dict, bool]:
        return insert_or_get(self.operations, doc)

    def operation(self, request_key: str) -> dict | None:
        return self.operations.find_one({"_id": request_key})

    def add_issued(self, docs: list[dict]) -> None:
        for start in range(0, len(docs), CHUNK):
            insert_new(self.issued, docs[start : start + CHUNK])

    def issued_of(self, reduction_ids: list[str]) -> dict[str, dict]:
        out = {}
        for start in range(0, len(reduction_ids), CHUNK):
            out.update(find_by_ids(self.issued, reduction_ids[start : start + CHUNK]))
        return out

    def add_releases(self, docs: list[dict]) -> None:
        for start in range(0, len(docs), CHUNK):
            insert_new(self.releases, docs[start : start + CHUNK])

    def add_write_offs(self, docs: list[dict]) -> list[tuple[dict, bool]]:
        out = []
        for start in range(0, len(docs), CHUNK):
            out.extend(insert_or_get_many(self.write_offs, docs[start : start + CHUNK]))
        return out

    def unit_ops_of(self, batch_id: str) -> list[dict]:
        """The batch's unit operations in order (read link by link: a batch has a few)."""
        out, n = [], 1
        while True:
            found = find_by_ids(self.unit_ops, [f"{batch_id}~{i:06d}" for i in range(n, n + 20)])
            for i in range(n, n + 20):
                doc = found.get(f"{batch_id}~{i:06d}")
                if doc is None:
                    return out
                out.append(doc)
            n += 20

    def add_unit_op(self, batch_id: str, op_id: str, kind: str) -> None:
        """Append the operation to the batch's chain once (a repeat finds it there)."""
        while True:
            links = self.unit_ops_of(batch_id)
            if any(link["op_id"] == op_id for link in links):
                return
            n = len(links) + 1
            doc = {"_id": f"{batch_id}~{n:06d}", "n": n, "batch_id": batch_id, "op_id": op_id, "kind": kind}
            if not insert_new(self.unit_ops, [doc]):
                return

    # -- reads for reconciliation (exchange_bridge.reconciliation): `_id` / `$in` only, paged,
    # and no write (not even a hint): an operator check may scan, but only by id ------------
    def chain_length(self, collection: str, key_of, hint_key: str) -> int:
        """The number of links of a chain (no gaps): from the stored hint, probe pages of ids."""
        coll = self.db[collection]
        doc = self.hints.find_one({"_id": hint_key})
        low = int(doc["n"]) if doc else 0
        if low and coll.find_one({"_id": key_of(low)}, {"_id": 1}) is None:
            low = 0  # a hint beyond the chain
        while True:
            ids = [key_of(n) for n in range(low + 1, low + CHUNK + 1)]
            found = find_by_ids(coll, ids, {"_id": 1})
            for n, key in enumerate(ids, start=low + 1):
                if key not in found:
                    return n - 1
            low += CHUNK

    def intake_link(self, n: int) -> dict | None:
        return _link(self.intake.find_one({"_id": n})) if n > 0 else None

    def slots_of(self, group: str, first: int, last: int) -> list[dict]:
        """The group's slots first..last, in order (a missing one is left out)."""
        out = []
        for start in range(first, last + 1, CHUNK):
            ids = [rules.slot_id(group, n) for n in range(start, min(start + CHUNK, last + 1))]
            found = find_by_ids(self.slots, ids)
            out.extend(found[i] for i in ids if i in found)
        return out

    def docs_of(self, collection: str, ids: list, projection=None) -> dict:
        """_id -> document of any collection, `$in` pages of CHUNK ids."""
        out = {}
        for start in range(0, len(ids), CHUNK):
            out.update(find_by_ids(self.db[collection], ids[start : start + CHUNK], projection))
        return out

    def unit_ops_of_many(self, batch_ids: list[str]) -> dict[str, list[dict]]:
        """batch id -> its unit operations in order: one `$in` per link depth (a batch has a few)."""
        out: dict[str, list[dict]] = {b: [] for b in batch_ids}
        pending, n = list(batch_ids), 1
        while pending:
            found = self.docs_of("unit_ops", [f"{b}~{n:06d}" for b in pending])
            pending = [b for b in pending if f"{b}~{n:06d}" in found]
            for b in pending:
                out[b].append(found[f"{b}~{n:06d}"])
            n += 1
        return out

    def add_refusal(self, batch_id: str, code: str, reason: str, at: str) -> None:
        insert_new(
            self.refusals,
            [{"_id": f"{batch_id}:{code}", "batch_id": batch_id, "code": code, "reason": reason, "at": at}],
        )


def _link(doc: dict | None) -> dict | None:
    if doc is None:
        return None
    return {**doc, "groups": _loads(doc["groups"])}


def _slice(doc: dict) -> dict:
    return {**doc, "reductions": _loads(doc["reductions"])}


def _loads(text):
    return orjson.loads(text) if isinstance(text, str) else text


BIG = ("leaves", "consent_leaves")  # stored as JSON text: one compact field each, whatever the batch size


def _packed(doc: dict) -> dict:
    return {k: (json_text(v) if k in BIG else v) for k, v in doc.items()}


def _unpacked(doc: dict | None) -> dict | None:
    if doc is None:
        return None
    return {k: (_loads(v) if k in BIG else v) for k, v in doc.items()}
