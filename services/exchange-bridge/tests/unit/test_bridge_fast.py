"""The bridge's state machine (exchange_bridge.bridge.Bridge, its real Repository) over fakes:
redeemed reductions become batches per (methodology, version, vintage), issued as whole tonnes
with the remainder carried exactly once — through crashes between any two writes, two bridges
at once, lost answers, rejections (release, re-batch, write-off) and refusals; in seconds, with
no server. The same over the real registry, FerretDB and account: tests/integration/."""

import pytest

from carbon_common import gm
from exchange_bridge import batch_format as bf
from exchange_bridge import intake as intake_module
from exchange_bridge import rules
from exchange_bridge.bridge import Bridge
from exchange_bridge.intake import tails_of
from exchange_bridge.repository import Repository
from exchange_bridge.signer import Signer

from bridge_fakes import Crash, FakeAccount, FakeDatabase, FakeDispatch, FakeRegistry, contribution

TONNE = 1_000_000
PARTICIPANT = "bank-a"
KEYS = gm.generate_sm2_keypair()


class World:
    """One store, one account, one registry, one event bus; `bridge()` is a new process."""

    def __init__(self, min_grams=TONNE, max_leaves=10_000, pool_owners=("bank-pool",)):
        self.db, self.account, self.dispatch = FakeDatabase(), FakeAccount(), FakeDispatch()
        self.registry = FakeRegistry(PARTICIPANT, KEYS[1])
        self.signer = Signer(*KEYS, key_id="k1")
        self.options = dict(min_grams=min_grams, max_leaves=max_leaves, pool_owners=pool_owners)

    def bridge(self) -> Bridge:
        return Bridge(
            self.account, Repository(self.db), self.registry, self.signer, self.dispatch, PARTICIPANT, **self.options
        )

    def run(self) -> dict:
        return self.bridge().run()

    def docs(self, collection: str) -> dict:
        return self.db[collection].docs

    def event_ids(self, event_type: str) -> list[str]:
        return [i for p, i in self.dispatch.of(event_type)]


@pytest.fixture
def world():
    return World()


def issued_reductions(registry) -> list[str]:
    """Every reduction in an issued batch at the registry, with repeats."""
    return sorted(leaf for b, status in registry.issued().items() for leaf in _leaf_ids(registry, b))


def _leaf_ids(registry, batch_id):
    return [rid for rid, owner in registry.reductions.items() if owner == batch_id]


def group_chain(registry, group_batches: list[str]) -> list[tuple[str, int, int]]:
    return [
        (
            registry.batches[b]["batch"]["carried_from"],
            registry.batches[b]["batch"]["carried_in_grams"],
            registry.batches[b]["units"],
        )
        for b in group_batches
    ]


