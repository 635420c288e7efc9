"""The rewards catalogue (account.catalogue) over the fake ledger repository and the fake
catalogue store: item versions, exact stock and limits, nothing left behind by a refusal or a
crash, partner fulfilment (confirm, fail, expiry, another partner's report), statement lines.
The same paths through the real gRPC server on FerretDB: tests/integration/test_catalogue_grpc.py."""

from datetime import datetime, timedelta, timezone

import pytest

from carbon.account.v1 import account_service_pb2 as pb

from account import ledger
from account.catalogue import items
from account.catalogue.catalogue import Catalogue
from account.catalogue.items import (
    Busy,
    ItemExists,
    ItemNotAvailable,
    ItemNotFound,
    LimitReached,
    NotEligible,
    OutOfStock,
    RedemptionNotFound,
    VersionConflict,
)
from account.catalogue.statement import catalogue_lines
from account.grpc_validation import catalogue_spec
from account.ledger import AccountNotOpen, InsufficientBalance, InvalidRequest, RequestKeyReused
from account.operations import LedgerOperations
from account.outbox import Relay
from account.tiers import Tiers
from carbon_common.accounts import POOL_OWNERS
from carbon_dev import payloads

from account_fakes import FakePublisher, FakeRepository
from catalogue_fakes import FakeCatalogueStore

T0 = datetime(2026, 12, 7, 4, 0, tzinfo=timezone.utc)  # 12:00 in China Standard Time
GRACE = timedelta(minutes=10)
_n = iter(range(1, 10**9))


def spec(item_id="tea", **kw) -> dict:
    fields = {"item_id": item_id, "title": "Green tea", "kind": "coupon", "price_grams": 100, "stock": 10}
    fields.update(kw)
    return catalogue_spec(pb.CatalogueItemSpec(**fields))


def partner_spec(item_id="pass", **kw) -> dict:
    fields = {
        "fulfilment": "partner",
        "partner_id": "metro-sz",
        "fulfilment_window_seconds": 3600,
        "kind": "metro_pass",
    }
    return spec(item_id, **{**fields, **kw})


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def world():
    repo = FakeRepository()
    ops = LedgerOperations(repo, Tiers("seedling:0,sprout:5000,tree:50000"))
    ops.pool_account()
    clock = Clock()
    store = FakeCatalogueStore()
    catalogue = Catalogue(ops, store, grace=GRACE, clock=clock)
    return type("World", (), {"repo": repo, "ops": ops, "store": store, "catalogue": catalogue, "clock": clock})


def earn(world, user: str, grams: int) -> str:
    world.ops.credit(payloads.reduction(user, next(_n), grams))
    return ledger.account_id_for(user)


def balance(world, account_id: str) -> int:
    return world.ops.appender.head(account_id)["balance"]


def entries_sum(world, account_id: str) -> int:
    return sum(e["grams"] for e in world.repo.account_entries(account_id))


def pool_transfers(world, redemption_id: str) -> list[int]:
    """Grams the bank pool's chains received from one redemption."""
    return [
        e["grams"]
        for owner in POOL_OWNERS
        for e in world.repo.account_entries(ledger.account_id_for(owner))
        if e.get("source_entry_id") == redemption_id
    ]


def claims(world) -> dict:
    return world.store.collections["claims"]


