"""The intake service layer (Intake.handle) against a fake repository and a fake broker: what a
partner and the platform care about — accepted, duplicate, conflicting and refused records,
consent first, nothing left behind by bad input, a failed publish answered 503 and recovered by
a replay — in milliseconds, with no server. The same paths on FerretDB and RabbitMQ:
tests/integration/test_ingest_intake.py and test_ingest_bad_input.py."""

import json
import secrets
import sys
from datetime import datetime, timedelta, timezone

import pytest

from carbon_common import gm

from ingest import domain, signing
from ingest.authentication import Caller
from ingest.config import Settings
from ingest.intake import Intake, gate_on_consent, validate_batch
from ingest.metrics import Metrics
from ingest.views.batch_answer import batch_answer

from ingest_fakes import FakeBus, FakeRepository
from ingest_testkit import metro

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(autouse=True)
def fresh_now(monkeypatch):
    """NOW is the intake's clock and testkit records are stamped with the real time: taken at
    import, it fell behind by however long the suite ran before this module (more than the
    300 s future-skew window in a slow full run, so every record was "in the future")."""
    monkeypatch.setattr(sys.modules[__name__], "NOW", datetime.now(timezone.utc).replace(microsecond=0))


PSEUDONYM_KEY = bytes(range(32))
CUSTOMER = "6222000011112222"
OTHER_CUSTOMER = "6222000099998888"
SETTINGS = Settings(
    amqp_uri="",
    mongo_uri="",
    mongo_database="",
    pseudonym_key=PSEUDONYM_KEY,
    platform_private_key="",
    platform_public_key="",
    contact_key=bytes(16),
    admin_token="",
    max_body_bytes=1 << 20,
    max_batch=500,
)


def pid(customer):
    return gm.pseudonymize(PSEUDONYM_KEY, customer)


class Scene:
    def __init__(self, bus_failing=False):
        self.repo, self.bus = FakeRepository(), FakeBus(failing=bus_failing)
        self.partner = self.repo.add_partner("metro-sz", scenarios=["metro_ride", "utility_bill_payment"])
        self.intake = Intake(self.repo, self.bus, SETTINGS, Metrics())

    def consent(
        self,
        customer=CUSTOMER,
        scenarios=("metro_ride", "utility_bill_payment"),
        consent_id="cns_1",
        revoked=False,
        expires_in=timedelta(days=30),
        granted_ago=timedelta(days=1),
    ):
        self.repo.add_consent(
            consent_id,
            "metro-sz",
            pid(customer),
            scenarios,
            granted_at=NOW - granted_ago,
            expires_at=NOW + expires_in,
            revoked_at=NOW if revoked else None,
        )

    def post(self, *records):
        auth = signing.AuthHeaders(
            "metro-sz", "k1", str(int(NOW.timestamp())), secrets.token_urlsafe(18), bytes(64), None
        )
        caller = Caller(self.partner, {"_id": "k1"}, auth, {"records": list(records)}, NOW, self.repo)
        status, body = batch_answer(self.intake.handle(caller))  # as POST /v1/records answers
        return status, body, auth.nonce

    def outcomes(self, body):
        return [(r["outcome"], r.get("code")) for r in body["results"]]


@pytest.fixture
def scene():
    scene = Scene()
    scene.consent()
    return scene


def test_an_accepted_batch_is_stored_published_and_acknowledged(scene):
    status, body, nonce = scene.post(metro("r1"), metro("r2", distance="3.5"))
    assert status == 200 and scene.outcomes(body) == [("accepted", None), ("accepted", None)]
    assert body["summary"] == {"accepted": 2, "duplicate": 0, "rejected": 0, "unavailable": 0}
    keys = [domain.record_key("metro-sz", r) for r in ("r1", "r2")]
    assert [r["record_key"] for r in body["results"]] == keys
    assert scene.bus.event_ids() == keys  # event id = record key, one event each
    assert set(scene.repo.receipts) == set(keys)
    assert [scene.repo.receipt_state(key) for key in keys] == ["published"] * 2
    assert scene.repo.unpublished == {}  # the relay has nothing left to do
    assert scene.repo.published == {}  # and no marker per record
    assert f"metro-sz:{nonce}" in scene.repo.nonces
    event = scene.bus.events[0][1]
    assert event["user_pid"] == pid(CUSTOMER) and event["consent_id"] == "cns_1"
    assert CUSTOMER not in json.dumps(scene.repo.receipts, default=str) + json.dumps(scene.bus.events)


def test_a_replayed_record_is_a_duplicate_and_not_published_again(scene):
    scene.post(metro("r1"))
    status, body, _ = scene.post(metro("r1"))
    assert status == 200 and scene.outcomes(body) == [("duplicate", None)]
    assert body["results"][0]["status"] == 200
    assert len(scene.bus.events) == 1 and len(scene.repo.receipts) == 1


def test_the_same_record_id_with_other_content_is_a_conflict_and_the_original_stands(scene):
    scene.post(metro("r1", distance="12.4"))
    original = dict(scene.repo.receipts[domain.record_key("metro-sz", "r1")])
    status, body, _ = scene.post(metro("r1", distance="20"))
    assert status == 409 and body["code"] == "record_conflict"
    assert scene.outcomes(body) == [("rejected", "record_conflict")]
    assert scene.repo.receipts[original["_id"]] == original and len(scene.bus.events) == 1