# -- batches per group, whole tonnes, the carried remainder ------------------------------------
def test_several_groups_become_batches_of_their_own_issued_as_whole_tonnes(world):
    metro = [contribution("pid-a", 700_000), contribution("pid-b", 450_000)]
    metro_2025 = [contribution("pid-a", 1_200_000, year=2025)]
    bus = [contribution("pid-c", 300_000, methodology="bus_ride")]  # below a tonne: waits
    world.account.redeem(metro[:1] + metro_2025)
    world.account.redeem(metro[1:] + bus)

    result = world.run()

    assert len(result["registered"]) == 2 and result["failed"] == 0
    batches = {world.registry.batches[b]["batch"]["vintage"]: world.registry.batches[b] for b in result["registered"]}
    assert batches[2026]["batch"]["methodology_id"] == "metro_ride"
    assert (batches[2026]["units"], batches[2026]["carried_out_grams"]) == (1, 150_000)
    assert (batches[2025]["units"], batches[2025]["carried_out_grams"]) == (1, 200_000)
    assert issued_reductions(world.registry) == sorted(c["reduction_id"] for c in metro + metro_2025)
    # the registered event names exactly the batch's reductions, its units and serial block
    registered = {p["vintage"]: p for p, _ in world.dispatch.of("exchange_batch_registered")}
    assert sorted(registered[2026]["reduction_ids"]) == sorted(c["reduction_id"] for c in metro)
    assert registered[2026]["units"] == 1 and registered[2026]["serial_block"].endswith("2026-000000001-000000001")
    assert registered[2026]["serial_start"] == registered[2026]["serial_end"] == registered[2026]["serial_block"]
    assert registered[2026]["grams"] == 1_150_000 and registered[2026]["carried_out_grams"] == 150_000
    # each issued batch went through every state, one event each
    for batch_id in result["registered"]:
        assert [t for t, p, i in world.dispatch.events if batch_id in i] == [
            "exchange_batch_formed",
            "exchange_batch_submitted",
            "exchange_batch_verified",
            "exchange_batch_issued",
            "exchange_batch_registered",
        ]
    assert world.bridge().overview()["groups"][0] == {
        "group": "bus_ride:1:2026",
        "queued_grams": 300_000,
        "pending_grams": 300_000,
        "carried_in_grams": 0,
        "carried_from": "",
        "batches": 0,
        "head_batch_id": "",
        "head_attempt": 0,
        "head_state": "",
    }
    # a second pass: nothing new, nothing sent, nothing announced
    events = len(world.dispatch.events)
    assert world.run()["registered"] == [] and len(world.dispatch.events) == events
    assert [c for c in world.registry.calls if c[0] == "submit"] == [("submit", b) for b in result["registered"]]


def test_the_remainder_is_carried_across_three_batches_of_one_group(world):
    grams = [(700_000, 600_000), (900_000,), (500_000, 400_000, 350_000)]
    issued = []
    for wave in grams:
        world.account.redeem([contribution(f"pid-{g}", g) for g in wave])
        issued += world.run()["registered"]
    assert len(issued) == 3
    chain = group_chain(world.registry, issued)
    # 1.3 t -> 1 unit, 300 kg out; 0.3 + 0.9 = 1.2 t -> 1 unit, 200 kg out; 0.2 + 1.25 = 1.45 t -> 1 unit
    assert chain == [("", 0, 1), (issued[0], 300_000, 1), (issued[1], 200_000, 1)]
    assert world.registry.batches[issued[2]]["carried_out_grams"] == 450_000
    total = sum(sum(w) for w in grams)
    units = sum(world.registry.batches[b]["units"] for b in issued)
    assert units == total // TONNE and world.registry.heads["metro_ride:1:2026"][1] == total % TONNE
    starts = [world.registry.batches[b]["issuance"]["start"] for b in issued]
    assert starts == [1, 2, 3]  # contiguous serials in the group


def test_a_group_below_the_threshold_waits_until_carry_and_queue_reach_it():
    world = World(min_grams=TONNE)
    world.account.redeem([contribution("pid-a", 1_400_000)])
    [first] = world.run()["registered"]  # 1 unit, 400 kg carried out
    world.account.redeem([contribution("pid-a", 500_000)])
    assert world.run()["formed"] == []  # 400 kg + 500 kg < 1 t
    world.account.redeem([contribution("pid-a", 100_000)])
    [second] = world.run()["registered"]  # 400 + 600 = 1 t exactly
    assert group_chain(world.registry, [second]) == [(first, 400_000, 1)]
    assert world.registry.batches[second]["batch"]["record_count"] == 2
    assert world.registry.batches[second]["carried_out_grams"] == 0


def test_a_batch_holds_at_most_max_leaves_and_the_rest_follows():
    world = World(min_grams=1, max_leaves=3)
    world.account.redeem([contribution("pid-a", 100_000) for _ in range(7)])
    result = world.run()
    counts = [world.registry.batches[b]["batch"]["record_count"] for b in result["registered"]]
    assert counts == [3, 3, 1] and len(set(issued_reductions(world.registry))) == 7
    assert [u for _, _, u in group_chain(world.registry, result["registered"])] == [0, 0, 0]  # 700 kg: no unit yet


