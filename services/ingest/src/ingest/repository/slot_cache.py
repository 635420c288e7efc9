"""The one thing the API keeps in memory from the store: consent index slots it has read.

Each worker process keeps, per (partner, customer), the chain of `consent_index` slots it has
read so far (`ConsentStore.consents_for`), least recently used first out, at most
SLOT_CACHE_SIZE chains. Safe because a slot never changes once inserted (a consent's terms
are immutable; a revocation is a separate marker, read by every request) and a chain has no
holes, so a request still reads the positions after the cached slots (a new consent is seen at
once) and never takes the end of a chain or a revocation from memory. Slots are never deleted
by the service: whoever removes `consent_index` documents by hand must restart the API.
"""

import threading
from collections import OrderedDict

SLOT_CACHE_SIZE = 50_000  # (partner, customer) chains of consent slots kept per process


class SlotCache:
    """A small thread-safe least-recently-used map (for immutable values only)."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
