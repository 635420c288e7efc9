"""Enterprise accounts (account.enterprise) over the fake ledger repository and the fake
enterprise store: links with consent (idempotent, refusals write nothing, races), the read model
built from the ledger's own events (only credits posted while linked count, reversals subtract,
any order, redelivery and a crash write nothing twice), the withholding rule, and enterprise
scope on the crediting path. The same on FerretDB and through the real gRPC server:
tests/integration/test_enterprise_*.py."""

import pytest

from account import ledger
from account.enterprise import links
from account.enterprise.enterprise import Enterprises
from account.enterprise.links import AlreadyLinked, NotLinked
from account.enterprise.readmodel import ReadModel, item_of
from account.enterprise.scope import SCOPE_MISMATCH, ScopeGuard
from account.ledger import AccountNotOpen, InvalidRequest, RequestKeyReused
from account.operations import LedgerOperations
from account.outbox import events_for
from account.tiers import Tiers
from carbon_dev import payloads

from account_fakes import FakeRepository
from enterprise_fakes import FakeEnterpriseStore

_n = iter(range(1, 10**9))
CONSENTED = "2026-12-01T02:00:00.000000Z"
ENTERPRISE_PID = "pid-acme"
ACME = ledger.account_id_for(ENTERPRISE_PID)


class World:
    def __init__(self, min_group=5):
        self.repo = FakeRepository()
        self.ops = LedgerOperations(self.repo, Tiers("seedling:0,sprout:1000,tree:10000"))
        self.store = FakeEnterpriseStore()
        self.enterprises = Enterprises(self.ops, self.store, min_group=min_group)
        self.readmodel = ReadModel(self.enterprises)
        self.ops.open_account(ENTERPRISE_PID, "enterprise")

    def employee(self, name: str) -> str:
        return self.ops.open_account(f"pid-{name}")["_id"]

    def link(self, employee_id, enterprise_id=ACME, key=None, consent_ref="cons-1"):
        return self.enterprises.link(employee_id, enterprise_id, key or f"link-{next(_n)}", consent_ref, CONSENTED)

    def unlink(self, employee_id, enterprise_id=ACME, key=None):
        return self.enterprises.unlink(employee_id, enterprise_id, key or f"unlink-{next(_n)}")

    def credit(self, name: str, grams: int, scenario="metro_ride", apply=True) -> dict:
        entry = self.ops.credit(payloads.reduction(f"pid-{name}", next(_n), grams, scenario=scenario))
        if apply:
            self.apply(entry)
        return entry

    def reverse(self, credit: dict, apply=True) -> dict:
        entry = self.ops.reverse(
            {
                "reduction_id": credit["reduction_id"],
                "record_key": credit["record_key"],
                "user_pid": credit["owner_pid"],
                "scenario": credit["scenario"],
                "reason": "factor_corrected",
            }
        )
        if apply:
            self.apply(entry)
        return entry

    def items(self, *entries):
        out = []
        for entry in entries:
            for event_type, _, payload in events_for(entry):
                item = item_of(event_type, payload)
                if item is not None:
                    out.append(item)
        return out

    def apply(self, *entries) -> dict:
        return self.readmodel.apply(self.items(*entries))

    def view(self, period=None, enterprise_id=ACME) -> dict:
        month = period or links.period_of(ledger.utc_now_iso())
        return self.enterprises.aggregate(enterprise_id, month)

    def groups(self, **kw) -> dict:
        return {g["scenario"]: g for g in self.view(**kw)["groups"]}


@pytest.fixture
def world():
    return World()


# --- linking -------------------------------------------------------------------------------------


