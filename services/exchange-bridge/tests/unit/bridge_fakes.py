"""In-memory stand-ins for what the bridge (exchange_bridge.bridge.Bridge) talks to.

FakeDatabase   pymongo's Database as the bridge's Repository uses it: collections keyed by
               `_id` (a duplicate insert is E11000, reported per document as pymongo does),
               `_id` and `$in` reads, `$max`/`$set` upserts by `_id`. It records every command's
               filter (like carbon_dev.testing.FilterRecorder) and can *crash*: with
               `crash_at = k` the k-th write raises Crash before it is applied — a process
               dying between two writes. The real Repository runs on it, unchanged.
FakeAccount    account's RPCs `list_entries_after` (the bank pool chains, LookupError until a
               chain exists) and `contributions` (transfer entry id -> its reductions).
FakeRegistry   the registry as RegistryClient presents it: `submit` re-checks every batch with
               the registry's own validation (exchange_bridge.registry.validation) and the
               bank's signature, links the group's carried chain, issues whole tonnes with
               contiguous serials and signs records in the registry's shape; transfer, retire
               and cancel split blocks. Faults: `reject` (store the next batches as rejected),
               `refuse` (the next submissions refused with a code), `lose` (do the work, lose
               the answer: Unknown), `down` (no answer, nothing done: Unknown).
FakeDispatch   nameko's EventDispatcher: records (event_type, payload, event_id), validated
               against the proto contracts.
"""

import copy
import itertools

from nameko.exceptions import RemoteError
from pymongo.errors import BulkWriteError, DuplicateKeyError

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_common.clock import utc_now_iso
from carbon_common.gm import sm3_hex
from carbon_common.mongo import DUPLICATE_KEY
from carbon_common.schemas import validate_payload

from exchange_bridge import batch_format as bf
from exchange_bridge.registry import validation
from exchange_bridge.registry.records import signed_bytes
from exchange_bridge.registry_client import Rejected, Unknown

REGISTRY_KEYS = gm.generate_sm2_keypair()
CATALOGUE = {("metro_ride", "1"), ("bus_ride", "1"), ("walking", "1")}


class Crash(BaseException):
    """The process died here (BaseException: no `except Exception` of the bridge catches it)."""


# -- the database ----------------------------------------------------------------------------
def _storable(value, in_array=False):
    """What FerretDB v1 refuses: an array directly inside an array."""
    if isinstance(value, dict):
        for item in value.values():
            _storable(item)
    elif isinstance(value, (list, tuple)):
        if in_array:
            raise AssertionError("FerretDB v1 stores no array inside an array")
        for item in value:
            _storable(item, in_array=True)


class FakeCollection:
    def __init__(self, db, name):
        self.db, self.name, self.docs = db, name, {}

    def _write(self):
        self.db.writes += 1
        if self.db.crash_at and self.db.writes >= self.db.crash_at:
            self.db.crash_at = 0
            raise Crash(f"crashed before write {self.db.writes} ({self.name})")

    def _matches(self, flt) -> list:
        self.db.commands.append(("find", self.name, copy.deepcopy(flt)))
        if not flt:
            return list(self.docs.values())
        if set(flt) != {"_id"}:
            raise AssertionError(f"{self.name}: a filter on {sorted(flt)}: the bridge reads by _id only")
        value = flt["_id"]
        if isinstance(value, dict):
            return [self.docs[v] for v in dict.fromkeys(value["$in"]) if v in self.docs]
        return [self.docs[value]] if value in self.docs else []

    def insert_one(self, doc):
        _storable(doc)
        self._write()
        if doc["_id"] in self.docs:
            raise DuplicateKeyError(f"E11000 duplicate key {self.name} {doc['_id']}", DUPLICATE_KEY)
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    def insert_many(self, docs, ordered=True):
        for doc in docs:
            _storable(doc)
        self._write()
        errors = []
        for index, doc in enumerate(docs):
            if doc["_id"] in self.docs:
                errors.append({"index": index, "code": DUPLICATE_KEY, "errmsg": "E11000"})
            else:
                self.docs[doc["_id"]] = copy.deepcopy(doc)
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": len(docs) - len(errors)})

    def find(self, flt=None, projection=None):
        found = self._matches(flt or {})
        if projection:
            keep = [k for k, v in projection.items() if v]
            return [{k: d[k] for k in ["_id", *keep] if k in d} for d in found]
        return [copy.deepcopy(d) for d in found]

    def find_one(self, flt=None, projection=None):
        found = self.find(flt, projection)
        return found[0] if found else None

    def update_one(self, flt, update, upsert=False):
        self.db.commands.append(("update", self.name, copy.deepcopy(flt)))
        assert set(flt) == {"_id"}, f"{self.name}: updates by _id only"
        self._write()
        doc = self.docs.get(flt["_id"])
        if doc is None:
            if not upsert:
                return
            doc = self.docs[flt["_id"]] = {"_id": flt["_id"]}
        for field, value in update.get("$max", {}).items():
            doc[field] = max(doc.get(field, value), value)
        doc.update(update.get("$set", {}))

    def count_documents(self, flt):
        return len(self._matches(flt))

    def estimated_document_count(self):
        return len(self.docs)

    def create_index(self, *args, **kwargs):
        pass


