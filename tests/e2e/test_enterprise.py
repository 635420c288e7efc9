"""Enterprise carbon accounts through the whole platform (issue 21, docs/enterprise.md): the bank
opens an enterprise's account over the gRPC API; employees link their personal accounts to it
with their consent (the bank app's gRPC calls); their signed rides are credited to them and the
enterprise sees, per scenario and month, the sum of its linked employees' credits — a group of
fewer than ENTERPRISE_MIN_GROUP employees withheld, an unlinked employee's later rides left out;
the enterprise earns from its own signed green-electricity record (an individual's such record is
declined scope_mismatch) and redeems from the catalogue."""

import random
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from carbon_common import gm
from carbon_dev.testing import EventListener, wait_until
from ingest.cli.admin import AdminClient
from ingest.sdk.client import IngestClient

EMPLOYEES = 6  # e0..e4 linked, e5 not
CST = timezone(timedelta(hours=8))


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Scene:
    """A metro partner, a green power partner and a bank app of this module, and the instance's
    account gRPC API."""

    def __init__(self, platform):
        self.platform = platform
        base = f"http://{platform.address(8080)}"
        admin = AdminClient(base, platform.secrets()["ADMIN_TOKEN"])
        self.suffix = uuid.uuid4().hex[:6]
        self.metro_id, self.green_id, bank_id = f"metro-{self.suffix}", f"green-{self.suffix}", f"bank-{self.suffix}"
        clients = {}
        for pid, kind, scenarios in (
            (self.metro_id, "data_partner", ["metro_ride", "bike_ride"]),
            (self.green_id, "data_partner", ["green_electricity_office"]),
            (bank_id, "bank_app", []),
        ):
            private, public = gm.generate_sm2_keypair()
            response = admin.register(pid, pid, kind, scenarios, 0, [(f"{pid}-k1", public)])
            assert response.status_code in (200, 201), response.text
            clients[pid] = IngestClient(base, pid, f"{pid}-k1", private)
        self.metro, self.green, self.bank = clients[self.metro_id], clients[self.green_id], clients[bank_id]
        self.channel = grpc.insecure_channel(platform.address(50051))
        self.account = pb_grpc.AccountServiceStub(self.channel)

    def consent(self, number: str, partner_id: str, scenarios: list[str]) -> str:
        response = self.bank.record_consent(
            f"c-{uuid.uuid4().hex[:8]}", number, partner_id, scenarios, "carbon account", "2030-01-01T00:00:00Z"
        )
        assert response.status_code == 201, response.text
        return response.json()["user_pid"]

    def send(self, client, number: str, scenario: str, activity: dict) -> str:
        record = {
            "record_id": f"r-{uuid.uuid4().hex[:12]}",
            "customer_ref": number,
            "scenario": scenario,
            "occurred_at": now(),
            "activity": activity,
        }
        response = client.send_batch([record])
        assert response.status_code == 200 and response.json()["results"][0]["outcome"] == "accepted", response.text
        return record["record_id"]

    def ride(self, number: str, scenario: str = "metro_ride", km: str = "9.6", city: str = "shenzhen") -> str:
        # a person's rides in one city and minute are one behaviour (the dedup rule): later ones elsewhere
        return self.send(self.metro, number, scenario, {"distance_km": km, "city": city})


@pytest.fixture(scope="module")
def scene(platform):
    scene = Scene(platform)
    yield scene
    scene.channel.close()