def test_an_employee_links_with_consent_sees_it_and_unlinks(world):
    alice = world.employee("alice")
    view, doc, replayed = world.link(alice, key="k1", consent_ref="app-consent-77")
    assert (view["linked"], replayed, doc["_id"], doc["action"]) == (True, False, f"{ACME}:{alice}:0", "link")
    assert (doc["consent_ref"], doc["consented_at"]) == ("app-consent-77", CONSENTED)
    [mine] = world.enterprises.links_of(alice)
    assert mine["linked"] and mine["consent_ref"] == "app-consent-77" and mine["consented_at"] == CONSENTED
    view, doc, _ = world.unlink(alice, key="k2")
    assert (view["linked"], doc["_id"], doc["action"]) == (False, f"{ACME}:{alice}:1", "unlink")
    [mine] = world.enterprises.links_of(alice)
    assert (mine["linked"], mine["unlinked_at"], mine["consent_ref"]) == (False, doc["at"], "app-consent-77")
    # linked again: a new consent, the chain goes on; the employee's index names the enterprise once
    view, doc, _ = world.link(alice, consent_ref="app-consent-90")
    assert doc["n"] == 2 and view["consent_ref"] == "app-consent-90"
    assert [d["enterprise_id"] for d in world.store.collections["members"].values()] == [ACME]


def test_a_repeated_request_is_a_replay_and_a_reused_key_is_refused(world):
    alice = world.employee("alice")
    first = world.link(alice, key="k1")
    again = world.link(alice, key="k1")
    assert again[1] == first[1] and again[2] is True
    world.unlink(alice, key="k2")
    assert world.link(alice, key="k1")[2] is True  # still the first link, even after the unlink
    with pytest.raises(RequestKeyReused):
        world.link(alice, key="k1", consent_ref="another")
    with pytest.raises(RequestKeyReused):
        world.unlink(alice, key="k1")
    assert len(world.store.collections["links"]) == 2


def test_refusals_write_nothing(world):
    alice, bob = world.employee("alice"), world.employee("bob")
    world.ops.open_account("pid-globex", "enterprise")
    globex = ledger.account_id_for("pid-globex")
    world.ops.set_status(globex, "frozen", "freeze-1")
    world.link(alice)
    before = {name: dict(coll) for name, coll in world.store.collections.items() if name != "meta"}
    cases = [
        (lambda: world.link(alice), AlreadyLinked),
        (lambda: world.unlink(bob), NotLinked),
        (lambda: world.link(alice, enterprise_id=bob), InvalidRequest),  # not an enterprise
        (lambda: world.link(ACME, enterprise_id=ACME), InvalidRequest),  # an enterprise is no employee
        (lambda: world.link(bob, enterprise_id=globex), AccountNotOpen),
        (lambda: world.link("acc_" + "0" * 32), LookupError),
        (lambda: world.enterprises.link(bob, ACME, "k-future", "c", "2999-01-01T00:00:00.000000Z"), InvalidRequest),
        (lambda: world.enterprises.link(bob, ACME, "k-none", "", CONSENTED), InvalidRequest),
    ]
    for call, error in cases:
        with pytest.raises(error):
            call()
    assert {name: dict(coll) for name, coll in world.store.collections.items() if name != "meta"} == before
    codes = []
    for call in (lambda: world.link(alice, enterprise_id=bob), lambda: world.link(ACME, enterprise_id=ACME)):
        with pytest.raises(InvalidRequest) as refused:
            call()
        codes.append(refused.value.code)
    assert codes == ["not_enterprise", "not_individual"]


def test_an_employee_can_unlink_whatever_the_accounts_status(world):
    alice = world.employee("alice")
    world.link(alice)
    world.ops.set_status(ACME, "frozen", "f-1")
    world.ops.set_status(alice, "closed", "c-1")
    assert world.unlink(alice)[0]["linked"] is False