class FakeDatabase:
    name = "fake"

    def __init__(self):
        self.collections: dict[str, FakeCollection] = {}
        self.commands: list[tuple[str, str, dict]] = []
        self.writes = 0
        self.crash_at = 0  # >0: the write with this number raises Crash (counted from now)

    def __getitem__(self, name) -> FakeCollection:
        return self.collections.setdefault(name, FakeCollection(self, name))

    def crash_before_write(self, k: int) -> None:
        self.writes, self.crash_at = 0, k

    def not_by_id(self) -> list:
        def by_id(flt):
            if set(flt) != {"_id"}:
                return False
            return not isinstance(flt["_id"], dict) or set(flt["_id"]) == {"$in"}

        return [c for c in self.commands if not by_id(c[2])]

    def snapshot(self) -> dict:
        return {name: copy.deepcopy(c.docs) for name, c in self.collections.items()}


# -- the account service ---------------------------------------------------------------------
_ids = itertools.count(1)


def contribution(owner="pid-alice", grams=400_000, methodology="metro_ride", version="1", year=2026, **extra) -> dict:
    """One reduction as account.contributions returns it (transfer fields set by FakeAccount)."""
    n = next(_ids)
    doc = {
        "reduction_id": f"red-{n:06d}",
        "grams": grams,
        "owner_pid": owner,
        "account_id": f"acc-{owner}",
        "credit_entry_id": f"credit-{n}",
        "consent_id": f"consent-{owner}",
        "record_key": f"rec-{n}",
        "scenario": methodology,
        "occurred_at": f"{year}-06-{1 + n % 28:02d}T10:00:00+08:00",
        "methodology_id": methodology,
        "methodology_version": version,
        "factor_set_id": "cn-transport",
        "factor_set_version": "2026.1",
        "traceparent": f"00-{n:032x}-{n:016x}-01",
    }
    doc.update(extra)
    return doc


