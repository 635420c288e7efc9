"""The fake repository behaves as the real one where the service layer relies on it.

Every test runs twice with the same assertions: against `FakeRepository` (tests/ingest_fakes.py,
what the unit tests of authentication and intake run on) and against `Repository` on a
throwaway FerretDB database. A fake that drifts from the store (accepting a duplicate nonce,
finding a revoked consent, storing a receipt twice, …) fails here rather than letting the unit
tests prove behaviour the service does not have.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from ingest.repository import Duplicate, Repository

from ingest_fakes import FakeRepository

NOW = datetime.now(timezone.utc).replace(microsecond=0)  # whole seconds survive BSON's milliseconds
TTL = timedelta(minutes=11)
PID_A, PID_B = "a" * 64, "b" * 64


@dataclass
class Backend:
    repo: object
    forget_hint: Callable[[str], None]  # make a receipt look as stored before receipts had a hint


@pytest.fixture(params=["fake", pytest.param("ferretdb", marks=pytest.mark.integration)])
def backend(request) -> Backend:
    if request.param == "fake":
        fake = FakeRepository()
        return Backend(fake, lambda key: fake.receipts[key].pop("hint"))
    real = Repository(request.getfixturevalue("mongo_database")("ingest"))
    real.ensure_indexes()  # a new database: the consent index is complete from the start
    return Backend(real, lambda key: real.receipts.update_one({"_id": key}, {"$unset": {"hint": ""}}))


@pytest.fixture
def repo(backend):
    return backend.repo


def consent(consent_id, user_pid=PID_A, partner_id="metro-sz", scenarios=("metro_ride",)):
    return {
        "_id": consent_id,
        "partner_id": partner_id,
        "user_pid": user_pid,
        "scenarios": list(scenarios),
        "granted_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=30),
        "revoked_at": None,
    }


def record_consent(repo, doc) -> None:
    """What the consents service does: the consent, then its index slot."""
    repo.insert_consent(doc)
    repo.index_consent(doc)


def receipt(key, distance="12.4"):
    return {
        "_id": key,
        "partner_id": "metro-sz",
        "partner_record_id": f"r-{key}",
        "content_hash": f"hash-{distance}",
        "activity": {"distance_km": distance, "city": "shenzhen"},
        "created_at": NOW,
    }


# ---- partners, keys, consents: unique inserts -----------------------------------------------------


@pytest.mark.parametrize(
    "insert, get, first, second",
    [
        (
            "insert_partner",
            "get_partner",
            {"_id": "metro-sz", "kind": "data_partner", "status": "active"},
            {"_id": "metro-sz", "kind": "bank_app", "status": "active"},
        ),
        (
            "insert_key",
            "get_key",
            {"_id": "metro-k1", "partner_id": "metro-sz", "public_key": "01" * 64},
            {"_id": "metro-k1", "partner_id": "bus-sz", "public_key": "02" * 64},
        ),
        ("insert_consent", "get_consent", consent("cns_1"), consent("cns_1", user_pid=PID_B)),
    ],
)
def test_a_second_insert_with_the_same_id_raises_duplicate_and_the_first_stays(repo, insert, get, first, second):
    getattr(repo, insert)(first)
    with pytest.raises(Duplicate):
        getattr(repo, insert)(second)
    assert getattr(repo, get)(first["_id"]) == first
    assert getattr(repo, get)("nobody") is None


# ---- request guards ----------------------------------------------------------------------------


def test_a_nonce_is_consumed_once_until_it_expires(repo):
    assert not repo.nonce_seen("metro-sz", "n1", NOW)
    assert repo.consume_nonce("metro-sz", "n1", NOW, TTL) is True
    assert repo.nonce_seen("metro-sz", "n1", NOW)
    assert repo.consume_nonce("metro-sz", "n1", NOW, TTL) is False
    assert repo.consume_nonce("metro-sz", "n1", NOW + timedelta(seconds=30), TTL) is False
    assert repo.consume_nonce("bus-sz", "n1", NOW, TTL) is True  # nonces are per partner

    expired = NOW + TTL + timedelta(seconds=1)
    assert not repo.nonce_seen("metro-sz", "n1", expired)
    assert repo.consume_nonce("metro-sz", "n1", expired, TTL) is True


def test_rate_slots_admit_exactly_the_limit_per_window_and_partner(repo):
    window, expires = 29_000_000, NOW + timedelta(minutes=2)
    assert [repo.take_rate_slot("metro-sz", window, 3, expires) for _ in range(4)] == [True, True, True, False]
    assert repo.take_rate_slot("metro-sz", window + 1, 3, expires) is True  # the next minute
    assert repo.take_rate_slot("bus-sz", window, 3, expires) is True  # another partner
    assert repo.take_rate_slot("walk-sz", window, 0, expires) is False  # a limit of 0 admits nothing


# ---- consents as intake reads them ----------------------------------------------------------------


def found(repo, partner_id, user_pids) -> dict:
    """consent id -> what intake uses of it."""
    return {
        c["_id"]: (c["user_pid"], sorted(c["scenarios"]), c["granted_at"], c["expires_at"], c.get("revoked_at"))
        for c in repo.consents_for(partner_id, user_pids)
    }


def test_consents_are_found_by_partner_and_customer(repo):
    for doc in (
        consent("cns_1"),
        consent("cns_2", scenarios=("bus_ride", "metro_ride")),
        consent("cns_3"),  # a chain longer than one read
        consent("cns_4", user_pid=PID_B),
        consent("cns_5", partner_id="bus-sz"),
    ):
        record_consent(repo, doc)

    terms = (NOW - timedelta(days=1), NOW + timedelta(days=30), None)
    assert found(repo, "metro-sz", [PID_A, PID_B]) == {
        "cns_1": (PID_A, ["metro_ride"], *terms),
        "cns_2": (PID_A, ["bus_ride", "metro_ride"], *terms),
        "cns_3": (PID_A, ["metro_ride"], *terms),
        "cns_4": (PID_B, ["metro_ride"], *terms),
    }
    assert set(found(repo, "bus-sz", [PID_A])) == {"cns_5"}
    assert found(repo, "metro-sz", ["c" * 64]) == {} and repo.consents_for("metro-sz", []) == []


def test_a_revoked_consent_is_no_longer_found(repo):
    record_consent(repo, consent("cns_1"))
    record_consent(repo, consent("cns_2"))

    repo.note_revoked("cns_1", NOW)
    repo.note_revoked("cns_1", NOW + timedelta(minutes=1))  # a repeat is harmless

    assert set(found(repo, "metro-sz", [PID_A])) == {"cns_2"}


def test_a_customer_s_consents_with_every_partner_are_listed_revoked_or_not(repo):
    for doc in (
        consent("cns_1"),
        consent("cns_2"),
        consent("cns_3"),  # a chain longer than one read
        consent("cns_4", user_pid=PID_B),
        consent("cns_5", partner_id="bus-sz"),
        consent("cns_6", partner_id="walk-sz"),
    ):
        record_consent(repo, doc)
    repo.note_revoked("cns_2", NOW)
    repo.insert_consent(consent("cns_7"))  # the request died before its slot: not listed yet

    listed = repo.customer_consents(PID_A, ["metro-sz", "bus-sz", "bike-sz"])
    assert sorted(c["_id"] for c in listed) == ["cns_1", "cns_2", "cns_3", "cns_5"]
    assert {c["_id"]: c["user_pid"] for c in listed} == dict.fromkeys(["cns_1", "cns_2", "cns_3", "cns_5"], PID_A)
    assert repo.customer_consents(PID_B, ["metro-sz", "bus-sz"])[0]["_id"] == "cns_4"
    assert repo.customer_consents("c" * 64, ["metro-sz"]) == [] and repo.customer_consents(PID_A, []) == []


def test_a_consent_counts_once_listed_in_the_index_and_listing_it_again_changes_nothing(repo):
    repo.insert_consent(consent("cns_1"))  # the request died before its slot
    assert found(repo, "metro-sz", [PID_A]) == {}

    repo.index_consent(consent("cns_1"))  # the bank app's retry repairs it
    repo.index_consent(consent("cns_1"))

    assert [c["_id"] for c in repo.consents_for("metro-sz", [PID_A])] == ["cns_1"]


# ---- receipts and relay hints -------------------------------------------------------------------


def test_a_receipt_is_stored_once_and_the_first_wins(repo):
    hint = repo.note_unpublished(["k1", "k2"], NOW, "00-trace-span-01")
    first = repo.store_receipts([receipt("k1"), receipt("k2")], hint)
    assert first == [({**receipt("k1"), "hint": hint}, True), ({**receipt("k2"), "hint": hint}, True)]

    later = repo.note_unpublished(["k1", "k3"], NOW, "")
    again = repo.store_receipts([receipt("k1", distance="20"), receipt("k3")], later)

    assert later != hint
    assert again == [({**receipt("k1"), "hint": hint}, False), ({**receipt("k3"), "hint": later}, True)]


def test_a_receipt_is_pending_while_its_hint_exists(repo):
    hint = repo.note_unpublished(["k1", "k2"], NOW, "")
    stored = [r for r, _ in repo.store_receipts([receipt("k1"), receipt("k2")], hint)]
    assert repo.receipt_state("k1") == "pending" and repo.receipt_state("unknown") is None
    assert repo.pending_among(stored) == ({"k1", "k2"}, {hint: ["k1", "k2"]})

    repo.clear_unpublished([hint])
    repo.clear_unpublished([])
    repo.clear_unpublished([hint])  # already gone: nothing to do

    assert repo.pending_among(stored) == (set(), {})
    assert repo.receipt_state("k1") == repo.receipt_state("k2") == "published"


def test_only_receipts_stored_before_hints_get_a_published_marker(backend):
    repo = backend.repo
    hint = repo.note_unpublished(["legacy", "current"], NOW, "")
    repo.store_receipts([receipt("legacy"), receipt("current")], hint)
    backend.forget_hint("legacy")
    repo.clear_unpublished([hint])
    hinted = repo.note_unpublished(["hinted"], NOW, "")
    [(with_hint, _)] = repo.store_receipts([receipt("hinted")], hinted)
    legacy = receipt("legacy")  # as read back: no hint
    assert repo.receipt_state("legacy") == "pending"  # no hint, no marker: never confirmed

    repo.mark_published([legacy, with_hint], NOW)

    assert repo.receipt_state("legacy") == "published"
    assert repo.receipt_state("hinted") == "pending"  # its hint decides, not a marker
    assert repo.pending_among([legacy, with_hint]) == ({"hinted"}, {hinted: ["hinted"]})
    backend.forget_hint("hinted")
    assert repo.receipt_state("hinted") == "pending"  # no marker was written for it