def test_two_processes_racing_on_one_pair_decide_on_the_newer_state(world):
    alice = world.employee("alice")
    other = Enterprises(world.ops, world.store)  # another process: its own caches
    world.link(alice, key="a1")
    assert other.chains([(ACME, alice)])[(ACME, alice)].linked  # `other` caches a chain of one link
    world.unlink(alice, key="a2")
    with pytest.raises(NotLinked):  # walks forward from its cache: sees the unlink
        other.unlink(alice, ACME, "b1")
    # a lost race on the chain position: the loser reads again and decides again
    world.store.fail_next["insert_link"] = None
    real_insert = world.store.insert_link

    def first_someone_else(doc):
        world.store.insert_link = real_insert
        other.link(alice, ACME, "b2", "cons-b", CONSENTED)  # takes position 2 first
        return real_insert(doc)

    world.store.insert_link = first_someone_else
    with pytest.raises(AlreadyLinked):
        world.link(alice, key="a3")
    assert [d["request_key"] for d in world.enterprises.chains([(ACME, alice)])[(ACME, alice)].docs] == [
        "a1",
        "a2",
        "b2",
    ]


def test_a_crash_after_the_request_claim_is_completed_by_the_retry(world):
    alice = world.employee("alice")
    world.store.fail_next["insert_link"] = RuntimeError("store down")
    with pytest.raises(RuntimeError):
        world.link(alice, key="k1")
    assert world.store.collections["links"] == {}
    view, doc, replayed = world.link(alice, key="k1")
    assert view["linked"] and not replayed and doc["request_key"] == "k1"


# --- the read model --------------------------------------------------------------------------------


def test_only_credits_posted_while_linked_count(world):
    alice = world.employee("alice")
    world.credit("alice", 100)  # before the link
    world.link(alice)
    world.credit("alice", 30)
    world.unlink(alice)
    world.credit("alice", 700)  # after the unlink
    world.link(alice)
    world.credit("alice", 5)
    world.enterprises.min_group = 1
    assert world.groups()["metro_ride"]["grams"] == 35


def test_the_aggregate_is_the_sum_of_linked_employees_per_scenario_and_small_groups_are_withheld(world):
    names = [f"e{i}" for i in range(6)]
    for name in names:
        world.link(world.employee(name))
    world.employee("outsider")
    expected = 0
    for i, name in enumerate(names):
        expected += world.credit(name, 100 + i)["grams"]
    for name in names[:4]:  # four bike riders: fewer than 5
        world.credit(name, 40, scenario="bike_ride")
    world.credit("outsider", 10_000)
    view = world.view()
    groups = {g["scenario"]: g for g in view["groups"]}
    assert groups["metro_ride"] == {
        "scenario": "metro_ride",
        "withheld": False,
        "contributors": 6,
        "grams": expected,
        "reversed_grams": 0,
    }
    assert groups["bike_ride"] == {
        "scenario": "bike_ride",
        "withheld": True,
        "contributors": 0,
        "grams": 0,
        "reversed_grams": 0,
    }
    assert (view["reported_grams"], view["withheld_groups"]) == (expected, 1)
    # a fifth rider: the group is shown
    world.credit(names[4], 40, scenario="bike_ride")
    assert world.groups()["bike_ride"]["contributors"] == 5 and world.groups()["bike_ride"]["grams"] == 200


def test_a_reversal_subtracts_where_its_credit_counted_in_either_order(world):
    world.enterprises.min_group = 1
    alice, bob = world.employee("alice"), world.employee("bob")
    world.link(alice)
    world.link(bob)
    credit = world.credit("alice", 300)
    world.credit("alice", 20)
    world.reverse(credit)
    assert (world.groups()["metro_ride"]["grams"], world.groups()["metro_ride"]["reversed_grams"]) == (20, 300)
    # bob: the reversal's event is handled before the credit's (two queues)
    late = world.credit("bob", 250, apply=False)
    reversal = world.reverse(late, apply=False)
    world.apply(reversal)
    world.apply(late)
    group = world.groups()["metro_ride"]
    assert (group["grams"], group["reversed_grams"], group["contributors"]) == (20, 550, 1)
    # bob's credit was all taken back: bob is no contributor
    # a reversal of a credit that counted nowhere counts nowhere either
    world.unlink(alice)
    world.reverse(world.credit("alice", 80))
    assert world.groups()["metro_ride"]["grams"] == 20