# --- items ------------------------------------------------------------------------------------
def test_items_are_versioned_never_edited(world):
    c = world.catalogue
    first, replayed = c.put_item(spec(), 0, False, "create-1")
    assert (first["_id"], first["version"], first["status"], first["stock_batch"], replayed) == (
        "tea:1",
        1,
        "active",
        1,
        False,
    )
    assert c.put_item(spec(), 0, False, "create-1") == (first, True)  # the same request again
    with pytest.raises(ItemExists):
        c.put_item(spec(), 0, False, "create-2")
    second, _ = c.put_item(spec(price_grams=120), 1, False, "price-1", "summer")
    assert (second["version"], second["price_grams"], second["stock_batch"], second["reason"]) == (2, 120, 1, "summer")
    with pytest.raises(VersionConflict):
        c.put_item(spec(price_grams=130), 1, False, "price-2")
    assert c.put_item(spec(price_grams=120), 1, False, "price-1", "summer")[1] is True  # replayed after it moved on
    with pytest.raises(RequestKeyReused):
        c.put_item(spec(price_grams=999), 1, False, "price-1")
    with pytest.raises(InvalidRequest) as stock:
        c.put_item(spec(stock=50), 2, False, "stock-1")
    assert stock.value.code == "invalid_stock"
    third, _ = c.put_item(spec(stock=50), 2, True, "stock-1")
    assert (third["stock"], third["stock_batch"]) == (50, 3)
    retired, _ = c.retire_item("tea", 3, "retire-1")
    assert (retired["version"], retired["status"], retired["stock"]) == (4, "retired", 50)
    with pytest.raises(ItemNotAvailable):
        c.retire_item("tea", 4, "retire-2")
    # every version is kept, newest first; nothing was changed in place
    page = c.versions("tea", page_size=3)
    assert [v["version"] for v in page["versions"]] == [4, 3, 2] and page["next_page_token"] == "2"
    assert [v["version"] for v in c.versions("tea", 3, page["next_page_token"])["versions"]] == [1]
    assert world.store.collections["items"]["tea:1"]["price_grams"] == 100
    with pytest.raises(ItemNotFound):
        c.current("coffee")
    with pytest.raises(InvalidRequest):
        c.put_item(spec("gold", eligible_tiers=["platinum"]), 0, False, "gold-1")


def test_a_second_process_finds_the_newest_version_by_walking_forward(world):
    world.catalogue.put_item(spec(), 0, False, "c1")
    world.catalogue.put_item(spec(price_grams=150), 1, False, "c2")
    other = Catalogue(world.ops, world.store, grace=GRACE, clock=world.clock)
    world.store.collections["heads"]["tea"]["version"] = 1  # a hint that lags
    assert other.current("tea")["version"] == 2


# --- redeeming --------------------------------------------------------------------------------
def test_a_customer_browses_and_redeems(world):
    alice = earn(world, "alice", 500)
    world.catalogue.put_item(spec(), 0, False, "c1")
    world.catalogue.put_item(
        spec("tree", kind="tree_planted", price_grams=1000, unlimited_stock=True, stock=0), 0, False, "c2"
    )
    offers = world.catalogue.offers(alice)
    assert [(o["item"]["item_id"], o["available"], o["reason"], o["stock_left"]) for o in offers["offers"]] == [
        ("tea", True, "", 10),
        ("tree", False, "insufficient_balance", -1),
    ]
    assert (offers["balance_grams"], offers["tier"]) == (500, "seedling")
    assert [o["item"]["item_id"] for o in world.catalogue.offers(alice, available_only=True)["offers"]] == ["tea"]

    view, entry, replayed = world.catalogue.redeem(alice, "tea", "order-1")
    assert (view["status"], view["price_grams"], entry["grams"], entry["item_id"], replayed) == (
        "completed",
        100,
        -100,
        "tea",
        False,
    )
    assert world.catalogue.redeem(alice, "tea", "order-1")[1:] == (entry, True)  # idempotent
    assert balance(world, alice) == 400 == entries_sum(world, alice)
    assert world.catalogue.offers(alice)["offers"][0]["stock_left"] == 9
    assert world.catalogue.redemption(alice, "order-1")["status"] == "completed"
    with pytest.raises(RedemptionNotFound):
        world.catalogue.redemption(alice, "order-2")
    with pytest.raises(RequestKeyReused):
        world.catalogue.redeem(alice, "tree", "order-1")


def test_stock_is_exact_and_refusals_leave_nothing(world):
    world.catalogue.put_item(spec(stock=2), 0, False, "c1")
    users = [earn(world, f"u{i}", 100) for i in range(3)]
    poor = earn(world, "poor", 50)
    before = {k: dict(v) for k, v in world.store.collections.items()}
    with pytest.raises(InsufficientBalance):
        world.catalogue.redeem(poor, "tea", "k")
    assert world.store.collections == before  # refused before anything was claimed
    world.catalogue.redeem(users[0], "tea", "k")
    world.catalogue.redeem(users[1], "tea", "k")
    with pytest.raises(OutOfStock):
        world.catalogue.redeem(users[2], "tea", "k")
    assert balance(world, users[2]) == 100 and len(claims(world)) == 2
    assert not world.store.get_redemption(ledger.redemption_entry_id(users[2], "k"))


