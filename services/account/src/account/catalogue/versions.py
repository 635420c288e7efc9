"""Catalogue items and their versions (operators): every change is a new version document,
never an edit; the newest version is found by walking forward from a hint (docs/catalogue.md §1).
A mixin of account.catalogue.catalogue.Catalogue, which holds the state it uses."""

from account.catalogue import items
from account.catalogue.items import (
    ACTIVE,
    RETIRED,
    ItemExists,
    ItemNotAvailable,
    ItemNotFound,
    VersionConflict,
)
from account.ledger import InvalidRequest, LedgerError, RequestKeyReused


class ItemVersions:
    def put_item(
        self, spec: dict, expected_version: int, restock: bool, request_key: str, reason: str = ""
    ) -> tuple[dict, bool]:
        """Create (expected_version 0) or change an item -> (the version, replayed)."""
        self._check_tiers(spec["eligible_tiers"])
        now = items.iso(self.clock())
        item_id = spec["item_id"]
        if expected_version == 0:
            self.store.insert_head(item_id)  # before version 1: a listing sees every item
            wanted = items.new_version(spec, 1, ACTIVE, 1, request_key, reason, now)
            return self._insert(wanted, ItemExists("the item exists: change it with its current version"))
        current = self.current(item_id)
        version = expected_version + 1
        if current["version"] != expected_version:
            wanted = items.new_version(spec, version, ACTIVE, current["stock_batch"], request_key, reason, now)
            return self._replayed(wanted, VersionConflict("expected_version is not the item's current version"))
        if restock:
            batch = version
        elif (spec["stock"], spec["unlimited_stock"]) != (current["stock"], current["unlimited_stock"]):
            raise InvalidRequest("a change of stock or unlimited_stock needs restock", "invalid_stock")
        else:
            batch = current["stock_batch"]
        wanted = items.new_version(spec, version, ACTIVE, batch, request_key, reason, now)
        return self._insert(wanted, VersionConflict("expected_version is not the item's current version"))

    def retire_item(self, item_id: str, expected_version: int, request_key: str, reason: str = "") -> tuple[dict, bool]:
        current = self.current(item_id)
        now = items.iso(self.clock())
        wanted = items.new_version(
            items.spec_of(current), expected_version + 1, RETIRED, current["stock_batch"], request_key, reason, now
        )
        if current["version"] != expected_version:
            return self._replayed(wanted, VersionConflict("expected_version is not the item's current version"))
        if current["status"] == RETIRED:
            raise ItemNotAvailable("the item is retired already", "item_retired")
        return self._insert(wanted, VersionConflict("expected_version is not the item's current version"))

    def _insert(self, wanted: dict, conflict: LedgerError) -> tuple[dict, bool]:
        if self.store.insert_version(wanted):
            self.store.raise_heads({wanted["item_id"]: wanted["version"]})
            self._remember(wanted)
            return wanted, False
        return self._replayed(wanted, conflict)

    def _replayed(self, wanted: dict, conflict: LedgerError) -> tuple[dict, bool]:
        """The version this request wrote before (same request_key), or `conflict`."""
        stored = self.store.versions_by_ids([wanted["_id"]]).get(wanted["_id"])
        if stored is None or stored["request_key"] != wanted["request_key"]:
            raise conflict
        if not items.same_change(stored, wanted):
            raise RequestKeyReused("request_key was used for a different change")
        return stored, True

    def _check_tiers(self, names) -> None:
        known = {name for _, name in self.ops.appender.tiers.levels}
        if set(names) - known:
            raise InvalidRequest(
                "eligible_tiers must name configured tiers (TIER_THRESHOLDS)", "invalid_eligible_tiers"
            )

    def versions(self, item_id: str, page_size: int = 50, page_token: str = "") -> dict:
        """An item's versions, newest first (its audit trail)."""
        newest = self.current(item_id)["version"]
        top = min(int(page_token) - 1, newest) if page_token else newest
        numbers = list(range(top, max(top - (page_size or 50), 0), -1))
        found = self.store.versions_by_ids([items.version_id(item_id, v) for v in numbers])
        versions = [found[items.version_id(item_id, v)] for v in numbers if items.version_id(item_id, v) in found]
        return {"versions": versions, "next_page_token": str(numbers[-1]) if numbers and numbers[-1] > 1 else ""}

    def current(self, item_id: str, fresh: bool = True) -> dict:
        found = self.current_many([item_id], fresh).get(item_id)
        if found is None:
            raise ItemNotFound("no such catalogue item")
        return found

    def current_many(self, item_ids, fresh: bool = True) -> dict[str, dict]:
        """item id -> its newest version: known here or hinted, then walked forward with one
        `$in` by `_id` per step for all of them (`fresh=False`: what is known here, unread)."""
        known = {i: self._current.get(i) for i in dict.fromkeys(item_ids)}
        missing = [i for i, doc in known.items() if doc is None]
        if missing:
            hints = self.store.head_hints(missing)
            hinted = self.store.versions_by_ids([items.version_id(i, v) for i, v in hints.items() if v])
            for i in missing:
                known[i] = hinted.get(items.version_id(i, hints.get(i, 0)))
            frontier = {i: known[i] for i in missing if i in hints}
        else:
            frontier = {}
        if fresh:
            frontier.update({i: doc for i, doc in known.items() if doc is not None})
        while frontier:
            step = {i: items.version_id(i, (doc["version"] if doc else 0) + 1) for i, doc in frontier.items()}
            found = self.store.versions_by_ids(step.values())
            frontier = {i: found[vid] for i, vid in step.items() if vid in found}
            known.update(frontier)
        for doc in known.values():
            if doc is not None:
                self._remember(doc)
        return {i: doc for i, doc in known.items() if doc is not None}

    def _remember(self, doc: dict) -> None:
        with self._lock:
            if self._current.get(doc["item_id"], {}).get("version", 0) < doc["version"]:
                self._current[doc["item_id"]] = doc

    def _forget(self, item_id: str) -> None:
        with self._lock:
            self._current.pop(item_id, None)
