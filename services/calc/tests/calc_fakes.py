"""In-memory stand-ins for calc's CalcRepository and publisher, for tests without servers.

FakeCalcRepository keeps the contract of `calc.repository.CalcRepository` that processing and
recalculation rely on (tests/integration/test_calc_repository_contract.py runs the same
assertions against both):
  outcomes   unique _id (the reduction_id of record_key and revision): `save_outcomes` inserts
             each new one and returns the one stored first for a taken _id, also within one
             batch; what comes back is decoded from the JSON strings the real one stores
  reversals  unique _id (the reversed reduction_id): the first stored wins
  locks      unique _id (a reduction registered at the exchange); `lock` says how many were new
  forgotten  unique _id (a pseudonym whose deletion request reached calc); `forget_person`
             rewrites the person's outcomes and reversals without the pseudonym, and a
             forgotten outcome is never read for recalculation
Stored times are cut to milliseconds, as BSON does.
"""

import copy
from datetime import datetime

from carbon_common.clock import utc_now

from calc.repository import CalcRepository


def _as_stored(moment: datetime) -> datetime:
    """A time as a BSON date reads it back: milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class FakeCalcRepository:
    def __init__(self):
        self._outcomes: dict[str, dict] = {}  # _id -> the document as stored (JSON strings)
        self._reversals: dict[str, dict] = {}
        self._locks: dict[str, dict] = {}
        self._forgotten: dict[str, dict] = {}

    def ensure_indexes(self) -> None:
        """Query indexes only: nothing to do in memory."""

    # outcomes -------------------------------------------------------------------------------
    def save_outcomes(self, docs: list[dict]) -> list[tuple[dict, bool]]:
        out = []
        for doc in docs:
            stored = self._outcomes.get(doc["_id"])
            if stored is not None:
                out.append((CalcRepository._decode(stored), False))
                continue
            encoded = CalcRepository._encode(doc)
            self._outcomes[doc["_id"]] = {**encoded, "stored_at": _as_stored(encoded["stored_at"])}
            out.append((doc, True))
        return out

    def _pinned(self, kind: str, item_id: str, version: str) -> list[dict]:
        prefix = "methodology" if kind == "methodology" else "factor_set"
        return [
            d
            for _, d in sorted(self._outcomes.items())
            if d["kind"] == "reduction"
            and d.get(f"{prefix}_id") == item_id
            and d.get(f"{prefix}_version") == version
            and not d.get("forgotten")
        ]

    def pinned_to(self, kind: str, item_id: str, version: str):
        return iter([CalcRepository._decode(d) for d in self._pinned(kind, item_id, version)])

    def count_pinned_to(self, kind: str, item_id: str, version: str) -> int:
        return len(self._pinned(kind, item_id, version))

    # deletion requests -----------------------------------------------------------------------
    def insert_forgotten(self, user_pid: str, requested_at: str) -> bool:
        if user_pid in self._forgotten:
            return False
        self._forgotten[user_pid] = {"_id": user_pid, "requested_at": requested_at}
        return True

    def forgotten_among(self, user_pids) -> set:
        return {p for p in user_pids if p in self._forgotten}

    def scrub_outcomes(self, docs) -> int:
        docs = list(docs)
        for doc in docs:
            clean = CalcRepository._encode(CalcRepository.without_person(CalcRepository._decode(doc)))
            self._outcomes[doc["_id"]] = {**self._outcomes[doc["_id"]], **clean, "stored_at": doc["stored_at"]}
        return len(docs)

    def scrub_outcomes_by_ids(self, outcome_ids) -> int:
        return self.scrub_outcomes([dict(self._outcomes[i]) for i in dict.fromkeys(outcome_ids) if i in self._outcomes])

    def forget_person(self, user_pid: str, requested_at: str) -> dict:
        new = self.insert_forgotten(user_pid, requested_at)
        naming = [
            dict(d) for d in self._outcomes.values() if CalcRepository._decode(d)["record"].get("user_pid") == user_pid
        ]
        reversals = 0
        for doc in self._reversals.values():
            if doc["payload"].get("user_pid") == user_pid:
                doc["payload"]["user_pid"], doc["forgotten"] = "", True
                reversals += 1
        return {"new": new, "outcomes": self.scrub_outcomes(naming), "reversals": reversals}

    # reversals and locks ----------------------------------------------------------------------
    def save_reversal(self, payload) -> tuple[dict, bool]:
        stored = self._reversals.get(payload["reduction_id"])
        if stored is not None:
            return copy.deepcopy(stored), False
        doc = {"_id": payload["reduction_id"], "payload": dict(payload), "stored_at": utc_now()}
        self._reversals[doc["_id"]] = {**copy.deepcopy(doc), "stored_at": _as_stored(doc["stored_at"])}
        return doc, True

    def is_reversed(self, reduction_id: str) -> bool:
        return reduction_id in self._reversals

    def reversed_among(self, reduction_ids) -> set:
        return {r for r in reduction_ids if r in self._reversals}

    def lock(self, reduction_ids, batch_id: str) -> int:
        new = [r for r in dict.fromkeys(reduction_ids) if r not in self._locks]
        for r in new:
            self._locks[r] = {"_id": r, "batch_id": batch_id, "locked_at": _as_stored(utc_now())}
        return len(new)

    def is_locked(self, reduction_id: str) -> bool:
        return reduction_id in self._locks

    def lock_of(self, reduction_id: str) -> dict | None:
        found = self._locks.get(reduction_id)
        return dict(found) if found else None


class FakePublisher:
    """What calc publishes through: `publish_many` (a confirmed batch, as the service's
    BatchDispatcher) and `publish` (one event, as EventPublisher in the recalculation CLI).
    Both record (event_type, payload, event_id) in `published`, in order."""

    def __init__(self):
        self.published: list[tuple[str, dict, str]] = []

    def publish_many(self, items) -> None:
        self.published.extend((event_type, payload, event_id) for event_type, payload, event_id, _ in items)

    def publish(self, event_type: str, payload: dict, event_id: str = "") -> None:
        self.published.append((event_type, payload, event_id))

    def of(self, event_type: str) -> list[dict]:
        return [payload for t, payload, _ in self.published if t == event_type]