def test_a_debit_refused_by_the_ledger_gives_the_slots_back(world):
    world.catalogue.put_item(spec(stock=1, limit_count=1, limit_period="day"), 0, False, "c1")
    alice = earn(world, "alice", 100)
    world.ops.redeem(alice, 60, "elsewhere")  # spends the balance behind the catalogue's back
    real = world.ops.redeem

    def stale_check(*args, **kwargs):  # the balance check the catalogue made is now stale
        return real(*args, **kwargs)

    world.ops.redeem = stale_check
    world.catalogue.customer = lambda account_id, fresh=True: {  # noqa: E731 - the state it read before
        "account": world.repo.get_account(account_id),
        "status": "open",
        "balance": 100,
        "tier": "seedling",
    }
    with pytest.raises(InsufficientBalance):
        world.catalogue.redeem(alice, "tea", "k1")
    assert claims(world) == {} and world.store.collections["redemptions"] == {}
    assert balance(world, alice) == 40 == entries_sum(world, alice)


def test_grams_credited_by_another_process_are_seen_before_a_refusal(world):
    """The catalogue goes on from the state its process knows; a refusal is judged on the
    newest (credits arrive through the account service, another process)."""
    world.catalogue.put_item(spec(), 0, False, "c1")
    alice = earn(world, "alice", 50)
    with pytest.raises(InsufficientBalance):
        world.catalogue.redeem(alice, "tea", "k1")  # this process now knows a 50 g balance
    elsewhere = LedgerOperations(world.repo, Tiers("seedling:0,sprout:5000,tree:50000"))
    elsewhere.credit(payloads.reduction("alice", next(_n), 500))
    view, entry, _ = world.catalogue.redeem(alice, "tea", "k2")
    assert (view["status"], entry["grams"]) == ("completed", -100)
    assert balance(world, alice) == 450 == entries_sum(world, alice)


def test_a_frozen_account_is_refused_before_claiming(world):
    world.catalogue.put_item(spec(), 0, False, "c1")
    alice = earn(world, "alice", 500)
    world.ops.set_status(alice, "frozen", "f1")
    with pytest.raises(AccountNotOpen):
        world.catalogue.redeem(alice, "tea", "k1")
    assert claims(world) == {}


def test_the_per_customer_limit_is_exact_per_period(world):
    world.catalogue.put_item(spec(limit_count=2, limit_period="day"), 0, False, "c1")
    alice, bob = earn(world, "alice", 1000), earn(world, "bob", 1000)
    world.catalogue.redeem(alice, "tea", "a1")
    world.catalogue.redeem(alice, "tea", "a2")
    with pytest.raises(LimitReached):
        world.catalogue.redeem(alice, "tea", "a3")
    world.catalogue.redeem(bob, "tea", "b1")  # another customer's limit
    assert world.catalogue.offers(alice)["offers"][0]["limit_left"] == 0
    world.clock.now = T0 + timedelta(hours=13)  # the next day in China Standard Time (01:00)
    world.catalogue.redeem(alice, "tea", "a3")
    assert balance(world, alice) == 700


