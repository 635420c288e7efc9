"""A bridge pass asks FerretDB only for `_id` lookups, and costs the same whatever the history.

FerretDB v1 scans a whole collection for any other filter (docs/adr/0002-insert-only-storage-on-ferretdb.md),
so a pass that filtered on anything else would cost more with every batch ever made. These
tests record every command the bridge's database client sends (carbon_dev.testing's
FilterRecorder) while the real Repository runs on FerretDB; the account and the registry are the
unit suite's fakes (what they cost is theirs)."""

import pytest

from carbon_common import gm
from exchange_bridge.bridge import Bridge
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

from bridge_fakes import FakeAccount, FakeDispatch, FakeRegistry, contribution

pytestmark = pytest.mark.integration
TONNE = 1_000_000


@pytest.fixture
def recorded_bridge(recorded_database):
    make, recorder = recorded_database
    keys = gm.generate_sm2_keypair()
    account, registry = FakeAccount(), FakeRegistry("bank-a", keys[1])
    db = make("bridge")

    def bridge() -> Bridge:  # a process: a Repository of its own (its chain hints)
        return Bridge(account, Repository(db), registry, Signer(*keys), FakeDispatch(), "bank-a", min_grams=TONNE)

    return bridge, account, registry, recorder


def shape(commands) -> list[tuple[str, str, int]]:
    """(command, collection, ids asked for)."""
    return [(c, coll, len(f["_id"]["$in"]) if isinstance(f.get("_id"), dict) else 1) for c, coll, f in commands]


def test_a_pass_after_many_batches_sends_only_id_reads_and_inserts(recorded_bridge):
    make, account, registry, recorder = recorded_bridge
    bridge = make()

    def one_pass(new: int) -> list:
        for i in range(new):  # four groups (metro and bus, 2025 and 2026); carried remainders
            methodology = "bus_ride" if i % 3 == 2 else "metro_ride"
            account.redeem([contribution(f"pid-{i % 5}", 700_000, methodology=methodology, year=2025 + i % 2)])
        recorder.clear()
        bridge.run()
        return list(recorder.commands)

    for _ in range(3):
        one_pass(6)
    quiet_early, busy_early = one_pass(0), one_pass(6)
    for _ in range(12):
        one_pass(6)
    quiet_late, busy_late = one_pass(0), one_pass(6)
    assert len(registry.issued()) > 40
    assert recorder.not_by_id() == []
    # a quiet pass: the intake head and the 4 groups' head slots, two `$in` reads, after 10 or 40 batches
    assert shape(quiet_late) == shape(quiet_early) == [("find", "intake", 2), ("find", "slots", 8)]
    # a busy pass costs what its new work costs, not what came before it
    assert len(busy_late) == len(busy_early)
    # another process starts from the stored hints: a few more `_id` reads, once
    recorder.clear()
    make().run()
    assert recorder.not_by_id() == [] and len(recorder.commands) < 20


def test_recovery_after_a_crash_reads_by_id_only(recorded_bridge):
    from exchange_bridge import lifecycle

    make, account, registry, recorder = recorded_bridge
    account.redeem([contribution("pid-a", 1_500_000)])
    bridge = make()
    original = lifecycle.Lifecycle.send

    def die(self, *args, **kwargs):
        raise KeyboardInterrupt  # the process dies after forming, before sending

    lifecycle.Lifecycle.send = die
    try:
        with pytest.raises(KeyboardInterrupt):
            bridge.run()
    finally:
        lifecycle.Lifecycle.send = original
    recorder.clear()
    assert len(make().run()["registered"]) == 1
    assert recorder.not_by_id() == []