# -- intake: watermarks, pool chains, legacy and unbatchable transfers ------------------------
def test_a_pass_reads_only_what_is_new_in_each_pool_chain(monkeypatch):
    monkeypatch.setattr(intake_module, "PAGE_SIZE", 2)
    world = World(min_grams=1, pool_owners=("bank-pool/0", "bank-pool/1"))
    for i in range(5):
        world.account.redeem([contribution("pid-a", 10_000 + i)], pool=f"bank-pool/{i % 2}")
    world.account.other_entry("bank-pool/0")  # not a transfer: read past, never batched
    world.run()
    marks = world.bridge().overview()["watermarks"]
    assert marks == {"bank-pool/0": 5, "bank-pool/1": 3}  # opened + transfers (+ the other entry)
    world.account.calls.clear()
    world.account.redeem([contribution("pid-b", 1)], pool="bank-pool/1")
    world.run()
    reads = [c for c in world.account.calls if c[0] == "list_entries_after"]
    assert reads == [
        ("list_entries_after", "bank-pool/0", 5),
        ("list_entries_after", "bank-pool/1", 3),
        ("list_entries_after", "bank-pool/1", 4),
    ]
    assert len(world.registry.reductions) == 6


def test_a_pool_chain_that_does_not_exist_yet_is_skipped(world):
    assert world.run()["intake"] == {"links": 0, "reductions": 0}
    assert world.account.calls == [("list_entries_after", "bank-pool", 0)]


def test_transfers_without_provenance_and_unbatchable_reductions_are_never_queued():
    world = World(min_grams=1)
    world.account.redeem([], grams=5_000)  # a transfer made before provenance existed: stays in the pool
    bad = contribution("pid-a", 2_000, occurred_at="2026-06-01T10:00:00")  # no offset: no vintage
    empty = contribution("pid-a", 3_000, methodology_id="")
    good = contribution("pid-a", 4_000)
    world.account.redeem([bad, empty, good])
    result = world.run()
    assert result["intake"]["reductions"] == 1 and issued_reductions(world.registry) == [good["reduction_id"]]
    offs = world.docs("write_offs")
    assert set(offs) == {bad["reduction_id"], empty["reduction_id"]}
    assert offs[bad["reduction_id"]]["reason"].startswith("unbatchable: occurred_at")
    assert offs[empty["reduction_id"]]["code"] == "unbatchable" and offs[empty["reduction_id"]]["grams"] == 3_000


def test_a_redeemed_reduction_a_correction_lowered_is_batched_at_the_corrected_grams():
    """ADR 0005 §2: the leaf carries min(original, corrected), the account writes the rest off
    the pool once, and a reduction corrected to nothing is written off whole, never queued."""
    world = World(min_grams=1)
    lowered = contribution("pid-a", 3_000, original_grams=4_000, written_off_grams=1_000)
    gone = contribution("pid-a", 0, original_grams=2_000, written_off_grams=2_000)
    kept = contribution("pid-a", 5_000, original_grams=5_000, written_off_grams=0)
    transfer = world.account.redeem([lowered, gone, kept], grams=11_000)
    result = world.run()
    assert result["intake"]["reductions"] == 2 and not world.docs("write_offs")
    queued = {rid: doc["leaf"]["grams"] for rid, doc in world.docs("candidates").items()}
    assert queued == {lowered["reduction_id"]: 3_000, kept["reduction_id"]: 5_000}
    assert issued_reductions(world.registry) == sorted([lowered["reduction_id"], kept["reduction_id"]])
    assert sum(b["batch"]["quantity_grams"] for b in world.registry.batches.values()) == 8_000
    offs = [e for e in world.account.chains["bank-pool"] if e["type"] == "correction_write_off"]
    assert sorted((e["reduction_id"], e["grams"]) for e in offs) == sorted(
        [(lowered["reduction_id"], -1_000), (gone["reduction_id"], -2_000)]
    )
    assert all(e["seq"] > transfer["seq"] for e in offs)
    world.run()  # a later pass reads the write-offs (not transfers) and writes nothing again
    assert len([e for e in world.account.chains["bank-pool"] if e["type"] == "correction_write_off"]) == 2


