"""Which consumer loop of a batch handler consumes which queue: every shard exactly once in a
process (one writer per account), preferred shards at once, the others on standby."""

import pytest

from carbon_common.batching import assign_queues

SHARDS = ["q.s0", "q.s1", "q.s2", "q.s3"]


@pytest.mark.parametrize("loops", [1, 2, 3, 4, 6])
def test_every_shard_goes_to_exactly_one_loop(loops):
    assigned = assign_queues(SHARDS, set(range(4)), loops)
    consumed = [q for first, later in assigned for q in first + later]
    assert sorted(consumed) == SHARDS  # none twice, none missing
    assert len(assigned) == min(loops, len(SHARDS))  # no idle loop


def test_preferred_shards_are_consumed_at_once_the_others_on_standby():
    assigned = assign_queues(SHARDS, {1, 3}, 2)
    assert sorted(q for first, _ in assigned for q in first) == ["q.s1", "q.s3"]
    assert sorted(q for _, later in assigned for q in later) == ["q.s0", "q.s2"]
    assert all(first for first, _ in assigned)  # each loop writes one preferred shard


def test_a_single_queue_is_shared_by_every_loop():
    assert assign_queues(["calc.q"], {0}, 3) == [(["calc.q"], [])] * 3
    assert assign_queues(["calc.q"], {0}, 0) == [(["calc.q"], [])]  # at least one loop