def test_eligibility_validity_and_retirement(world):
    alice = earn(world, "alice", 6000)  # sprout
    bob = earn(world, "bob", 200)  # seedling
    world.catalogue.put_item(spec("gold", eligible_tiers=["sprout", "tree"]), 0, False, "g1")
    world.catalogue.put_item(spec("xmas", valid_from="2026-12-24T00:00:00+08:00"), 0, False, "x1")
    world.catalogue.redeem(alice, "gold", "k1")
    with pytest.raises(NotEligible):
        world.catalogue.redeem(bob, "gold", "k1")
    with pytest.raises(ItemNotAvailable) as early:
        world.catalogue.redeem(alice, "xmas", "k2")
    assert early.value.code == "not_yet_valid"
    assert {o["item"]["item_id"]: o["reason"] for o in world.catalogue.offers(bob)["offers"]} == {
        "gold": "not_eligible",
        "xmas": "not_yet_valid",
    }
    world.catalogue.retire_item("gold", 1, "r1")
    with pytest.raises(ItemNotAvailable) as retired:
        world.catalogue.redeem(alice, "gold", "k3")
    assert retired.value.code == "item_retired"
    assert [o["item"]["item_id"] for o in world.catalogue.offers(alice)["offers"]] == ["xmas"]


def test_a_change_while_claiming_starts_over_on_the_new_version(world):
    world.catalogue.put_item(spec(), 0, False, "c1")
    alice = earn(world, "alice", 1000)
    world.catalogue.current("tea")  # known here at version 1
    other = Catalogue(world.ops, world.store, grace=GRACE, clock=world.clock)
    real_take = world.catalogue.claimer.take
    changed = []

    def take(*args):
        held = real_take(*args)
        if not changed:  # an operator's change lands between the claim and the re-check
            changed.append(other.put_item(spec(price_grams=300, stock=5), 1, True, "c2"))
        return held

    world.catalogue.claimer.take = take
    view, entry, _ = world.catalogue.redeem(alice, "tea", "k1")
    assert (view["item_version"], entry["grams"]) == (2, -300)
    assert sorted(claims(world)) == ["tea:s2:1"]  # the first attempt's slot of batch 1 went back


def test_a_crashed_attempt_frees_its_slot_after_the_grace_period(world):
    world.catalogue.put_item(spec(stock=1), 0, False, "c1")
    alice, bob = earn(world, "alice", 100), earn(world, "bob", 100)
    world.ops.redeem = lambda *a, **k: (_ for _ in ()).throw(SystemExit("the process died"))
    with pytest.raises(SystemExit):
        world.catalogue.redeem(alice, "tea", "k1")
    del world.ops.redeem
    assert list(claims(world)) == ["tea:s1:1"]  # left behind, as by a crash
    with pytest.raises(OutOfStock):
        world.catalogue.redeem(bob, "tea", "k1")  # in flight, as far as anyone can tell
    with pytest.raises(Busy):
        world.catalogue.redeem(alice, "tea", "k1")  # its own retry, too early
    world.clock.now = T0 + GRACE + timedelta(seconds=1)
    view, _, _ = world.catalogue.redeem(bob, "tea", "k1")
    assert claims(world)["tea:s1:1"]["redemption"] == view["redemption_id"]
    assert balance(world, alice) == 100 and balance(world, bob) == 0
    with pytest.raises(OutOfStock):  # alice's retry: her leftovers are cleaned, the unit is gone
        world.catalogue.redeem(alice, "tea", "k1")
    assert world.store.get_redemption(ledger.redemption_entry_id(alice, "k1")) is None


def test_a_settled_redemption_keeps_its_slot_after_the_grace_period(world):
    world.catalogue.put_item(spec(stock=1), 0, False, "c1")
    alice, bob = earn(world, "alice", 100), earn(world, "bob", 100)
    world.catalogue.redeem(alice, "tea", "k1")
    world.clock.now = T0 + timedelta(days=2)
    with pytest.raises(OutOfStock):
        world.catalogue.redeem(bob, "tea", "k1")


def test_a_claim_taken_over_before_the_debit_is_refunded(world):
    world.catalogue.put_item(partner_spec(stock=1), 0, False, "c1")
    alice = earn(world, "alice", 100)
    real = world.ops.redeem

    def slow_debit(*args, **kwargs):  # so slow that someone judged the claim stale and took the slot
        world.clock.now += GRACE
        world.store.collections["claims"]["pass:s1:1"]["attempt"] = "another"
        return real(*args, **kwargs)

    world.ops.redeem = slow_debit
    with pytest.raises(OutOfStock):
        world.catalogue.redeem(alice, "pass", "k1")
    assert balance(world, alice) == 100 == entries_sum(world, alice)
    assert [e["type"] for e in world.repo.account_entries(alice)][-2:] == ["redemption", "refund"]
    published = []
    world.catalogue.run_pass(published.extend)  # the partner hears of it as closed, never as requested
    assert [(t, p["fate"], p["outcome"]) for t, p, _, _ in published] == [
        ("catalogue_fulfilment_closed", "refunded", "claim_lost")
    ]