class FakeAccount:
    """The bank pool chains (POOL_OWNERS) as account's RPCs serve them."""

    def __init__(self):
        self.chains: dict[str, list[dict]] = {}
        self.provenance: dict[str, list[dict]] = {}
        self.calls: list[tuple] = []

    def redeem(self, reductions: list[dict], pool: str = "bank-pool", grams: int | None = None) -> dict:
        """A redemption whose pool transfer completed `reductions` (its grams by default)."""
        chain = self.chains.setdefault(pool, [])
        if not chain:
            self._append(pool, "opened", 0)
        entry = self._append(
            pool, "redemption_transfer", grams if grams is not None else sum(r["grams"] for r in reductions)
        )
        self.provenance[entry["entry_id"]] = [
            dict(r, transfer_entry_id=entry["entry_id"], redemption_entry_id=f"redemption-{entry['entry_id'][:8]}")
            for r in reductions
        ]
        return entry

    def other_entry(self, pool: str = "bank-pool", kind: str = "correction_write_off", grams: int = -5):
        return self._append(pool, kind, grams)

    def _append(self, pool: str, kind: str, grams: int) -> dict:
        chain = self.chains[pool]
        seq = len(chain) + 1
        entry = {
            "entry_id": sm3_hex(f"{pool}-{seq}".encode()),
            "seq": seq,
            "type": kind,
            "grams": grams,
            "owner_pid": pool,
            "posted_at": utc_now_iso(),
        }
        chain.append(entry)
        return entry

    def list_entries_after(self, after_seq=0, limit=500, types=(), account_id=None, owner_pid=None):
        self.calls.append(("list_entries_after", owner_pid, after_seq))
        chain = self.chains.get(owner_pid)
        if not chain:
            raise RemoteError("LookupError", f"no account for {owner_pid}")
        if not 0 < int(limit) <= 1000 or int(after_seq) < 0:
            raise RemoteError("InvalidRequest", "limit must be 1..1000 and after_seq >= 0")
        read = chain[after_seq : after_seq + limit]
        return {
            "entries": [dict(e) for e in read if not types or e["type"] in types],
            "last_seq": read[-1]["seq"] if read else after_seq,
        }

    def correct(self, reduction_id: str, grams: int) -> None:
        """A correction of a redeemed reduction recorded by the ledger (its `locked_redeemed`
        refusal with `corrected_grams`): contributions report min(original, corrected) from now."""
        for carried in self.provenance.values():
            for c in carried:
                if c["reduction_id"] == reduction_id:
                    original = c.get("original_grams", c["grams"])
                    kept = min(original, grams)
                    c.update(grams=kept, original_grams=original, written_off_grams=original - kept)

    def _carried(self, item: dict) -> dict:
        return next(c for c in self.provenance[item["transfer_entry_id"]] if c["reduction_id"] == item["reduction_id"])

    def corrections(self, items):
        self.calls.append(("corrections", len(items)))
        assert len(items) <= 500
        return [
            {
                "reduction_id": c["reduction_id"],
                "transfer_entry_id": c["transfer_entry_id"],
                "grams": c["grams"],
                "original_grams": c["original_grams"],
                "written_off_grams": c["written_off_grams"],
            }
            for c in map(self._carried, items)
            if c.get("written_off_grams", 0) > 0
        ]

    def write_off_corrections(self, items):
        """The pool's `correction_write_off` of each (once per reduction, on the transfer's chain)."""
        self.calls.append(("write_off_corrections", len(items)))
        out = []
        for item in items:
            (pool,) = [
                p for p, chain in self.chains.items() if any(e["entry_id"] == item["transfer_entry_id"] for e in chain)
            ]
            c = self._carried(item)
            if c.get("written_off_grams", 0) <= 0:
                continue  # as the ledger: nothing lowered, nothing written
            done = [e for e in self.chains[pool] if e.get("reduction_id") == item["reduction_id"]]
            entry = done[0] if done else self._append(pool, "correction_write_off", -c["written_off_grams"])
            entry.update(
                reduction_id=item["reduction_id"], corrected_grams=c["grams"], original_grams=c["original_grams"]
            )
            out.append(dict(entry))
        return out

    def contributions(self, transfer_entry_ids):
        self.calls.append(("contributions", len(transfer_entry_ids)))
        assert len(transfer_entry_ids) <= 500
        return {i: copy.deepcopy(self.provenance.get(i, [])) for i in transfer_entry_ids}