def test_an_enterprise_sees_its_linked_employees_aggregate_and_earns_from_its_own_green_power(scene):
    credited = EventListener(scene.platform.amqp_uri, "account", "account_credited")
    declined = EventListener(scene.platform.amqp_uri, "account", "reduction_declined")
    got: dict[str, list[dict]] = {}  # owner_pid -> its account_credited payloads (reductions)

    def credits_of(pids, count=1):
        got.clear()
        seen = set()
        for e in credited.drain():  # every event received so far (at least once: dedupe on event_id)
            data = e["body"]["data"]
            if data["reason"] == "reduction" and e["body"]["event_id"] not in seen:
                seen.add(e["body"]["event_id"])
                got.setdefault(data["entry"]["owner_pid"], []).append(data)
        return all(len(got.get(p, [])) >= count for p in pids) or None

    # the bank opens the enterprise's account (its reference is what its partners send)
    firm_number = "91440300" + "".join(random.choice("0123456789ABCDEFGH") for _ in range(10))
    firm_pid = scene.consent(firm_number, scene.green_id, ["green_electricity_office"])
    opened = scene.account.OpenAccount(
        pb.OpenAccountRequest(owner_pid=firm_pid, kind="enterprise", alias="Acme Shenzhen"), timeout=10
    )
    firm = pb.AccountRef(account_id=opened.account.account_id)
    assert opened.account.kind == "enterprise"

    # employees: their consents with the metro partner, their accounts, and their links
    numbers = ["6222" + "".join(random.choice("0123456789") for _ in range(12)) for _ in range(EMPLOYEES)]
    pids = [scene.consent(n, scene.metro_id, ["metro_ride", "bike_ride"]) for n in numbers]
    for pid in pids:
        scene.account.OpenAccount(pb.OpenAccountRequest(owner_pid=pid), timeout=10)

    consented_at = now()  # an app's retry resends the same request, timestamp included

    def link(pid, key):
        return scene.account.LinkEnterprise(
            pb.LinkEnterpriseRequest(
                employee=pb.AccountRef(owner_pid=pid),
                enterprise=firm,
                consent_ref=f"app-{key}",
                consented_at=consented_at,
                request_key=key,
            ),
            timeout=10,
        )

    for i, pid in enumerate(pids[:5]):
        assert link(pid, f"link-{scene.suffix}-{i}").link.linked
    assert link(pids[0], f"link-{scene.suffix}-0").replayed  # the app's retry
    [mine] = scene.account.ListEnterpriseLinks(
        pb.ListEnterpriseLinksRequest(employee=pb.AccountRef(owner_pid=pids[0])), timeout=10
    ).links
    assert (mine.enterprise_account_id, mine.linked, mine.consent_ref) == (
        firm.account_id,
        True,
        f"app-link-{scene.suffix}-0",
    )

    # rides: everyone a metro ride, two of them a bike ride; the firm's green power
    for number in numbers:
        scene.ride(number)
    for number in numbers[:2]:
        scene.ride(number, "bike_ride", "3.2")
    scene.send(
        scene.green,
        firm_number,
        "green_electricity_office",
        {"kwh": "12000", "region": "south", "certificate_id": f"GEC-{scene.suffix}"},
    )
    wait_until(lambda: credits_of(pids + [firm_pid]), timeout=120, message="every ride and the firm's power credited")
    wait_until(lambda: credits_of(pids[:2], count=2), timeout=60, message="the bike rides credited")

    def linked_sum(scenario, who):
        return sum(d["grams"] for p in who for d in got.get(p, []) if d["scenario"] == scenario)

    posted = datetime.fromisoformat(got[pids[0]][0]["entry"]["posted_at"].replace("Z", "+00:00"))
    month = posted.astimezone(CST).strftime("%Y-%m")  # the month of posting, China Standard Time

    def view():
        return scene.account.GetEnterpriseAggregate(
            pb.GetEnterpriseAggregateRequest(enterprise=firm, month=month), timeout=10
        )

    def groups():
        return {g.scenario: g for g in view().groups}

    metro = linked_sum("metro_ride", pids[:5])
    wait_until(
        lambda: groups().get("metro_ride") is not None and groups()["metro_ride"].grams == metro,
        timeout=60,
        message="the linked employees' rides in the firm's aggregate",
    )
    wait_until(lambda: "bike_ride" in groups(), timeout=30, message="the bike rides in the read model")
    shown = groups()
    assert (shown["metro_ride"].withheld, shown["metro_ride"].contributors) == (False, 5)
    assert (shown["bike_ride"].withheld, shown["bike_ride"].grams, shown["bike_ride"].contributors) == (True, 0, 0)
    assert "green_electricity_office" not in shown  # the firm's own credit is no employee's
    assert view().reported_grams == metro and view().withheld_groups == 1

    # e4 unlinks; its next ride does not count, e0's does
    left = scene.account.UnlinkEnterprise(
        pb.UnlinkEnterpriseRequest(
            employee=pb.AccountRef(owner_pid=pids[4]), enterprise=firm, request_key=f"bye-{scene.suffix}"
        ),
        timeout=10,
    )
    assert not left.link.linked
    scene.ride(numbers[4], km="20.5", city="beijing")
    wait_until(lambda: credits_of([pids[4]], count=2), timeout=60, message="e4's ride after unlinking credited")
    scene.ride(numbers[0], km="4.0", city="beijing")
    wait_until(lambda: credits_of([pids[0]], count=3), timeout=60, message="e0's later ride credited")
    after = metro + sum(d["grams"] for d in got[pids[0]][2:] if d["scenario"] == "metro_ride")
    wait_until(lambda: groups()["metro_ride"].grams == after, timeout=60, message="e0's later ride counted")
    assert groups()["metro_ride"].grams == after  # e4's later ride is not in it

    # the firm earned from its own enterprise-scope record: 12,000 kWh x 404.2 g (south, 2023 factor)
    [power] = got[firm_pid]
    assert (power["scenario"], power["grams"]) == ("green_electricity_office", 4_850_400)
    assert scene.account.GetBalance(firm, timeout=10).balance_grams == 4_850_400

    # a person's green power record is declined: enterprise scope
    pid5 = scene.consent(numbers[5], scene.green_id, ["green_electricity_office"])
    scene.send(
        scene.green,
        numbers[5],
        "green_electricity_office",
        {"kwh": "5000", "region": "south", "certificate_id": f"GEC-p-{scene.suffix}"},
    )
    refusal = wait_until(
        lambda: [e["body"]["data"] for e in declined.drain() if e["body"]["data"]["entry"]["owner_pid"] == pid5],
        timeout=90,
        message="the person's green power declined",
    )
    assert refusal[0]["code"] == "scope_mismatch"

    # the firm redeems from the catalogue
    item = f"trees-{scene.suffix}"
    scene.account.PutCatalogueItem(
        pb.PutCatalogueItemRequest(
            item=pb.CatalogueItemSpec(
                item_id=item, title="Plant 10 trees", kind="tree_planted", price_grams=1_000_000, unlimited_stock=True
            ),
            request_key=f"put-{item}",
        ),
        timeout=10,
    )
    redeemed = scene.account.RedeemItem(
        pb.RedeemItemRequest(account=firm, item_id=item, request_key=f"order-{scene.suffix}"), timeout=30
    )
    assert redeemed.redemption.status == "completed"
    assert scene.account.GetBalance(firm, timeout=10).balance_grams == 3_850_400
    for listener in (credited, declined):
        listener.close()
