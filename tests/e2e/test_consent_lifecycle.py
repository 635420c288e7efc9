"""Consent over the whole life of a record, through the real services (issue 21): a record from
before its consent is refused with its reason; a record in flight when its consent is revoked
is declined, not credited; a deletion request walks through ingest, calc and account and leaves
no link from the person to their outcomes (docs/partner-api.md §5)."""

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from carbon_common import gm
from carbon_common.mongo import client
from carbon_dev.testing import EventListener, wait_until
from ingest.cli.admin import AdminClient
from ingest.sdk.client import IngestClient

ALIAS = "Wang Xiaoming"  # contact data the bank gave the account


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def customer() -> str:
    return "6222" + "".join(random.choice("0123456789") for _ in range(12))


class Scene:
    """A data partner and a bank app of this module, and the instance's three databases."""

    def __init__(self, platform):
        self.platform = platform
        base = f"http://{platform.address(8080)}"
        admin = AdminClient(base, platform.secrets()["ADMIN_TOKEN"])
        suffix = uuid.uuid4().hex[:6]
        self.partner_id, bank_id = f"metro-{suffix}", f"bank-{suffix}"
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
        mongo = client(platform.mongo_uri)
        self.dbs = {name: mongo[f"carbon_{platform.name}_{name}"] for name in ("ingest", "calc", "account")}

    def consent(self, number: str) -> dict:
        response = self.bank.record_consent(
            f"c-{uuid.uuid4().hex[:8]}",
            number,
            self.partner_id,
            ["metro_ride"],
            "green rewards",
            "2030-01-01T00:00:00Z",
        )
        assert response.status_code == 201, response.text
        return response.json()

    def ride(self, number: str, occurred_at: datetime) -> dict:
        record = {
            "record_id": f"trip-{uuid.uuid4().hex[:10]}",
            "customer_ref": number,
            "scenario": "metro_ride",
            "occurred_at": iso(occurred_at),
            "activity": {"distance_km": "9.6", "city": "shenzhen", "entry_station": "S03"},
        }
        response = self.partner.send_batch([record])
        return {"record": record, "status": response.status_code, "result": response.json()["results"][0]}

    def record_key(self, ride: dict) -> str:
        return gm.sm3_hex(f"{self.partner_id}:{ride['record']['record_id']}".encode())


@pytest.fixture(scope="module")
def scene(platform):
    return Scene(platform)


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def test_a_record_from_before_its_consent_is_refused_with_its_reason(scene):
    number = customer()
    consent = scene.consent(number)
    granted = datetime.fromisoformat(consent["granted_at"].replace("Z", "+00:00"))

    before = scene.ride(number, granted - timedelta(minutes=10))
    assert before["status"] == 403
    assert (before["result"]["outcome"], before["result"]["code"], before["result"]["field"]) == (
        "rejected",
        "outside_consent",
        "occurred_at",
    )
    assert scene.dbs["ingest"].receipts.count_documents({"_id": scene.record_key(before)}) == 0

    after = scene.ride(number, max(granted, now()))  # inside the consent: it goes through
    assert (after["status"], after["result"]["outcome"]) == (200, "accepted")


def test_a_record_in_flight_when_its_consent_is_revoked_is_declined_not_credited(scene):
    declined = EventListener(scene.platform.amqp_uri, "account", "reduction_declined")
    credited = EventListener(scene.platform.amqp_uri, "account", "account_credited")
    number = customer()
    consent = scene.consent(number)
    stopped = scene.platform.ctl("stop", "calc")  # the record waits in calc's queue: in flight
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        ride = scene.ride(number, now())
        assert ride["result"]["outcome"] == "accepted"
        revoked = scene.bank.revoke_consent(consent["consent_id"])
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        wait_until(
            lambda: scene.dbs["account"].revoked_consents.count_documents({"_id": consent["consent_id"]}),
            timeout=30,
            message="the account recorded the revocation",
        )
    finally:
        started = scene.platform.ctl("start", "calc")
        assert started.returncode == 0, started.stdout + started.stderr
    key = scene.record_key(ride)

    def declined_for_the_record():
        return [e["body"]["data"] for e in declined.drain() if e["body"]["data"].get("record_key") == key]

    [event] = wait_until(declined_for_the_record, timeout=60, message="reduction_declined of the record")
    assert event["code"] == "consent_revoked"
    entries = [json.loads(d["entry"]) for d in scene.dbs["account"].entries.find({"type": "declined"})]
    [entry] = [e for e in entries if e.get("record_key") == key]
    assert (entry["grams"], entry["code"], entry["consent_id"]) == (0, "consent_revoked", consent["consent_id"])
    assert entry["requested_grams"] > 0  # it would have earned grams
    assert not [e for e in credited.drain() if e["body"]["data"].get("reduction_id") == event["reduction_id"]]
    declined.close()
    credited.close()


def test_a_deletion_request_leaves_no_link_from_the_person_to_their_outcomes(scene):
    number = customer()
    consent = scene.consent(number)
    user_pid = consent["user_pid"]
    with ServiceRpcProxy("account", {"AMQP_URI": scene.platform.amqp_uri}) as account:
        account.open_account(user_pid, "individual", ALIAS)
    credited = EventListener(scene.platform.amqp_uri, "account", "account_credited")
    ride = scene.ride(number, now())
    assert ride["result"]["outcome"] == "accepted"
    key = scene.record_key(ride)
    wait_until(
        lambda: [e for e in credited.drain() if e["body"]["data"].get("record_key") == key],
        timeout=60,
        message="the ride credited",
    )
    credited.close()
    calc, account, ingest = scene.dbs["calc"], scene.dbs["account"], scene.dbs["ingest"]
    assert any(user_pid in d["record_json"] for d in calc.outcomes.find({"record_key": key}))  # linked so far

    response = scene.bank.request_deletion(number)
    assert response.status_code == 202 and response.json()["user_pid"] == user_pid
    wait_until(lambda: calc.forgotten.count_documents({"_id": user_pid}), timeout=30, message="calc forgot")
    wait_until(
        lambda: "alias" not in account.accounts.find_one({"owner_pid": user_pid}),
        timeout=30,
        message="the account unlinked",
    )

    # the customer number (clear or encrypted) and the contact data are nowhere
    holding_pid = {}
    for service, db in scene.dbs.items():
        for name in db.list_collection_names():
            for doc in db[name].find():
                text = json.dumps(doc, default=str)
                assert number not in text, f"customer number in {service}.{name}"
                assert ALIAS not in text, f"contact data in {service}.{name}"
                if user_pid in text:
                    holding_pid.setdefault(service, set()).add(name)
    assert all(c["customer_number_enc"] is None for c in ingest.consents.find({"user_pid": user_pid}))
    # calc keeps no link from the pseudonym to the person's outcomes: only the tombstone names it
    assert holding_pid.get("calc") == {"forgotten"}
    [outcome] = calc.outcomes.find({"record_key": key})
    assert outcome["forgotten"] is True and user_pid not in outcome["payload_json"] + outcome["record_json"]
    # by design the pseudonym stays where pseudonymous amounts are kept: ingest's consents and
    # receipts (and the deletion request), the account's ledger (docs/partner-api.md §5)
    assert holding_pid.get("ingest", set()) <= {"consents", "consent_index", "receipts", "deletions"}
    assert holding_pid.get("account", set()) <= {"accounts", "entries", "states"}
    # every consent of the person is revoked, and listed so to the bank app
    listed = scene.bank.list_consents(user_pid).json()["consents"]
    assert [(c["consent_id"], c["status"]) for c in listed] == [(consent["consent_id"], "revoked")]
