"""The rewards catalogue over the whole platform (issue 21): a customer earns grams from a
partner's signed record, browses the catalogue and redeems through the account gRPC server; the
fulfilling partner hears of its fulfilments on its own queue of `account.events`, confirms one
and fails another through its signed calls to ingest; the failed one is refunded by a
compensating entry and its grams never reach the bank pool (docs/catalogue.md)."""

import json
import random
import uuid
from datetime import datetime, timezone

import grpc
import pytest

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from carbon_common import gm
from carbon_common.accounts import POOL_OWNERS
from carbon_common.mongo import client
from carbon_dev.testing import EventListener, wait_until
from ingest.cli.admin import AdminClient
from ingest.sdk.client import IngestClient


class Scene:
    """A metro partner that also delivers the catalogue's metro passes, a bank app, a customer
    with a consent, and the account gRPC API of the instance."""

    def __init__(self, platform):
        self.platform = platform
        base = f"http://{platform.address(8080)}"
        admin = AdminClient(base, platform.secrets()["ADMIN_TOKEN"])
        self.suffix = uuid.uuid4().hex[:6]
        self.partner_id, bank_id = f"metro-{self.suffix}", f"bank-{self.suffix}"
        partner_private, partner_public = gm.generate_sm2_keypair()
        bank_private, bank_public = gm.generate_sm2_keypair()
        for pid, kind, scenarios, public in (
            (self.partner_id, "data_partner", ["metro_ride"], partner_public),
            (bank_id, "bank_app", [], bank_public),
        ):
            response = admin.register(pid, pid, kind, scenarios, 0, [(f"{pid}-k1", public)])
            assert response.status_code in (200, 201), response.text
        self.partner = IngestClient(base, self.partner_id, f"{self.partner_id}-k1", partner_private)
        self.bank = IngestClient(base, bank_id, f"{bank_id}-k1", bank_private)
        self.account_db = client(platform.mongo_uri)[f"carbon_{platform.name}_account"]
        self.channel = grpc.insecure_channel(platform.address(50051))
        self.account = pb_grpc.AccountServiceStub(self.channel)


@pytest.fixture(scope="module")
def scene(platform):
    scene = Scene(platform)
    yield scene
    scene.channel.close()


def entries_of(db, account_id) -> list[dict]:
    return [json.loads(d["entry"]) for d in db.entries.find({"account_id": account_id}).sort("seq", 1)]