def correction_scenario(world):
    """Queued below a tonne, then corrected (one lowered, one to nothing), then a tonne is due."""
    world.account.redeem(
        [contribution("pid-a", 700_000, reduction_id="c-1"), contribution("pid-b", 150_000, reduction_id="c-2")]
    )
    world.run()  # intake queues both at their transferred grams; 850 kg: no batch yet
    world.account.correct("c-1", 500_000)
    world.account.correct("c-2", 0)
    world.account.redeem([contribution("pid-c", 600_000, reduction_id="c-3")])


def issued_leaves(world, batch_id: str) -> dict[str, int]:
    """reduction id -> grams of the batch the registry issued (it holds the leaves it verified)."""
    batch = Repository(world.db).batch(batch_id)
    assert sorted(_leaf_ids(world.registry, batch_id)) == sorted(leaf["reduction_id"] for leaf in batch["leaves"])
    return {leaf["reduction_id"]: leaf["grams"] for leaf in batch["leaves"]}


def pool_write_offs(world) -> dict[str, int]:
    offs = [e for e in world.account.chains["bank-pool"] if e["type"] == "correction_write_off"]
    assert len(offs) == len({e["reduction_id"] for e in offs}), "a reduction written off twice"
    return {e["reduction_id"]: e["grams"] for e in offs}


def test_a_correction_after_intake_reaches_the_exchange_at_the_corrected_grams():
    """ADR 0005 §2 when the correction lands after the bridge queued the reduction (the common
    order): the batch is formed at the ledger's corrected grams, the pool writes off the
    difference once, and a reduction corrected to nothing never reaches the exchange."""
    world = World()
    correction_scenario(world)
    assert not world.registry.batches and set(world.docs("candidates")) == {"c-1", "c-2"}
    world.run()
    ((batch_id, status),) = world.registry.issued().items()
    assert issued_leaves(world, batch_id) == {"c-1": 500_000, "c-3": 600_000}
    assert status["batch"]["quantity_grams"] == 1_100_000 and status["units"] == 1
    assert pool_write_offs(world) == {"c-1": -200_000, "c-2": -150_000}
    # every transferred gram is registered or written off, once
    assert 1_100_000 + 200_000 + 150_000 == 700_000 + 150_000 + 600_000
    world.run()
    assert pool_write_offs(world) == {"c-1": -200_000, "c-2": -150_000} and len(world.registry.batches) == 1


def correction_writes() -> int:
    world = World()
    correction_scenario(world)
    world.db.crash_before_write(10_000)
    world.run()
    return world.db.writes


@pytest.mark.parametrize("k", range(1, correction_writes() + 1))
def test_a_correction_arriving_during_a_crashed_formation_is_counted_once(k):
    """A crash anywhere in forming the batch, then a correction of c-3: whether the slot was
    already decided (c-3 goes at the grams it was formed with) or not (c-3 goes corrected and
    the pool writes off the rest), c-3's grams are registered or written off, never both."""
    world = World()
    correction_scenario(world)
    world.db.crash_before_write(k)
    with pytest.raises(Crash):
        world.run()
    world.account.correct("c-3", 450_000)
    world.run()
    ((batch_id, _),) = world.registry.issued().items()
    leaves = issued_leaves(world, batch_id)
    offs = pool_write_offs(world)
    assert leaves["c-1"] == 500_000 and "c-2" not in leaves and offs["c-1"] == -200_000 and offs["c-2"] == -150_000
    assert leaves["c-3"] - offs.get("c-3", 0) == 600_000
    assert leaves["c-3"] in (450_000, 600_000)