# --- partner fulfilment -----------------------------------------------------------------------
def redeem_pass(world, user="alice", key="k1", **kw):
    account = earn(world, user, 1000)
    view, entry, _ = world.catalogue.redeem(account, "pass", key)
    return account, view


def test_a_partner_fulfilment_is_announced_then_confirmed_and_settled(world):
    world.catalogue.put_item(partner_spec(), 0, False, "c1")
    alice, view = redeem_pass(world)
    assert (view["status"], view["partner_id"]) == ("awaiting_partner", "metro-sz")
    assert view["fulfil_by"] == items.iso(T0 + timedelta(hours=1))
    published = []
    assert world.catalogue.run_pass(published.extend) == {"announced": 1, "expired": 0}
    [(event_type, payload, event_id, _)] = published
    assert (event_type, event_id) == ("catalogue_fulfilment_requested", view["redemption_id"] + ":requested")
    assert (payload["partner_id"], payload["owner_pid"], payload["item_id"]) == ("metro-sz", "alice", "pass")
    assert world.catalogue.run_pass(published.extend) == {"announced": 0, "expired": 0}  # once

    report = {"fulfilment_id": view["redemption_id"], "partner_id": "metro-sz", "outcome": "confirmed"}
    assert world.catalogue.report(report, published.extend) == "confirmed -> settled"
    assert published[-1][1]["fate"] == "settled" and published[-1][2] == view["redemption_id"] + ":closed"
    failed_late = {**report, "outcome": "failed", "code": "lost_in_post"}
    assert world.catalogue.report(failed_late, published.extend).endswith("(decided before)")
    assert world.catalogue.redemption(alice, "k1")["status"] == "confirmed"
    assert balance(world, alice) == 900 and world.store.collections["open"] == {}
    assert pool_transfers(world, view["redemption_id"]) == [100]


def test_a_failed_fulfilment_is_refunded_gives_the_unit_back_and_never_reaches_the_pool(world):
    world.catalogue.put_item(partner_spec(stock=1, limit_count=1, limit_period="month"), 0, False, "c1")
    alice, view = redeem_pass(world)
    published = []
    report = {"fulfilment_id": view["redemption_id"], "partner_id": "metro-sz", "outcome": "failed", "code": "sold_out"}
    assert world.catalogue.report({**report, "partner_id": "bus-sz"}, published.extend).startswith("ignored")
    assert world.catalogue.report({**report, "fulfilment_id": "0" * 64}, published.extend).startswith("ignored")
    assert world.catalogue.report(report, published.extend) == "failed -> refunded"
    [(_, closed, _, _)] = published
    assert (closed["fate"], closed["code"], closed["grams"]) == ("refunded", "sold_out", 100)
    assert balance(world, alice) == 1000 == entries_sum(world, alice)
    refund = world.repo.get_entry(closed["refund_entry_id"])
    assert (refund["type"], refund["grams"], refund["refunded_entry_id"]) == ("refund", 100, view["redemption_id"])
    assert world.ops.settle(view["redemption_id"]) == "refunded"  # the fate holds
    assert pool_transfers(world, view["redemption_id"]) == []
    assert world.catalogue.redemption(alice, "k1")["status"] == "refunded"
    # the unit and the customer's monthly limit came back
    assert claims(world) == {}
    world.catalogue.redeem(alice, "pass", "k2")