def test_a_group_whose_credits_were_all_taken_back_has_no_contributor(world):
    world.enterprises.min_group = 1
    world.link(world.employee("alice"))
    world.reverse(world.credit("alice", 300))
    assert world.groups()["metro_ride"]["withheld"] is True


def test_a_redelivery_writes_nothing_and_a_crash_between_slot_and_contribution_counts_once(world):
    world.enterprises.min_group = 1
    alice = world.employee("alice")
    world.link(alice)
    entry = world.credit("alice", 120, apply=False)
    world.apply(entry)
    written = dict(world.store.writes)
    assert world.apply(entry) == {"credits": 0, "reversals": 0, "contributions": 0, "slots": 0}
    assert world.store.writes == written
    # the slot written, the contribution document not: the redelivery writes the slot again
    second = world.credit("alice", 7, apply=False)
    world.store.fail_next["insert_contributions"] = RuntimeError("process died")
    with pytest.raises(RuntimeError):
        world.apply(second)
    world.apply(second)
    month = links.period_of(second["posted_at"])
    assert len(world.enterprises.slots(ACME, month)) == 3
    assert world.groups()["metro_ride"]["grams"] == 127


def test_the_enterprise_never_sees_an_employee_id_and_pseudonyms_differ_per_enterprise(world):
    world.ops.open_account("pid-globex", "enterprise")
    globex = ledger.account_id_for("pid-globex")
    alice = world.employee("alice")
    world.link(alice)
    world.link(alice, enterprise_id=globex)
    credit = world.credit("alice", 60)
    month = links.period_of(credit["posted_at"])
    [acme_slot] = world.enterprises.slots(ACME, month)
    [globex_slot] = world.enterprises.slots(globex, month)
    text = repr(acme_slot) + repr(globex_slot)
    assert alice not in text and "pid-alice" not in text
    assert acme_slot["contributions"][0]["pseudonym"] != globex_slot["contributions"][0]["pseudonym"]
    assert acme_slot["contributions"][0]["grams"] == globex_slot["contributions"][0]["grams"] == 60


def test_events_the_read_model_does_not_act_on(world):
    world.enterprises.min_group = 1
    alice = world.employee("alice")
    world.link(alice)
    world.credit("alice", 500)
    redemption, _ = world.ops.redeem(alice, 100, "r-1", "tea")
    assert world.items(redemption) == []  # a redemption is the employee's own business
    world.ops.credit(payloads.reduction(ENTERPRISE_PID, next(_n), 9_000, scenario="green_electricity_office"))
    assert world.apply(*world.repo.account_entries(ACME)) == {
        "credits": 0,
        "reversals": 0,
        "contributions": 0,
        "slots": 0,
    }
    with pytest.raises(ValueError):
        item_of("account_credited", {"reason": "reduction", "entry": {"account_kind": "individual"}})


def test_a_month_is_read_by_id_only_and_slots_stay_contiguous(world):
    world.enterprises.min_group = 1
    alice = world.employee("alice")
    world.link(alice)
    other = Enterprises(world.ops, world.store, min_group=1)  # a second read-model process
    for i in range(70):
        entry = world.credit("alice", 1, apply=False)
        (world.readmodel if i % 3 else ReadModel(other)).apply(world.items(entry))
    month = links.period_of(ledger.utc_now_iso())
    ids = sorted(world.store.collections["slots"], key=lambda s: int(s.rsplit(":", 1)[1]))
    assert [int(s.rsplit(":", 1)[1]) for s in ids] == list(range(70))
    assert world.groups()["metro_ride"]["grams"] == 70
    assert world.view(period=month)["slots_read"] == 70
    # a new process finds the first free slot with a few single lookups (galloping), not a scan
    reads = world.store.reads["slots"]
    assert Enterprises(world.ops, world.store).next_slot(ACME, month) == 70
    assert world.store.reads["slots"] - reads <= 2 * 7 + 2