def test_a_record_without_consent_is_refused_and_leaves_nothing_behind(scene):
    scene.consent(OTHER_CUSTOMER, scenarios=["utility_bill_payment"], consent_id="cns_2")  # not for metro
    status, body, nonce = scene.post(metro("r1", customer=OTHER_CUSTOMER), metro("r2", customer="6222000055556666"))
    assert status == 403 and body["code"] == "consent_required"
    assert scene.outcomes(body) == [("rejected", "consent_required")] * 2
    assert scene.repo.written() == {"receipts": 0, "published": 0, "unpublished": 0, "nonces": 0}
    assert scene.bus.events == []


@pytest.mark.parametrize("consent", [{"revoked": True}, {"expires_in": timedelta(seconds=-1)}])
def test_a_revoked_or_expired_consent_does_not_count(consent):
    scene = Scene()
    scene.consent(**consent)
    status, body, _ = scene.post(metro("r1"))
    assert status == 403 and scene.outcomes(body) == [("rejected", "consent_required")]
    assert scene.repo.receipts == {} and scene.bus.events == []


def test_a_record_from_before_its_consent_was_granted_is_refused_and_leaves_nothing_behind():
    scene = Scene()
    scene.consent(granted_ago=timedelta(hours=2))
    status, body, nonce = scene.post(metro("before", minutes_ago=180), metro("after", minutes_ago=60))
    assert status == 200 and scene.outcomes(body) == [("rejected", "outside_consent"), ("accepted", None)]
    assert body["results"][0]["status"] == 403 and body["results"][0]["field"] == "occurred_at"
    assert list(scene.repo.receipts) == [domain.record_key("metro-sz", "after")]

    status, body, nonce = scene.post(metro("before-2", minutes_ago=150))
    assert status == 403 and body["code"] == "outside_consent"
    assert f"metro-sz:{nonce}" not in scene.repo.nonces and len(scene.repo.receipts) == 1
    assert [e[1]["partner_record_id"] for e in scene.bus.events] == ["after"]


def test_a_record_is_pinned_to_the_latest_consent_whose_validity_holds_it():
    scene = Scene()
    scene.consent(consent_id="cns_old", granted_ago=timedelta(days=5))
    scene.consent(consent_id="cns_new", granted_ago=timedelta(hours=1))
    status, body, _ = scene.post(metro("earlier", minutes_ago=120), metro("later", minutes_ago=30))
    assert status == 200 and scene.outcomes(body) == [("accepted", None)] * 2
    assert [e[1]["consent_id"] for e in scene.bus.events] == ["cns_old", "cns_new"]


def test_bad_input_leaves_nothing_behind(scene):
    bad = [
        metro("r1", distance="500"),
        {**metro("r2"), "reduction_g": 9},
        metro("r3", activity={"city": "X!"}),
        "not an object",
        metro("r4", minutes_ago=-60),
    ]
    status, body, _ = scene.post(*bad)
    assert status == 422 and body["code"] == "records_rejected"
    assert scene.outcomes(body) == [
        ("rejected", "out_of_range"),
        ("rejected", "computed_field_not_allowed"),
        ("rejected", "invalid_value"),
        ("rejected", "invalid_value"),
        ("rejected", "future_occurred_at"),
    ]
    assert scene.repo.written() == {"receipts": 0, "published": 0, "unpublished": 0, "nonces": 0}
    assert scene.bus.events == []


def test_in_a_mixed_batch_only_the_good_records_are_stored(scene):
    status, body, _ = scene.post(
        metro("r1"),
        metro("r1"),
        metro("r2", distance="0"),
        {**metro("r3"), "scenario": "bike_ride", "activity": {"distance_km": "2", "city": "shenzhen"}},
    )
    assert status == 200
    assert scene.outcomes(body) == [
        ("accepted", None),
        ("rejected", "duplicate_in_batch"),
        ("rejected", "out_of_range"),
        ("rejected", "scenario_not_allowed"),
    ]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert list(scene.repo.receipts) == [domain.record_key("metro-sz", "r1")] == scene.bus.event_ids()


def test_personal_activity_fields_are_pseudonymised_before_storing_and_publishing(scene):
    record = {
        "record_id": "u1",
        "customer_ref": CUSTOMER,
        "scenario": "utility_bill_payment",
        "occurred_at": metro("x")["occurred_at"],
        "activity": {"bill_account": "EL-424242", "amount_fen": 100},
    }
    status, body, _ = scene.post(record)
    assert status == 200 and scene.outcomes(body) == [("accepted", None)]
    stored = scene.repo.receipts[domain.record_key("metro-sz", "u1")]
    assert stored["activity"]["bill_account"] == gm.pseudonymize(PSEUDONYM_KEY, "bill_account:EL-424242")
    assert "EL-424242" not in json.dumps(scene.repo.receipts, default=str) + json.dumps(scene.bus.events)