# -- crashes, races, lost answers ------------------------------------------------------------
def scenario(world):
    """Two groups, a carried remainder and a second batch, with fixed ids: the reference history."""
    world.account.redeem(
        [
            contribution("pid-a", 700_000, reduction_id="s-1"),
            contribution("pid-b", 500_000, methodology="bus_ride", reduction_id="s-2"),
        ]
    )
    world.account.redeem(
        [
            contribution("pid-b", 600_000, reduction_id="s-3"),
            contribution("pid-c", 600_000, methodology="bus_ride", reduction_id="s-4"),
        ]
    )


def outcome(world) -> dict:
    """What must come out the same however the passes went: issued batches and their chain,
    every reduction issued once, every event id announced."""
    issued = world.registry.issued()
    return {
        "batches": sorted(
            (s["batch"]["batch_id"], s["batch"]["carried_from"], s["batch"]["carried_in_grams"], s["units"])
            for s in issued.values()
        ),
        "reductions": issued_reductions(world.registry),
        "event_ids": sorted({i for _, _, i in world.dispatch.events}),
    }


def writes_of_a_pass() -> int:
    world = World()
    scenario(world)
    world.db.crash_before_write(10_000)
    world.run()
    return world.db.writes


WRITES = writes_of_a_pass()


def test_the_reference_pass():
    world = World()
    scenario(world)
    world.run()
    got = outcome(world)
    assert got["reductions"] == ["s-1", "s-2", "s-3", "s-4"]
    assert [units for *_, units in got["batches"]] == [1, 1]
    assert len(got["event_ids"]) == 2 * 5 and WRITES > 20


@pytest.mark.parametrize("k", range(1, WRITES + 1))
def test_a_crash_before_any_write_is_finished_by_the_next_pass(k):
    world = World()
    scenario(world)
    world.db.crash_before_write(k)
    with pytest.raises(Crash):
        world.run()
    world.run()  # another process, with no memory of the first
    got = outcome(world)
    assert got["reductions"] == ["s-1", "s-2", "s-3", "s-4"]
    assert [units for *_, units in got["batches"]] == [1, 1]
    assert len(got["event_ids"]) == 2 * 5
    # a batch whose outcome the crash hid was looked up, never sent twice
    submits = [b for call, b in world.registry.calls if call == "submit"]
    assert sorted(submits) == [b for b, *_ in got["batches"]]
    calls = len(world.registry.calls)
    assert world.run()["formed"] == [] and len(world.registry.calls) == calls  # settled: nothing more to do


def rejection_scenario(world):
    world.account.redeem(
        [contribution("pid-a", 800_000, reduction_id="j-1"), contribution("pid-b", 400_000, reduction_id="j-2")]
    )
    world.registry.reject_ids = {bf.batch_id("metro_ride", "1", 2026, ["j-1", "j-2"], attempt) for attempt in (1, 2)}


def rejection_writes() -> int:
    world = World()
    rejection_scenario(world)
    world.db.crash_before_write(10_000)
    world.run()
    return world.db.writes


@pytest.mark.parametrize("k", range(1, rejection_writes() + 1))
def test_a_crash_anywhere_in_a_rejection_ends_written_off_once(k):
    world = World()
    rejection_scenario(world)
    world.db.crash_before_write(k)
    with pytest.raises(Crash):
        world.run()
    world.run()
    assert set(world.docs("write_offs")) == {"j-1", "j-2"} and set(world.docs("releases")) == {"j-1", "j-2"}
    events = {(t, i) for t, _, i in world.dispatch.events}
    assert sorted(t for t, _ in events) == sorted(
        ["exchange_batch_formed"] * 2
        + ["exchange_batch_submitted"] * 2
        + ["exchange_batch_rejected"] * 2
        + ["exchange_batch_released", "exchange_batch_written_off"]
    )
    submits = [b for call, b in world.registry.calls if call == "submit"]
    assert sorted(submits) == sorted(world.registry.reject_ids)
    assert world.run()["formed"] == []