def test_an_expired_fulfilment_is_refunded_or_settled_as_the_item_says(world):
    world.catalogue.put_item(partner_spec(), 0, False, "c1")
    world.catalogue.put_item(partner_spec("coupon", on_expiry="settle", kind="coupon"), 0, False, "c2")
    alice, view = redeem_pass(world)
    bob = earn(world, "bob", 1000)
    silent, _, _ = world.catalogue.redeem(bob, "coupon", "k1")
    published = []
    world.catalogue.run_pass(published.extend)
    world.clock.now = T0 + timedelta(minutes=59)
    assert world.catalogue.run_pass(published.extend)["expired"] == 0
    world.clock.now = T0 + timedelta(hours=1)
    assert world.catalogue.run_pass(published.extend)["expired"] == 2
    fates = {p["item_id"]: (p["outcome"], p["fate"]) for t, p, _, _ in published if t.endswith("closed")}
    assert fates == {"pass": ("expired", "refunded"), "coupon": ("expired", "settled")}
    assert balance(world, alice) == 1000 and balance(world, bob) == 900
    assert world.store.collections["open"] == {}
    late = {"fulfilment_id": view["redemption_id"], "partner_id": "metro-sz", "outcome": "confirmed"}
    assert world.catalogue.report(late, published.extend) == "expired -> refunded (decided before)"
    assert world.catalogue.redemption(bob, "k1")["status"] == "settled"


def test_the_relay_settles_a_none_item_at_once(world):
    world.catalogue.put_item(spec(), 0, False, "c1")
    alice = earn(world, "alice", 500)
    _, entry, _ = world.catalogue.redeem(alice, "tea", "k1")
    Relay(world.repo, world.ops, FakePublisher()).relay_once()
    assert pool_transfers(world, entry["_id"]) == [100]


# --- statements -------------------------------------------------------------------------------
def test_statement_lines_one_per_item(world):
    world.catalogue.put_item(spec(), 0, False, "c1")
    world.catalogue.put_item(partner_spec(), 0, False, "c2")
    alice = earn(world, "alice", 1000)
    world.catalogue.redeem(alice, "tea", "k1")
    world.catalogue.redeem(alice, "tea", "k2")
    failed, _, _ = world.catalogue.redeem(alice, "pass", "k3")
    world.ops.redeem(alice, 50, "plain", "cinema")  # not a catalogue item: no line
    report = {"fulfilment_id": failed["redemption_id"], "partner_id": "metro-sz", "outcome": "failed", "code": "x"}
    world.catalogue.report(report, lambda items_: None)
    assert catalogue_lines(world.repo.account_entries(alice)) == [
        {
            "item_id": "pass",
            "title": "",
            "redeemed_count": 1,
            "redeemed_grams": 100,
            "refunded_count": 1,
            "refunded_grams": 100,
        },
        {
            "item_id": "tea",
            "title": "",
            "redeemed_count": 2,
            "redeemed_grams": 200,
            "refunded_count": 0,
            "refunded_grams": 0,
        },
    ]
    titled = catalogue_lines(world.repo.account_entries(alice), lambda ids: {i: "Green tea" for i in ids})
    assert {line["title"] for line in titled} == {"Green tea"}


def test_two_processes_sell_a_large_stock_exactly_and_a_freed_unit_is_found(world):
    """Each process hands out its own cursor's slots; the unique ids keep the total exact, and a
    unit given back in one process is found by the other once its sold-out memo has passed."""
    world.catalogue.put_item(spec(stock=300, price_grams=1), 0, False, "c1")
    other = Catalogue(world.ops, world.store, grace=GRACE, clock=world.clock)
    sold, refused = 0, 0
    for n in range(310):
        process = (world.catalogue, other)[n % 2]
        try:
            process.redeem(earn(world, f"c{n}", 5), "tea", "k")
            sold += 1
        except OutOfStock:
            refused += 1
    assert (sold, refused, len(claims(world))) == (300, 10, 300)
    # a unit comes back in the first process (its holder is refunded, say): the second finds it
    doc = world.store.get_redemption(ledger.redemption_entry_id(ledger.account_id_for("c0"), "k"))
    world.catalogue.claimer.release(doc["claims"], doc["attempt"])
    late = earn(world, "late", 5)
    other.claimer._sold_out.clear()  # its memo (SOLD_OUT_MEMO seconds) has passed
    other.redeem(late, "tea", "k")
    assert len(claims(world)) == 300
