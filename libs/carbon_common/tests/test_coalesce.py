"""carbon_common.coalesce: concurrent callers share rounds, each gets its own result, a lone
caller never waits, and a failure stays in the round it happened in."""

import threading

import pytest

from carbon_common.coalesce import Coalesced
from carbon_dev.testing import wait_until


def test_a_lone_call_runs_at_once_in_its_own_round():
    rounds = []
    double = Coalesced(lambda items: rounds.append(list(items)) or [2 * i for i in items])
    assert double(4) == 8 and double(5) == 10
    assert rounds == [[4], [5]]


def test_concurrent_callers_share_rounds_and_each_gets_its_own_result():
    rounds, entered, release = [], threading.Event(), threading.Event()

    def run(items):
        rounds.append(list(items))
        if len(rounds) == 1:  # hold the first round until everyone else has queued
            entered.set()
            release.wait(10)
        return [f"r{i}" for i in items]

    square = Coalesced(run, limit=16)
    results = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, square(0)))
    first.start()
    entered.wait(10)
    others = [threading.Thread(target=lambda n=n: results.__setitem__(n, square(n))) for n in range(1, 41)]
    for t in others:
        t.start()
    wait_until(lambda: len(square._queue) == 40, interval=0.001, message="40 callers queued behind the held round")
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert results == {n: f"r{n}" for n in range(41)}
    assert [len(r) for r in rounds] == [1, 16, 16, 8]  # the limit bounds a round; order kept
    assert sorted(i for r in rounds for i in r) == list(range(41))


def test_an_exception_result_is_raised_in_its_own_caller_only():
    checked = Coalesced(lambda items: [ValueError(i) if i < 0 else i for i in items])
    assert checked(3) == 3
    with pytest.raises(ValueError):
        checked(-1)


def test_a_failed_round_fails_its_callers_and_the_next_round_runs():
    calls = []

    def run(items):
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("the store is down")
        return items

    echo = Coalesced(run)
    with pytest.raises(ConnectionError):
        echo("a")
    assert echo("b") == "b"
    with pytest.raises(RuntimeError, match="2 results for 1"):
        Coalesced(lambda items: [1, 2])("x")


def test_pick_leaves_items_for_later_rounds_in_order():
    """The ledger's rule: one item per key a round; the others wait, and every caller still
    gets its own result."""
    rounds, entered, release = [], threading.Event(), threading.Event()

    def run(items):
        rounds.append(list(items))
        if len(rounds) == 1:
            entered.set()
            release.wait(10)
        return [f"r{n}" for _, n in items]

    def one_per_key(items):
        seen, taken = set(), []
        for i, (key, _) in enumerate(items):
            if key not in seen:
                seen.add(key)
                taken.append(i)
        return taken

    keyed = Coalesced(run, pick=one_per_key)
    results = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, keyed(("a", 0))))
    first.start()
    entered.wait(10)
    others = [threading.Thread(target=lambda n=n: results.__setitem__(n, keyed(("ab"[n % 2], n)))) for n in range(1, 7)]
    for t in others:
        t.start()
    wait_until(lambda: len(keyed._queue) == 6, interval=0.001, message="6 callers queued behind the held round")
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert results == {n: f"r{n}" for n in range(7)}
    assert all(len({key for key, _ in r}) == len(r) for r in rounds)  # never two of one key in a round
    assert sorted(n for r in rounds for _, n in r) == list(range(7))