def test_a_failed_publish_answers_503_keeps_the_hint_and_a_replay_publishes_it_once():
    scene = Scene(bus_failing=True)
    scene.consent()
    status, body, _ = scene.post(metro("r1"), metro("r2"))
    keys = [domain.record_key("metro-sz", r) for r in ("r1", "r2")]
    assert status == 503 and body["code"] == "unavailable"
    assert scene.outcomes(body) == [("unavailable", "unavailable")] * 2 and body["results"][0]["record_key"] == keys[0]
    assert list(scene.repo.receipts) == keys and scene.repo.published == {}
    [(first_hint, hint)] = scene.repo.unpublished.items()
    assert hint["keys"] == keys  # for the relay
    assert [scene.repo.receipt_state(key) for key in keys] == ["pending"] * 2

    scene.bus.failing = False
    status, body, _ = scene.post(metro("r1"))  # a partial replay: r2's receipt still needs the hint
    assert status == 200 and scene.outcomes(body) == [("duplicate", None)]
    assert scene.bus.event_ids() == [keys[0]] and list(scene.repo.unpublished) == [first_hint]

    status, body, _ = scene.post(metro("r1"), metro("r2"))  # the whole batch: the hint is done
    assert status == 200 and scene.outcomes(body) == [("duplicate", None)] * 2
    assert scene.bus.event_ids() == [keys[0], keys[0], keys[1]]
    assert scene.repo.unpublished == {} and scene.repo.published == {}
    assert [scene.repo.receipt_state(key) for key in keys] == ["published"] * 2
    scene.post(metro("r1"), metro("r2"))
    assert len(scene.bus.events) == 3


def test_a_conflicting_replay_of_a_pending_record_leaves_its_hint_to_the_relay():
    scene = Scene(bus_failing=True)
    scene.consent()
    scene.post(metro("r1"), metro("r2"))
    [first_hint] = scene.repo.unpublished
    scene.bus.failing = False

    status, body, _ = scene.post(metro("r1"), metro("r2", distance="3.5"))

    assert status == 200 and scene.outcomes(body) == [("duplicate", None), ("rejected", "record_conflict")]
    assert list(scene.repo.unpublished) == [first_hint]  # r2 is still unpublished
    assert scene.repo.receipt_state(domain.record_key("metro-sz", "r2")) == "pending"


def test_a_receipt_stored_before_hints_is_published_by_its_legacy_marker():
    scene = Scene()
    scene.consent()
    scene.post(metro("r1"))
    key = domain.record_key("metro-sz", "r1")
    scene.repo.receipts[key].pop("hint")  # as an earlier version stored it
    assert scene.repo.receipt_state(key) == "pending"  # no marker: its publish was not confirmed
    status, body, _ = scene.post(metro("r1"))
    assert status == 200 and scene.outcomes(body) == [("duplicate", None)]
    assert list(scene.repo.published) == [key] and scene.repo.receipt_state(key) == "published"
    scene.post(metro("r1"))
    assert scene.bus.event_ids() == [key, key]  # its replay republished it once, then no more


# ---- the pure steps behind it ------------------------------------------------------------------


def test_validate_batch_judges_each_record_alone_in_order():
    outcomes, valid = validate_batch(
        [metro("a"), metro("a"), metro("b", distance="-1"), metro("c")], ["metro_ride"], NOW
    )
    assert [(i, r.record_id) for i, r in valid] == [(0, "a"), (3, "c")]
    assert [(o.index, o.record_id, o.code, o.field) for o in outcomes] == [
        (1, "a", "duplicate_in_batch", "record_id"),
        (2, "b", "out_of_range", "activity.distance_km"),
    ]
    outcomes, valid = validate_batch([metro("a")], ["walking"], NOW)
    assert valid == [] and outcomes[0].code == "scenario_not_allowed"


def test_gate_on_consent_picks_the_latest_live_consent_of_the_customer_for_the_scenario():
    _, valid = validate_batch([metro("a"), metro("b", customer=OTHER_CUSTOMER)], ["metro_ride"], NOW)
    pids = {CUSTOMER: pid(CUSTOMER), OTHER_CUSTOMER: pid(OTHER_CUSTOMER)}
    consents = [
        {
            "_id": "old",
            "user_pid": pid(CUSTOMER),
            "scenarios": ["metro_ride"],
            "granted_at": NOW - timedelta(days=9),
            "expires_at": NOW + timedelta(days=1),
        },
        {
            "_id": "new",
            "user_pid": pid(CUSTOMER),
            "scenarios": ["metro_ride"],
            "granted_at": NOW - timedelta(days=1),
            "expires_at": NOW + timedelta(days=1),
        },
        {
            "_id": "walk",
            "user_pid": pid(OTHER_CUSTOMER),
            "scenarios": ["walking"],
            "granted_at": NOW,
            "expires_at": NOW + timedelta(days=1),
        },
    ]
    refused, passed = gate_on_consent(valid, pids, consents, NOW)
    assert [(i, user_pid, c["_id"]) for i, _, user_pid, c in passed] == [(0, pid(CUSTOMER), "new")]
    assert [(o.index, o.code) for o in refused] == [(1, "consent_required")]
