"""Group commit: concurrent workers' inserts into one collection become one insert_many.

FerretDB on SQLite (our dev/CI store) commits each write separately, ~20-40 ms apiece, so one
insert per record caps a service near 50 records/s however many workers run. Here each worker
hands its document to one writer thread and waits; the writer inserts whatever has queued
meanwhile in a single unordered insert_many and tells each worker "inserted" or "duplicate"
(the per-document semantics of insert_one are kept). Works with real threads and under
eventlet monkey-patching (green threads). On MongoDB it simply costs nothing.
"""
import queue
import threading
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


class _Pending:
    __slots__ = ("doc", "done", "inserted", "error")

    def __init__(self, doc: dict):
        self.doc, self.done, self.inserted, self.error = doc, threading.Event(), False, None


class GroupCommit:
    def __init__(self, collection: Collection, max_batch: int = 128):
        self.collection, self.max_batch = collection, max_batch
        self._queue: "queue.Queue[_Pending]" = queue.Queue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    def insert(self, doc: dict) -> bool:
        """True if inserted now, False if a document with that _id exists; raises other errors."""
        self._ensure_writer()
        pending = _Pending(doc)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.inserted

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._run, name="calc-group-commit", daemon=True)
                self._writer.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        failed: dict[int, Any] = {}
        try:
            self.collection.insert_many([p.doc for p in batch], ordered=False)
        except BulkWriteError as exc:
            failed = {e["index"]: e for e in exc.details.get("writeErrors", [])}
        except Exception as exc:  # the store is down: every waiting worker fails (and is retried)
            failed = {i: exc for i in range(len(batch))}
        for i, pending in enumerate(batch):
            error = failed.get(i)
            if error is None:
                pending.inserted = True
            elif isinstance(error, dict) and error.get("code") == DUPLICATE_KEY:
                pending.inserted = False
            else:
                pending.error = error if isinstance(error, Exception) else RuntimeError(f"insert failed: {error}")
            pending.done.set()