# -- the registry ----------------------------------------------------------------------------
class FakeRegistry:
    def __init__(self, participant: str, public_key: str, catalogue=CATALOGUE):
        self.participant, self.bank_key, self.catalogue = participant, public_key, catalogue
        self.private_key, self.public_key = REGISTRY_KEYS
        self.batches: dict[str, dict] = {}  # batch id -> status record
        self.heads: dict[str, tuple[str, int, int]] = {}  # group -> (last issued batch, carried out, next serial)
        self.reductions: dict[str, str] = {}  # reduction id -> batch id
        self.blocks: dict[str, list[dict]] = {}  # batch id -> current blocks
        self.records: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.reject = 0  # the next n new batches are stored as rejected ("injected")
        self.reject_ids: set[str] = set()  # these batch ids are stored as rejected
        self.refuse: list[str] = []  # codes for the next submissions, refused (nothing stored)
        self.lose = 0  # the next n calls do their work and lose the answer (Unknown)
        self.down = 0  # the next n calls do nothing and get no answer (Unknown)

    def _sign(self, body: dict) -> dict:
        body = {"format": "carbon-registry-record/1", **body}
        return {**body, "signature": gm.sm2_sign(self.private_key, signed_bytes(body)).hex()}

    def _fault_before(self, call: str, key: str) -> None:
        self.calls.append((call, key))
        if self.down:
            self.down -= 1
            raise Unknown(f"{call} {key}: no answer")

    def _answer(self, value):
        if self.lose:
            self.lose -= 1
            raise Unknown("the answer was lost")
        return copy.deepcopy(value)

    def submit(self, body: dict) -> dict:
        batch_id = body["batch"]["batch_id"]
        self._fault_before("submit", batch_id)
        if self.refuse:
            code = self.refuse.pop(0)
            raise Rejected(code, f"refused: {code}", 409)
        try:
            sub = validation.parse(body, self.catalogue, 20_000)
        except Exception as error:  # ApiError
            raise Rejected(getattr(error, "code", "invalid_request"), str(error), 422)
        if not gm.sm2_verify(self.bank_key, canonical_bytes(sub.batch), bytes.fromhex(sub.signature)):
            raise Rejected("batch_signature_invalid", "bad signature", 422)
        if batch_id in self.batches:
            return self._outcome(self.batches[batch_id])
        if self.reject or batch_id in self.reject_ids:
            self.reject = max(0, self.reject - 1)
            self.batches[batch_id] = self._status(sub, "rejected", "injected")
            return self._outcome(self.batches[batch_id])
        head_id, carried, next_serial = self.heads.get(sub.group, ("", 0, 1))
        if (sub.batch["carried_from"], sub.batch["carried_in_grams"]) != (head_id, carried):
            raise Rejected("carried_mismatch", f"continue from {head_id!r} carrying {carried}", 409)
        taken = [leaf["reduction_id"] for leaf in sub.leaves if leaf["reduction_id"] in self.reductions]
        if taken:
            raise Rejected("duplicate_reduction", f"{taken[0]} is in another batch", 409)
        units, out = bf.tonnes(sub.batch["carried_in_grams"], sub.batch["quantity_grams"])
        start, end = (next_serial, next_serial + units - 1) if units else (None, None)
        self.heads[sub.group] = (batch_id, out, next_serial + units)
        for leaf in sub.leaves:
            self.reductions[leaf["reduction_id"]] = batch_id
        b = sub.batch
        serial = bf.serial(b["methodology_id"], b["methodology_version"], b["vintage"], start, end) if units else ""
        issue = self._sign(
            {
                "op_id": "issue:" + batch_id,
                "type": "issue",
                "batch_id": batch_id,
                "methodology_id": b["methodology_id"],
                "methodology_version": b["methodology_version"],
                "vintage": b["vintage"],
                "units": units,
                "serial": serial,
                "start": start,
                "end": end,
                "from_holder": "",
                "to_holder": self.participant,
                "beneficiary": "",
                "reason": "",
                "at": utc_now_iso(),
                "carried_out_grams": out,
            }
        )
        self.records[issue["op_id"]] = issue
        self.blocks[batch_id] = [{"start": start, "end": end, "holder": self.participant}] if units else []
        status = self._status(sub, "issued", "")
        status.update(issuance=issue, units=units, carried_out_grams=out, serial=serial)
        self.batches[batch_id] = status
        return self._outcome(status)

    def _status(self, sub, state: str, reason: str) -> dict:
        at = utc_now_iso()
        states = ["submitted", "rejected"] if state == "rejected" else ["submitted", "verified", "issued"]
        return {
            "batch_id": sub.batch_id,
            "status": state,
            "reason": reason,
            "history": [{"state": s, "reason": reason if s == "rejected" else "", "at": at} for s in states],
            "batch": sub.batch,
            "issuance": None,
            "units": 0,
        }

    def _outcome(self, status: dict) -> dict:
        answer = self._answer(status)
        if answer["status"] == "rejected":
            raise Rejected("rejected", answer["reason"])
        return answer

    def status(self, batch_id: str) -> dict | None:
        self._fault_before("status", batch_id)
        found = self.batches.get(batch_id)
        return None if found is None else self._answer(found)

    def _operate(self, kind: str, client_id: str, batch_id: str, units: int, **fields) -> dict:
        self._fault_before(kind, client_id)
        op_id = f"{kind}:{self.participant}:{client_id}"
        if op_id in self.records:
            return self._answer(self.records[op_id])
        if batch_id not in self.blocks:
            raise Rejected("batch_not_issued", batch_id, 409)
        mine = [
            b for b in self.blocks[batch_id] if b["holder"] == self.participant and b["end"] - b["start"] + 1 >= units
        ]
        if not mine:
            raise Rejected("insufficient_units", f"no block of {units}", 409)
        block = min(mine, key=lambda b: b["start"])
        self.blocks[batch_id].remove(block)
        start, end = block["start"], block["start"] + units - 1
        if end < block["end"]:
            self.blocks[batch_id].append({"start": end + 1, "end": block["end"], "holder": self.participant})
        to_holder = fields.get("to_holder", self.participant)
        if kind == "transfer":
            self.blocks[batch_id].append({"start": start, "end": end, "holder": to_holder})
        b = self.batches[batch_id]["batch"]
        record = self._sign(
            {
                "op_id": op_id,
                "type": kind,
                "batch_id": batch_id,
                "methodology_id": b["methodology_id"],
                "methodology_version": b["methodology_version"],
                "vintage": b["vintage"],
                "units": units,
                "serial": bf.serial(b["methodology_id"], b["methodology_version"], b["vintage"], start, end),
                "start": start,
                "end": end,
                "from_holder": self.participant,
                "to_holder": to_holder,
                "beneficiary": fields.get("beneficiary", ""),
                "reason": fields.get("reason", ""),
                "at": utc_now_iso(),
            }
        )
        self.records[op_id] = record
        return self._answer(record)

    def transfer(self, transfer_id, batch_id, units, to_holder):
        return self._operate("transfer", transfer_id, batch_id, units, to_holder=to_holder)

    def retire(self, retirement_id, batch_id, units, beneficiary, reason):
        return self._operate("retire", retirement_id, batch_id, units, beneficiary=beneficiary, reason=reason)

    def cancel(self, cancellation_id, batch_id, units, reason):
        return self._operate("cancel", cancellation_id, batch_id, units, reason=reason)

    def issued(self) -> dict[str, dict]:
        return {k: v for k, v in self.batches.items() if v["status"] == "issued"}


class FakeDispatch:
    def __init__(self):
        self.events: list[tuple[str, dict, str]] = []
        self.fail = 0  # the next n publishes raise (the broker did not confirm)

    def __call__(self, event_type: str, payload: dict, event_id: str = "") -> None:
        validate_payload(event_type, payload)
        if self.fail:
            self.fail -= 1
            raise RuntimeError("broker did not confirm")
        self.events.append((event_type, copy.deepcopy(payload), event_id))

    def of(self, event_type: str) -> list[tuple[dict, str]]:
        return [(p, i) for t, p, i in self.events if t == event_type]