def test_two_batches_of_one_process_racing_for_a_slot_leave_no_hole(world):
    """Two consumer loops of one process share the slot cursor: the loser of a position moves
    to the next one, not past the winner's next (a hole would hide every later slot)."""
    world.enterprises.min_group = 1
    alice = world.employee("alice")
    world.link(alice)
    first, second = (world.credit("alice", g, apply=False) for g in (10, 20))
    real_insert = world.store.insert_slots

    def the_other_loop_first(docs):
        world.store.insert_slots = real_insert
        world.readmodel.apply(world.items(first))  # takes the position this batch chose
        return real_insert(docs)

    world.store.insert_slots = the_other_loop_first
    world.readmodel.apply(world.items(second))
    month = links.period_of(first["posted_at"])
    assert sorted(world.store.collections["slots"]) == [links.slot_id(ACME, month, n) for n in (0, 1)]
    assert world.groups()["metro_ride"]["grams"] == 30


# --- enterprise scope ---------------------------------------------------------------------------------


def test_enterprise_scope_credits_enterprises_only_and_declines_the_rest(world):
    guard = ScopeGuard(world.ops)
    world.employee("alice")
    office = payloads.reduction(ENTERPRISE_PID, next(_n), 4_642_800, scenario="green_electricity_office")
    by_person = payloads.reduction(
        "pid-alice", next(_n), 9_000, scenario="green_electricity_office", dedup_key="cert-1"
    )
    ride_of_enterprise = payloads.reduction(ENTERPRISE_PID, next(_n), 300, scenario="metro_ride")
    ride = payloads.reduction("pid-alice", next(_n), 300, scenario="metro_ride")
    nobody = payloads.reduction("pid-unopened-firm", next(_n), 5_000, scenario="green_electricity_office")
    new_person = payloads.reduction("pid-new", next(_n), 10, scenario="walking")
    batch = [office, by_person, ride_of_enterprise, ride, nobody, new_person]
    screened = guard.screen(batch)
    assert screened.kept == [0, 3, 5] and screened.missing == [4]
    assert [(i, e["code"], e["grams"], e["account_kind"]) for i, e in screened.declined] == [
        (1, SCOPE_MISMATCH, 0, "individual"),
        (2, SCOPE_MISMATCH, 0, "enterprise"),
    ]
    assert screened.declined[0][1]["_id"] == ledger.credit_entry_id(by_person["reduction_id"])
    entries, _ = world.ops.credit_many([batch[i] for i in screened.kept])
    assert [e["type"] for e in entries] == ["credit", "credit", "credit"]
    assert world.repo.get_account(ledger.account_id_for("pid-unopened-firm")) is None  # never opened
    # redelivered: the same entries, nothing new; the declined record took no dedup claim
    count = len(world.repo._entries)
    again = guard.screen(batch)
    assert [e["_id"] for _, e in again.declined] == [e["_id"] for _, e in screened.declined]
    assert len(world.repo._entries) == count
    firm_claim = payloads.reduction(
        ENTERPRISE_PID, next(_n), 9_000, scenario="green_electricity_office", dedup_key="cert-1"
    )
    [entry], _ = world.ops.credit_many([firm_claim])
    assert entry["type"] == "credit"
    # the declined reduction's event says why
    [(event_type, _, payload)] = events_for(screened.declined[0][1])
    assert (event_type, payload["code"]) == ("reduction_declined", SCOPE_MISMATCH)


def test_account_kinds_are_read_once_per_process(world):
    guard = ScopeGuard(world.ops)
    world.employee("alice")
    reads = []
    real = world.repo.accounts_by_ids
    world.repo.accounts_by_ids = lambda ids: reads.append(list(ids)) or real(ids)
    batch = [payloads.reduction(p, next(_n), 10) for p in ("pid-alice", ENTERPRISE_PID)]
    guard.screen(batch)
    guard.screen(batch)
    assert len(reads) == 1
