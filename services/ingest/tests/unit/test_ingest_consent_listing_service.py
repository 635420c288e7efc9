"""GET /v1/consents as the consents service answers it (Consents.of_customer), on the fake
repository: one customer's consents recorded by the calling bank app, active and past, newest
grant first, in bounded pages. Over HTTP, signed: tests/integration/test_ingest_consent_listing.py."""

from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.datastructures import MultiDict

from ingest.consents import MAX_PAGE_SIZE, Consents
from ingest.errors import ApiError

from ingest_fakes import FakeRepository

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
ALICE, BOB = "a" * 64, "b" * 64


def stored(repo, n, *, user_pid=ALICE, partner_id="metro-sz", app_id="bank-app", granted_days_ago=0, **terms):
    consent = {
        "_id": f"cns_{n:032x}",
        "app_id": app_id,
        "consent_ref": f"ref-{n}",
        "partner_id": partner_id,
        "user_pid": user_pid,
        "scenarios": ["metro_ride"],
        "purpose": "green rewards",
        "granted_at": NOW - timedelta(days=granted_days_ago, minutes=n),
        "expires_at": NOW + timedelta(days=30),
        "revoked_at": None,
        **terms,
    }
    repo.insert_consent(consent)
    repo.index_consent(consent)
    return consent["_id"]


@pytest.fixture
def repo():
    repo = FakeRepository()
    for partner_id in ("metro-sz", "bus-sz"):
        repo.add_partner(partner_id)
    repo.add_partner("bank-app", kind="bank_app")
    return repo


def listing(repo, app_id="bank-app", now=NOW, **query):
    return Consents(repo, None, None).of_customer(app_id, MultiDict({"user_pid": ALICE, **query}), now)


def test_a_customer_sees_each_of_their_consents_with_its_status_and_nobody_else_s(repo):
    active = stored(repo, 1)
    revoked = stored(repo, 2, partner_id="bus-sz", revoked_at=NOW - timedelta(hours=1))
    expired = stored(repo, 3, granted_days_ago=60, expires_at=NOW - timedelta(days=1))
    stored(repo, 4, user_pid=BOB)  # another customer
    stored(repo, 5, app_id="other-bank")  # the same customer, through another bank app

    page = listing(repo)
    assert [(c["consent_id"], c["status"]) for c in page["consents"]] == [
        (active, "active"),
        (revoked, "revoked"),
        (expired, "expired"),
    ]
    assert page["next_page_token"] is None
    first = page["consents"][0]
    assert set(first) == {
        "consent_id",
        "consent_ref",
        "partner_id",
        "user_pid",
        "scenarios",
        "purpose",
        "granted_at",
        "expires_at",
        "revoked_at",
        "status",
    }
    assert first["partner_id"] == "metro-sz" and first["revoked_at"] is None
    assert page["consents"][1]["revoked_at"] == "2026-11-25T11:00:00Z"
    # the moment it expires, an active consent is listed as expired
    assert listing(repo, now=NOW + timedelta(days=30))["consents"][0]["status"] == "expired"
    assert listing(repo, app_id="other-bank")["consents"][0]["consent_id"] == f"cns_{5:032x}"


def test_pages_are_bounded_and_never_repeat_or_skip_a_consent(repo):
    ids = [stored(repo, n, partner_id=("metro-sz", "bus-sz")[n % 2]) for n in range(1, 8)]
    seen, token = [], None
    while True:
        page = listing(repo, page_size="3", **({"page_token": token} if token else {}))
        assert len(page["consents"]) <= 3
        seen += [c["consent_id"] for c in page["consents"]]
        token = page["next_page_token"]
        if token is None:
            break
        stored(repo, 100 + len(seen), granted_days_ago=-1)  # granted meanwhile: first page only
    assert seen == ids
    assert len(listing(repo)["consents"]) == 9  # default page size 20


@pytest.mark.parametrize(
    "query, field",
    [
        ({"user_pid": None}, "user_pid"),
        ({"user_pid": "A" * 64}, "user_pid"),
        ({"user_pid": "6222000011112222"}, "user_pid"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": str(MAX_PAGE_SIZE + 1)}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_token": "nope"}, "page_token"),
        ({"page_token": f"cns_{99:032x}"}, "page_token"),  # names no consent of this customer
        ({"customer_number": "6222000011112222"}, "customer_number"),
    ],
)
def test_a_malformed_query_is_refused_naming_the_parameter(repo, query, field):
    stored(repo, 1)
    args = MultiDict({k: v for k, v in {"user_pid": ALICE, **query}.items() if v is not None})
    with pytest.raises(ApiError) as refused:
        Consents(repo, None, None).of_customer("bank-app", args, NOW)
    assert (refused.value.code, refused.value.details.get("field")) == ("invalid_request", field)


def test_a_repeated_parameter_is_refused(repo):
    args = MultiDict([("user_pid", ALICE), ("user_pid", BOB)])
    with pytest.raises(ApiError) as refused:
        Consents(repo, None, None).of_customer("bank-app", args, NOW)
    assert refused.value.details["field"] == "user_pid"