@pytest.mark.parametrize("k", range(1, WRITES + 1, 2))
def test_two_bridges_interleaved_at_a_write_issue_each_reduction_once(k):
    world = World()
    scenario(world)
    a, b = world.bridge(), world.bridge()
    world.db.crash_before_write(k)
    with pytest.raises(Crash):
        a.run()  # a stops before write k …
    b.run()  # … b runs a whole pass meanwhile …
    a.run()  # … and a (the same process, its memory intact) goes on
    got = outcome(world)
    assert got["reductions"] == ["s-1", "s-2", "s-3", "s-4"]
    assert [units for *_, units in got["batches"]] == [1, 1]
    slots = world.docs("slots")
    assert len(slots) == 2 and {s["batch_id"] for s in slots.values()} == {x[0] for x in got["batches"]}


def test_two_bridges_forming_the_same_slot_from_different_queues_agree_on_one():
    world = World(min_grams=1)
    world.account.redeem([contribution("pid-a", 100_000, reduction_id="r-1")])
    a, b = world.bridge(), world.bridge()
    head, _ = a.intake.run()
    behind = tails_of(head)  # a's view: r-1 queued
    world.account.redeem([contribution("pid-a", 100_000, reduction_id="r-2")])
    head, _ = b.intake.run()
    ahead = tails_of(head)  # b's view: r-1 and r-2
    [group] = ahead
    result = {"formed": []}
    b_slot = b.lifecycle.form_next(group, 0, None, {}, ahead[group], result)
    a_slot = a.lifecycle.form_next(group, 0, None, {}, behind[group], result)  # too late: b's slot wins
    assert a_slot == b_slot and a_slot["record_count"] == 2 and result["formed"] == [b_slot["batch_id"]]
    assert list(world.docs("batches")) == [b_slot["batch_id"]]
    a.run()
    b.run()
    [issued] = world.registry.issued().values()
    assert issued["batch"]["record_count"] == 2 and list(world.docs("slots")) == [b_slot["_id"]]


def test_a_lost_answer_is_looked_up_not_sent_again(world):
    world.account.redeem([contribution("pid-a", TONNE)])
    world.registry.lose = 1  # issued at the registry, the answer lost
    first = world.run()
    assert first["registered"] == [] and first["failed"] == 1
    second = world.run()
    assert len(second["registered"]) == 1
    assert [call for call, _ in world.registry.calls] == ["submit", "status"]


def test_a_registry_that_does_not_answer_gets_the_batch_once_it_does(world):
    world.account.redeem([contribution("pid-a", TONNE)])
    world.registry.down = 2  # the submission and the next pass's status query get no answer
    assert world.run()["failed"] == 1 and world.run()["failed"] == 1
    assert len(world.run()["registered"]) == 1
    assert [call for call, _ in world.registry.calls] == ["submit", "status", "status", "submit"]


def test_an_event_not_confirmed_is_published_on_the_next_pass(world):
    world.account.redeem([contribution("pid-a", TONNE)])
    world.dispatch.fail = 1  # `formed` is stored, its event not confirmed
    assert world.run()["failed"] == 1
    world.run()
    assert len(world.dispatch.of("exchange_batch_registered")) == 1
    assert [t for t, *_ in world.dispatch.events][0] == "exchange_batch_formed"


