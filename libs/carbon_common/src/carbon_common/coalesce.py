"""Concurrent calls of one batched operation, made together: a group commit for reads and inserts.

A gRPC server's threads each make the same round trips (look up a key, insert a document);
on FerretDB every round trip costs a command, whatever it carries. `Coalesced(run)` lets the
threads share them: a caller queues its item; the first caller to arrive while no round runs
leads a round for everything queued (up to `limit`), and callers arriving meanwhile queue for
the next round, led by the first of them. A lone caller runs at once — nobody waits for a timer
— so under light load this costs nothing, and under load one command serves many callers.

`run(items) -> results` gets the round's items in arrival order and returns one result per item;
a result that is an exception is raised in its caller only. If `run` itself raises, every
caller of that round gets the exception. `pick(items) -> indexes` chooses a round's items from
the queue (default: the first `limit`; the first one, the round's leader, is always taken), and
what it leaves waits for the next round (the ledger's group commit takes one per account).
"""

import threading
from typing import Callable, Generic, Iterable, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
_UNSET = object()


class _Waiter:
    __slots__ = ("item", "wake", "result")

    def __init__(self, item):
        self.item = item
        self.wake = threading.Event()
        self.result = _UNSET


class Coalesced(Generic[Item, Result]):
    def __init__(
        self, run: Callable[[list], list], limit: int = 64, pick: Callable[[list], Iterable[int]] | None = None
    ):
        self.run, self.limit = run, limit
        self.pick = pick or (lambda items: range(min(len(items), limit)))
        self._lock = threading.Lock()
        self._queue: list[_Waiter] = []
        self._leading = False

    def __call__(self, item: Item) -> Result:
        mine = _Waiter(item)
        with self._lock:
            self._queue.append(mine)
            lead = not self._leading
            self._leading = True
        if not lead:
            mine.wake.wait()  # its result is in, or it is to lead the next round
            lead = mine.result is _UNSET
        if lead:
            self._lead()
        if isinstance(mine.result, BaseException):
            raise mine.result
        return mine.result

    def _lead(self) -> None:
        with self._lock:
            chosen = set(self.pick([w.item for w in self._queue])) | {0}  # the leader always runs
            group = [w for i, w in enumerate(self._queue) if i in chosen]
            self._queue = [w for i, w in enumerate(self._queue) if i not in chosen]
        try:
            results = self.run([w.item for w in group])
            if len(results) != len(group):
                raise RuntimeError(f"a coalesced round returned {len(results)} results for {len(group)} items")
            for waiter, result in zip(group, results):
                waiter.result = result
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the round
            for waiter in group:
                waiter.result = exc
        finally:
            for waiter in group:
                if waiter.result is _UNSET:  # interrupted by a BaseException: never lead again
                    waiter.result = RuntimeError("coalesced round interrupted")
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()  # no result yet: it leads the next round
                else:
                    self._leading = False
            for waiter in group:
                waiter.wake.set()