def test_a_customer_earns_browses_redeems_and_a_partner_confirms_one_and_fails_another(scene):
    requested = EventListener(scene.platform.amqp_uri, "account", "catalogue_fulfilment_requested")
    closed = EventListener(scene.platform.amqp_uri, "account", "catalogue_fulfilment_closed")
    credited = EventListener(scene.platform.amqp_uri, "account", "account_credited")
    number = "6222" + "".join(random.choice("0123456789") for _ in range(12))
    consent = scene.bank.record_consent(
        f"c-{scene.suffix}", number, scene.partner_id, ["metro_ride"], "green rewards", "2030-01-01T00:00:00Z"
    )
    assert consent.status_code == 201, consent.text
    user_pid = consent.json()["user_pid"]

    # earns: a metro ride, signed by the partner, credited through calc and the ledger
    ride = {
        "record_id": f"trip-{scene.suffix}",
        "customer_ref": number,
        "scenario": "metro_ride",
        "occurred_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "activity": {"distance_km": "18.4", "city": "shenzhen", "entry_station": "S03", "exit_station": "S21"},
    }
    sent = scene.partner.send_batch([ride])
    assert sent.status_code == 200 and sent.json()["results"][0]["outcome"] == "accepted", sent.text
    [earned] = wait_until(
        lambda: [e["body"]["data"] for e in credited.drain() if e["body"]["data"]["entry"]["owner_pid"] == user_pid],
        timeout=90,
        message="the ride credited",
    )
    grams = earned["grams"]
    assert grams >= 4, earned
    price = grams // 4  # three redeemed, and a fourth still affordable (refused by the limit)

    # the bank's operators list two rewards: one settles at once, one the partner delivers
    tea, metro_pass = f"tea-{scene.suffix}", f"pass-{scene.suffix}"
    for spec in (
        pb.CatalogueItemSpec(item_id=tea, title="Green tea", kind="coupon", price_grams=price, stock=100),
        pb.CatalogueItemSpec(
            item_id=metro_pass,
            title="Metro day pass",
            kind="metro_pass",
            price_grams=price,
            stock=10,
            limit_count=2,
            limit_period="day",
            fulfilment="partner",
            partner_id=scene.partner_id,
            fulfilment_window_seconds=3600,
        ),
    ):
        scene.account.PutCatalogueItem(
            pb.PutCatalogueItemRequest(item=spec, request_key=f"put-{spec.item_id}"), timeout=10
        )

    # browses: what the customer can afford
    me = pb.AccountRef(owner_pid=user_pid)
    listing = scene.account.ListCatalogue(pb.ListCatalogueRequest(account=me, page_size=500), timeout=10)
    offers = {o.item.spec.item_id: o for o in listing.offers}
    assert listing.balance_grams == grams
    assert (offers[tea].available, offers[metro_pass].available, offers[metro_pass].limit_left) == (True, True, 2)

    # redeems three times; the partner's item twice (its daily limit)
    def ours(listener, count):
        """fulfilment id -> event data, of this partner's events, once `count` of them arrived."""
        found = {
            e["body"]["data"]["fulfilment_id"]: e["body"]["data"]
            for e in listener.drain()
            if e["body"]["data"]["partner_id"] == scene.partner_id
        }
        return found if len(found) >= count else None

    def redeem(item_id, key):
        return scene.account.RedeemItem(pb.RedeemItemRequest(account=me, item_id=item_id, request_key=key), timeout=30)

    coupon = redeem(tea, "order-1")
    first, second = redeem(metro_pass, "order-2").redemption, redeem(metro_pass, "order-3").redemption
    with pytest.raises(grpc.RpcError) as limit:
        redeem(metro_pass, "order-4")
    assert limit.value.details().startswith("limit_reached:")
    assert (coupon.redemption.status, first.status) == ("completed", "awaiting_partner")

    # the partner's own queue: both fulfilments, with nothing personal but the pseudonym
    mine = wait_until(lambda: ours(requested, 2), timeout=60, message="the partner heard of both fulfilments")
    assert set(mine) == {first.redemption_id, second.redemption_id}
    assert mine[first.redemption_id]["owner_pid"] == user_pid and number not in json.dumps(mine)

    # confirms one, fails the other, each with its signed call to ingest
    assert scene.partner.confirm_fulfilment(first.redemption_id, reference="card-0001").status_code == 202
    assert scene.partner.fail_fulfilment(second.redemption_id, "card_not_issued").status_code == 202

    done = wait_until(lambda: ours(closed, 2), timeout=60, message="both fulfilments closed")
    assert (done[first.redemption_id]["outcome"], done[first.redemption_id]["fate"]) == ("confirmed", "settled")
    assert (done[second.redemption_id]["outcome"], done[second.redemption_id]["fate"]) == ("failed", "refunded")

    def status(key):
        return scene.account.GetCatalogueRedemption(
            pb.GetCatalogueRedemptionRequest(account=me, request_key=key), timeout=10
        ).status

    assert (status("order-2"), status("order-3")) == ("confirmed", "refunded")

    # the refund is a compensating entry; the balance is the sum of the entries
    account_id = coupon.redemption.account_id
    entries = entries_of(scene.account_db, account_id)
    assert sum(e["grams"] for e in entries) == entries[-1]["balance_after"] == grams - 2 * price
    [refund] = [e for e in entries if e["type"] == "refund"]
    assert (refund["grams"], refund["refunded_entry_id"], refund["item_id"]) == (
        price,
        second.redemption_id,
        metro_pass,
    )
    balance = scene.account.GetBalance(me, timeout=10)
    assert balance.balance_grams == grams - 2 * price

    # the settled ones reach the pool; the refunded one never does
    pools = [d["_id"] for d in scene.account_db.accounts.find({"owner_pid": {"$in": list(POOL_OWNERS)}})]

    def pooled(redemption_id):
        return [
            e["grams"]
            for d in scene.account_db.entries.find({"account_id": {"$in": pools}, "type": "redemption_transfer"})
            for e in [json.loads(d["entry"])]
            if e["source_entry_id"] == redemption_id
        ]

    wait_until(lambda: pooled(coupon.entry.entry_id) == [price], timeout=60, message="the coupon settled into the pool")
    assert pooled(first.redemption_id) == [price]
    assert pooled(second.redemption_id) == []

    # the statement shows one line per item
    statement = scene.account.GetStatement(pb.GetStatementRequest(account=me, month=entries[-1]["month"]), timeout=10)
    lines = {
        c.item_id: (c.redeemed_count, c.redeemed_grams, c.refunded_count, c.refunded_grams) for c in statement.catalogue
    }
    assert lines == {tea: (1, price, 0, 0), metro_pass: (2, 2 * price, 1, price)}
    for listener in (requested, closed, credited):
        listener.close()