# -- rejection, release, re-batch, write-off (rule R2) -----------------------------------------
def test_a_rejected_batch_is_released_re_batched_once_then_written_off(world):
    reductions = [contribution("pid-a", 800_000), contribution("pid-b", 400_000)]
    world.account.redeem(reductions)
    world.registry.reject = 2
    result = world.run()
    assert len(result["rejected"]) == 2 and len(result["released"]) == 1 and len(result["written_off"]) == 1
    first, second = result["rejected"]
    ids = sorted(r["reduction_id"] for r in reductions)
    assert second == bf.batch_id("metro_ride", "1", 2026, ids, attempt=2)
    assert world.registry.batches[second]["batch"]["attempt"] == 2
    assert world.registry.batches[second]["batch"]["carried_from"] == ""  # nothing was issued in the group
    assert set(world.docs("releases")) == set(ids)
    offs = world.docs("write_offs")
    assert set(offs) == set(ids) and {o["first_batch_id"] for o in offs.values()} == {first}
    [(released, _)] = world.dispatch.of("exchange_batch_released")
    assert released["next_batch_id"] == second and sorted(released["reduction_ids"]) == ids
    [(written, _)] = world.dispatch.of("exchange_batch_written_off")
    assert written["grams"] == 1_200_000 and written["first_batch_id"] == first
    # written-off reductions are never queued again; new ones form a new batch (attempt 1)
    fresh = contribution("pid-c", TONNE)
    world.account.redeem([fresh])
    [third] = world.run()["registered"]
    assert world.registry.batches[third]["batch"].get("attempt") is None
    assert issued_reductions(world.registry) == [fresh["reduction_id"]]
    assert world.run()["formed"] == []


def test_a_released_batch_issued_at_its_second_attempt_keeps_the_group_chain(world):
    world.account.redeem([contribution("pid-a", 1_300_000)])
    [first] = world.run()["registered"]
    world.account.redeem([contribution("pid-b", 900_000)])
    world.registry.reject = 1
    result = world.run()
    assert len(result["rejected"]) == 1 and len(result["registered"]) == 1
    [retry] = result["registered"]
    assert world.registry.batches[retry]["batch"]["attempt"] == 2
    # the rejected batch linked nothing: the retry continues from the last issued batch
    assert group_chain(world.registry, [retry]) == [(first, 300_000, 1)]
    assert world.docs("write_offs") == {}


@pytest.mark.parametrize("code", ["invalid_leaf", "duplicate_reduction"])
def test_a_refusal_of_the_content_counts_as_a_rejection(world, code):
    world.account.redeem([contribution("pid-a", TONNE)])
    world.registry.refuse = [code]
    result = world.run()
    assert len(result["rejected"]) == 1 and len(result["registered"]) == 1
    [(rejected, _)] = world.dispatch.of("exchange_batch_rejected")
    assert rejected["code"] == code


@pytest.mark.parametrize("code", ["carried_mismatch", "unknown_participant", "key_revoked", "unknown_methodology"])
def test_any_other_refusal_holds_the_batch_and_sends_it_again(world, code):
    world.account.redeem([contribution("pid-a", TONNE)])
    world.registry.refuse = [code, code]
    for _ in range(2):
        result = world.run()
        assert result["failed"] == 1 and result["rejected"] == []
    batch_id = world.bridge().overview()["groups"][0]["head_batch_id"]
    assert f"{batch_id}:{code}" in world.docs("refusals")
    assert len(world.run()["registered"]) == 1  # the operator fixed it: the same batch goes through
    assert world.docs("releases") == {}


def test_a_reduction_queued_twice_is_batched_once(world):
    twice = contribution("pid-a", 600_000)
    world.account.redeem([twice, dict(twice)])
    world.account.redeem([contribution("pid-b", 500_000)])
    [batch_id] = world.run()["registered"]
    assert world.registry.batches[batch_id]["batch"]["record_count"] == 2


# -- units after issuance --------------------------------------------------------------------
def issued_batch(world, grams=3 * TONNE) -> str:
    world.account.redeem([contribution("pid-a", grams)])
    [batch_id] = world.run()["registered"]
    return batch_id


