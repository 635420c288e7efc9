"""The rewards catalogue through the real services on RabbitMQ and FerretDB: the gRPC server
process (`python -m account.grpc_server`), the account nameko service (fulfilment requests
announced by its timer, partners' reports consumed from `ingest.events`, settlement by its
relay) — a customer earns, browses and redeems; a partner confirms one fulfilment and fails
another, which is refunded and never reaches the pool; 50 customers race for the last 10 units;
one customer's concurrent redemptions hit the per-customer limit exactly.
The partner's signed call that produces `fulfilment_reported`: services/ingest/tests/
integration/test_ingest_fulfilments.py; the whole way from ingest: tests/e2e/test_catalogue.py."""

import grpc
import pytest

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account import ledger
from account.catalogue.store import CatalogueStore
from account.service import AccountService
from account.verifier import verify_all
from carbon_common.accounts import POOL_OWNERS
from carbon_common.events import EventPublisher
from carbon_common.gm import sm3_hex
from carbon_dev.testing import TEST_MONGO_URI, free_port, wait_until

import test_account_grpc

grpc_process = test_account_grpc.grpc_process  # the server-process fixture, shared
call = test_account_grpc.call
ALICE = ledger.account_id_for("pid-alice")


@pytest.fixture
def account_service(container_factory, platform_amqp, repo):
    config = dict(
        platform_amqp,
        MONGO_URI=TEST_MONGO_URI,
        MONGO_DATABASE=repo.db.name,
        WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    container = container_factory(AccountService, config)
    container.start()
    return container


@pytest.fixture
def ingest(platform_amqp):
    """What ingest publishes once a partner's signed report passed its checks."""
    publisher = EventPublisher(platform_amqp["AMQP_URI"], "ingest")

    def report(fulfilment_id, partner_id, outcome, code=""):
        data = {"fulfilment_id": fulfilment_id, "partner_id": partner_id, "outcome": outcome, "code": code}
        event_id = sm3_hex(f"{partner_id}:{fulfilment_id}:{outcome}".encode())
        publisher.publish("fulfilment_reported", {**data, "reported_at": "2026-12-07T04:00:00Z"}, event_id=event_id)

    yield report
    publisher.close()


def stub_call(address, fn):
    return call(address, lambda channel: fn(pb_grpc.AccountServiceStub(channel)))


def item(item_id, **kw) -> pb.CatalogueItemSpec:
    fields = {"item_id": item_id, "title": item_id.replace("-", " ").title(), "kind": "coupon", "price_grams": 100}
    return pb.CatalogueItemSpec(**{**fields, **kw})


def put(address, spec, request_key=None):
    request = pb.PutCatalogueItemRequest(item=spec, request_key=request_key or f"put-{spec.item_id}")
    return stub_call(address, lambda stub: stub.PutCatalogueItem(request, timeout=10))


def redeem(address, owner_pid, item_id, request_key):
    request = pb.RedeemItemRequest(account=pb.AccountRef(owner_pid=owner_pid), item_id=item_id, request_key=request_key)
    return stub_call(address, lambda stub: stub.RedeemItem(request, timeout=30))


def concurrently(address, requests) -> list[tuple[str, object]]:
    """Every RedeemItem request in flight at once (one channel, futures): (status name, answer)."""

    def run(stub):
        futures = [stub.RedeemItem.future(r, timeout=120) for r in requests]
        out = []
        for future in futures:
            try:
                out.append(("OK", future.result()))
            except grpc.RpcError as error:
                out.append((error.code().name, error.details()))
        return out

    return stub_call(address, run)


def balance_is_sum_of_entries(repo, account_id) -> int:
    entries = repo.account_entries(account_id)
    state = repo.get_state(account_id, entries[-1]["seq"])
    assert state["balance"] == sum(e["grams"] for e in entries) == entries[-1]["balance_after"]
    return state["balance"]


def pool_grams_from(repo, redemption_id) -> list[int]:
    return [
        e["grams"]
        for owner in POOL_OWNERS
        for e in repo.account_entries(ledger.account_id_for(owner))
        if e.get("source_entry_id") == redemption_id
    ]


def test_a_customer_earns_browses_redeems_and_a_partner_confirms_one_and_fails_another(
    grpc_process, account_service, ingest, event_listener, ops, repo, make_reduction
):
    requested = event_listener("account", "catalogue_fulfilment_requested")
    closed = event_listener("account", "catalogue_fulfilment_closed")
    ops.credit(make_reduction(user_pid="pid-alice", grams=1000))  # earns
    server = grpc_process()["grpc"]
    put(server, item("tea", stock=10, limit_count=2, limit_period="day"))
    put(
        server,
        item(
            "metro-pass",
            kind="metro_pass",
            price_grams=300,
            stock=5,
            fulfilment="partner",
            partner_id="metro-sz",
            fulfilment_window_seconds=3600,
        ),
    )

    # browses
    listing = stub_call(
        server, lambda stub: stub.ListCatalogue(pb.ListCatalogueRequest(account=pb.AccountRef(owner_pid="pid-alice")))
    )
    assert listing.balance_grams == 1000
    assert [(o.item.spec.item_id, o.available, o.stock_left, o.limit_left) for o in listing.offers] == [
        ("metro-pass", True, 5, -1),
        ("tea", True, 10, 2),
    ]

    # redeems: one settles at once, two wait for the partner
    tea = redeem(server, "pid-alice", "tea", "order-1")
    assert (tea.redemption.status, tea.entry.grams, tea.entry.reward_id, tea.replayed) == (
        "completed",
        -100,
        "tea",
        False,
    )
    assert redeem(server, "pid-alice", "tea", "order-1").replayed
    confirmed = redeem(server, "pid-alice", "metro-pass", "order-2").redemption
    failed = redeem(server, "pid-alice", "metro-pass", "order-3").redemption
    assert (confirmed.status, confirmed.partner_id, confirmed.fulfil_by > confirmed.redeemed_at) == (
        "awaiting_partner",
        "metro-sz",
        True,
    )

    # the partner hears of both, with nothing personal but the pseudonym
    announced = {e["data"]["fulfilment_id"]: e for e in requested.wait(2, timeout=30)}
    assert set(announced) == {confirmed.redemption_id, failed.redemption_id}
    event = announced[confirmed.redemption_id]
    assert event["event_id"] == confirmed.redemption_id + ":requested"
    assert (event["data"]["partner_id"], event["data"]["owner_pid"], event["data"]["item_id"]) == (
        "metro-sz",
        "pid-alice",
        "metro-pass",
    )

    # confirms one, fails the other; a report from another partner changes nothing
    ingest(failed.redemption_id, "bus-sz", "confirmed")
    ingest(confirmed.redemption_id, "metro-sz", "confirmed")
    ingest(failed.redemption_id, "metro-sz", "failed", "card_not_issued")
    fates = {e["data"]["fulfilment_id"]: e["data"] for e in closed.wait(2, timeout=30)}
    assert (fates[confirmed.redemption_id]["outcome"], fates[confirmed.redemption_id]["fate"]) == (
        "confirmed",
        "settled",
    )
    refund = fates[failed.redemption_id]
    assert (refund["outcome"], refund["fate"], refund["code"], refund["grams"]) == (
        "failed",
        "refunded",
        "card_not_issued",
        300,
    )

    def status(key):
        request = pb.GetCatalogueRedemptionRequest(account=pb.AccountRef(owner_pid="pid-alice"), request_key=key)
        return stub_call(server, lambda stub: stub.GetCatalogueRedemption(request, timeout=5))

    assert (status("order-2").status, status("order-3").status, status("order-3").outcome_code) == (
        "confirmed",
        "refunded",
        "card_not_issued",
    )
    assert balance_is_sum_of_entries(repo, ALICE) == 1000 - 100 - 300
    refund_entry = repo.get_entry(refund["refund_entry_id"])
    assert (refund_entry["type"], refund_entry["grams"], refund_entry["refunded_entry_id"]) == (
        "refund",
        300,
        failed.redemption_id,
    )

    # the settled ones reach the pool (the relay settles "tea" at once); the refunded one never
    wait_until(lambda: pool_grams_from(repo, tea.entry.entry_id) == [100], timeout=30, message="tea settled")
    assert pool_grams_from(repo, confirmed.redemption_id) == [300]
    assert pool_grams_from(repo, failed.redemption_id) == []
    assert CatalogueStore(repo.db).open.count_documents({}) == 0

    # the statement has one line per item
    month = repo.get_entry(tea.entry.entry_id)["month"]
    statement = stub_call(
        server,
        lambda stub: stub.GetStatement(
            pb.GetStatementRequest(account=pb.AccountRef(owner_pid="pid-alice"), month=month)
        ),
    )
    lines = [(c.item_id, c.title, c.redeemed_count, c.redeemed_grams, c.refunded_grams) for c in statement.catalogue]
    assert lines == [("metro-pass", "Metro Pass", 2, 600, 300), ("tea", "Tea", 1, 100, 0)]
    assert verify_all(repo).ok


def test_fifty_customers_race_for_the_last_ten_units(grpc_process, ops, repo, make_reduction):
    customers = [f"pid-racer-{n:02d}" for n in range(50)]
    ops.credit_many([make_reduction(user_pid=pid, grams=500) for pid in customers])
    server = grpc_process(GRPC_MAX_WORKERS="50")["grpc"]
    put(server, item("last-units", price_grams=120, stock=10))
    results = concurrently(
        server,
        [
            pb.RedeemItemRequest(account=pb.AccountRef(owner_pid=pid), item_id="last-units", request_key="race")
            for pid in customers
        ],
    )
    won = [pid for pid, (code, _) in zip(customers, results) if code == "OK"]
    refused = [answer for code, answer in results if code != "OK"]
    assert len(won) == 10
    assert {code for code, _ in results if code != "OK"} == {"FAILED_PRECONDITION"}
    assert len(refused) == 40 and all(answer.startswith("out_of_stock:") for answer in refused)
    # nothing lost: every balance is the sum of its entries, winners paid once, the rest nothing
    for pid in customers:
        expected = 500 - 120 if pid in won else 500
        assert balance_is_sum_of_entries(repo, ledger.account_id_for(pid)) == expected
    store = CatalogueStore(repo.db)
    assert store.claims.count_documents({}) == 10
    assert store.redemptions.count_documents({}) == 10
    assert sorted(d["account_id"] for d in store.redemptions.find()) == sorted(ledger.account_id_for(p) for p in won)
    assert verify_all(repo).ok


def test_the_per_customer_limit_is_exact_under_concurrency(grpc_process, ops, repo, make_reduction):
    ops.credit(make_reduction(user_pid="pid-alice", grams=5000))
    server = grpc_process(GRPC_MAX_WORKERS="20")["grpc"]
    put(server, item("daily-tea", price_grams=50, unlimited_stock=True, limit_count=3, limit_period="day"))
    results = concurrently(
        server,
        [
            pb.RedeemItemRequest(account=pb.AccountRef(owner_pid="pid-alice"), item_id="daily-tea", request_key=f"k{n}")
            for n in range(20)
        ],
    )
    codes = [code for code, _ in results]
    assert codes.count("OK") == 3
    assert all(answer.startswith("limit_reached:") for code, answer in results if code != "OK")
    assert balance_is_sum_of_entries(repo, ALICE) == 5000 - 3 * 50
    assert CatalogueStore(repo.db).claims.count_documents({}) == 3


def test_an_unreported_fulfilment_expires_and_is_refunded_on_ferretdb(grpc_process, ops, repo, make_reduction):
    """The timer's pass after the window (run here with a later clock): refunded, the unit back."""
    from datetime import timedelta

    from account.catalogue.catalogue import Catalogue
    from carbon_common.clock import utc_now

    ops.credit(make_reduction(user_pid="pid-alice", grams=1000))
    server = grpc_process()["grpc"]
    put(
        server,
        item(
            "tree",
            kind="tree_planted",
            price_grams=400,
            stock=1,
            fulfilment="partner",
            partner_id="forest-co",
            fulfilment_window_seconds=60,
        ),
    )
    redemption = redeem(server, "pid-alice", "tree", "plant-1").redemption
    catalogue = Catalogue(ops, CatalogueStore(repo.db))
    published = []
    assert catalogue.run_pass(published.extend) == {"announced": 1, "expired": 0}
    assert catalogue.run_pass(published.extend, now=utc_now() + timedelta(seconds=61)) == {
        "announced": 0,
        "expired": 1,
    }
    closed = published[-1][1]
    assert (closed["outcome"], closed["fate"], closed["code"]) == ("expired", "refunded", "expired")
    assert balance_is_sum_of_entries(repo, ALICE) == 1000
    assert pool_grams_from(repo, redemption.redemption_id) == []
    assert CatalogueStore(repo.db).claims.count_documents({}) == 0  # the tree can be planted again
    assert redeem(server, "pid-alice", "tree", "plant-2").redemption.status == "awaiting_partner"