def test_units_are_transferred_retired_and_cancelled_once_per_request_key(world):
    from exchange_bridge.errors import NotIssued, OperationRefused, RequestKeyReused

    batch_id = issued_batch(world)
    units = world.bridge().units
    moved = units.transfer(batch_id, 1, "bank-b", "move-1")
    assert (moved["start"], moved["end"], moved["state"]) == (1, 1, "transferred")
    assert units.transfer(batch_id, 1, "bank-b", "move-1")["record_id"] == moved["record_id"]  # repeated: same
    retired = units.retire(batch_id, 1, "Alice", "personal offset", "retire-1")
    assert (retired["start"], retired["end"]) == (2, 2)
    cancelled = units.cancel(batch_id, 1, "error", "cancel-1")
    assert (cancelled["start"], cancelled["end"]) == (3, 3)
    assert [c for c, _ in world.registry.calls if c != "submit"] == ["transfer", "retire", "cancel"]
    with pytest.raises(RequestKeyReused):
        units.retire(batch_id, 1, "Bob", "other", "retire-1")
    with pytest.raises(OperationRefused) as refused:
        units.retire(batch_id, 1, "Bob", "nothing left", "retire-2")
    assert refused.value.code == "insufficient_units"
    with pytest.raises(NotIssued):
        units.retire("ab" * 32, 1, "Bob", "x", "retire-3")
    moves = ["exchange_batch_transferred", "exchange_batch_retired", "exchange_batch_cancelled"]
    assert [t for t, _, _ in world.dispatch.events if t in moves] == moves
    status = world.bridge().batch_status(batch_id)
    assert status["state"] == "issued" and len(status["operations"]) == 3


def test_a_unit_operation_whose_answer_was_lost_is_finished_by_calling_again(world):
    from exchange_bridge.errors import OutcomeUnknown

    batch_id = issued_batch(world)
    world.registry.lose = 1
    with pytest.raises(OutcomeUnknown):
        world.bridge().units.retire(batch_id, 2, "Alice", "offset", "r-1")
    again = world.bridge().units.retire(batch_id, 2, "Alice", "offset", "r-1")
    assert (again["start"], again["end"]) == (1, 2)
    assert len(world.dispatch.of("exchange_batch_retired")) == 1
    world.bridge().units.retire(batch_id, 1, "Alice", "offset", "r-2")
    assert [op["op_id"] for op in world.bridge().repo.unit_ops_of(batch_id)] == [
        again["record_id"],
        f"retire:{PARTICIPANT}:{rules.client_id('retire', 'r-2')}",
    ]


# -- what a pass costs -----------------------------------------------------------------------
def test_a_pass_after_many_batches_reads_by_id_only_and_costs_the_same(world):
    bridge = world.bridge()  # one process: its chain hints live as long as it does

    def pass_commands(new_groups: int) -> list:
        """(command, collection, ids asked for) of one pass."""
        for i in range(new_groups):
            world.account.redeem([contribution("pid-a", TONNE, year=2000 + i % 3)])
        world.db.commands.clear()
        bridge.run()
        return [
            (c, coll, len(f["_id"]["$in"]) if isinstance(f["_id"], dict) else 1) for c, coll, f in world.db.commands
        ]

    for _ in range(10):
        pass_commands(3)
    quiet_early = pass_commands(0)
    for _ in range(30):
        pass_commands(3)
    quiet_late = pass_commands(0)
    busy = pass_commands(3)
    assert len(world.registry.issued()) == 123
    assert world.db.not_by_id() == []
    # a quiet pass: the intake head and every group's head slot, in two `$in` reads, whatever the history
    assert quiet_late == quiet_early and quiet_late == [("find", "intake", 2), ("find", "slots", 6)]
    assert len(busy) == len(pass_commands(3)) < 80
    # a new process starts from the stored hints: a few more reads, once
    fresh = world.bridge()
    world.db.commands.clear()
    fresh.run()
    assert world.db.not_by_id() == [] and len(world.db.commands) < 20


def test_batches_in_flight_advance_while_the_account_is_unavailable(world):
    world.account.redeem([contribution("pid-a", TONNE)])
    world.registry.down = 1
    assert world.run()["failed"] == 1  # formed and submitted, no answer

    def unavailable(*args, **kwargs):
        raise RuntimeError("account RPC timed out")

    world.account.list_entries_after = unavailable
    result = world.run()
    assert len(result["registered"]) == 1 and result["failed"] == 1 and result["intake"]["failed"]
