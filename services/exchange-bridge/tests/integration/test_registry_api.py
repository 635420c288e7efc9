"""The registry over FerretDB (Flask test client): onboarding, issuance in whole tonnes with a
carried remainder, contiguous serials, transfer/retire/cancel splitting blocks, signed records,
the paged history, and everything still there after a restart."""

import pytest

from carbon_common import gm
from exchange_bridge.registry.records import verify_record
from registry_support import REGISTRY_KEYS, RegistryApi, make_leaves, submission

pytestmark = pytest.mark.integration


@pytest.fixture
def api(mongo_database):
    return RegistryApi(mongo_database("registry"))


def test_a_batch_is_verified_and_issued_in_whole_tonnes(api):
    bank = api.onboard()
    body = submission(bank, make_leaves(5, grams=300_000))  # 1.5 t
    first = api.submit(bank, body)
    assert first.status_code == 201, first.json
    record = first.json
    assert record["status"] == "issued"
    assert [h["state"] for h in record["history"]] == ["submitted", "verified", "issued"]
    assert record["units"] == 1 and record["carried_out_grams"] == 500_000
    assert record["serial"] == "CN-PCA-METRO-RIDE-V1-2026-000000001-000000001"
    assert record["blocks"] == [record["issuance"]["produced"][0]]
    assert verify_record(REGISTRY_KEYS[1], record["issuance"])
    assert not verify_record(REGISTRY_KEYS[1], dict(record["issuance"], units=2))
    again = api.submit(bank, body)  # the same batch again: the same record
    assert again.status_code == 200 and again.json["issuance"] == record["issuance"]
    other = submission(bank, [dict(leaf) for leaf in body["leaves"]])  # same leaves, new created_at
    assert api.submit(bank, other).json["code"] == "batch_conflict"
    stranger = api.onboard()
    assert api.submit(stranger, body).json["code"] == "batch_conflict"  # another bank's batch
    times = [h["at"] for h in record["history"]]
    assert times == sorted(times)


def test_the_remainder_chains_batches_of_a_group_and_serials_are_contiguous(api):
    bank = api.onboard()
    one = api.submit(bank, submission(bank, make_leaves(5, grams=300_000))).json  # 1.5 t -> 1, carry .5
    wrong = submission(bank, make_leaves(3, grams=300_000), carried_in=0, carried_from=one["batch_id"])
    assert api.submit(bank, wrong).json["code"] == "carried_mismatch"
    two_body = submission(bank, make_leaves(3, grams=300_000), carried_in=500_000, carried_from=one["batch_id"])
    two = api.submit(bank, two_body).json  # .5 + .9 = 1.4 t -> 1, carry .4
    assert (two["units"], two["carried_out_grams"]) == (1, 400_000)
    assert (two["serial_start"], two["serial_end"]) == (2, 2)
    three_body = submission(bank, make_leaves(4, grams=900_000), carried_in=400_000, carried_from=two["batch_id"])
    three = api.submit(bank, three_body).json  # .4 + 3.6 = 4 t
    assert (three["serial_start"], three["serial_end"], three["carried_out_grams"]) == (3, 6, 0)
    other_group = api.submit(bank, submission(bank, make_leaves(4, grams=250_000, methodology="bus_ride"))).json
    assert other_group["serial"] == "CN-PCA-BUS-RIDE-V1-2026-000000001-000000001"  # serials per group
    small = api.submit(bank, submission(bank, make_leaves(1, grams=10, year=2025))).json
    assert small["status"] == "issued" and small["units"] == 0 and small["serial"] == ""
    assert small["carried_out_grams"] == 10


def test_transfer_retire_and_cancel_split_blocks(api):
    bank, other = api.onboard(), api.onboard()
    issued = api.submit(bank, submission(bank, make_leaves(10, grams=1_000_000))).json  # 10 units: 1-10
    batch_id = issued["batch_id"]
    body = {"transfer_id": "t-1", "batch_id": batch_id, "units": 3, "to_holder": other.participant}
    moved = api.call(bank, "POST", "/v1/transfers", body)
    assert moved.status_code == 201 and (moved.json["start"], moved.json["end"]) == (1, 3)
    assert api.call(bank, "POST", "/v1/transfers", body).json == moved.json  # idempotent by transfer id
    conflict = api.call(bank, "POST", "/v1/transfers", dict(body, units=4))
    assert conflict.json["code"] == "operation_conflict"
    retire = {"retirement_id": "r-1", "batch_id": batch_id, "units": 2, "beneficiary": "Alice", "reason": "offset"}
    retired = api.call(other, "POST", "/v1/retirements", retire).json
    assert (retired["start"], retired["end"], retired["from_holder"]) == (1, 2, other.participant)
    cancel = {"cancellation_id": "c-1", "batch_id": batch_id, "units": 7, "reason": "correction"}
    cancelled = api.call(bank, "POST", "/v1/cancellations", cancel).json  # the bank's 4-10
    assert (cancelled["start"], cancelled["end"]) == (4, 10)
    assert api.call(bank, "POST", "/v1/cancellations", dict(cancel, cancellation_id="c-2", units=1)).json["code"] == (
        "insufficient_units"
    )
    for record in (moved.json, retired, cancelled):
        assert verify_record(REGISTRY_KEYS[1], record)
    status = api.call(bank, "GET", f"/v1/batches/{batch_id}").json
    assert [h["state"] for h in status["history"]] == [
        "submitted",
        "verified",
        "issued",
        "transferred",
        "retired",
        "cancelled",
    ]
    assert sorted((b["start"], b["end"], b["status"], b["holder"]) for b in status["blocks"]) == [
        (1, 2, "retired", other.participant),
        (3, 3, "active", other.participant),
        (4, 10, "cancelled", bank.participant),
    ]
    mine = api.call(bank, "GET", f"/v1/holdings/{bank.participant}").json["blocks"]
    assert [(b["start"], b["end"]) for b in mine["cancelled"]] == [(4, 10)]
    assert [(b["start"], b["end"], b["holder"]) for b in mine["transferred"]] == [(1, 3, other.participant)]
    assert mine["active"] == [] and mine["retired"] == []
    theirs = api.call(bank, "GET", f"/v1/holdings/{other.participant}").json["blocks"]
    assert [(b["start"], b["end"]) for b in theirs["active"]] == [(3, 3)]
    assert [(b["start"], b["end"]) for b in theirs["retired"]] == [(1, 2)]
    record = api.call(bank, "GET", f"/v1/records/{retired['op_id']}").json
    assert record["beneficiary"] == "Alice" and record["seq"] == retired["seq"]


def test_transactions_are_paged_in_one_gapless_order(api):
    bank = api.onboard()
    previous = ""
    for _ in range(3):
        body = submission(bank, make_leaves(1, grams=1_000_000, methodology="walking"), carried_from=previous)
        previous = api.submit(bank, body).json["batch_id"]
    page = api.call(bank, "GET", "/v1/transactions", query={"after": 0, "limit": 2}).json
    assert [t["seq"] for t in page["transactions"]] == [1, 2] and page["after"] == 2
    rest = api.call(bank, "GET", "/v1/transactions", query={"after": 2}).json
    assert [t["seq"] for t in rest["transactions"]] == [3] and rest["after"] == 3
    assert api.call(bank, "GET", "/v1/transactions", query={"after": 3}).json == {"transactions": [], "after": 3}
    assert all(t["type"] == "issue" and verify_record(REGISTRY_KEYS[1], t) for t in page["transactions"])
    bad = api.call(bank, "GET", "/v1/transactions", query={"after": "-1"})
    assert bad.status_code == 400 and bad.json["code"] == "invalid_request"


def test_everything_survives_a_restart(api, mongo_database):
    bank, other = api.onboard(), api.onboard()
    issued = api.submit(bank, submission(bank, make_leaves(2, grams=1_500_000))).json  # 3 units
    body = {"transfer_id": "t-9", "batch_id": issued["batch_id"], "units": 1, "to_holder": other.participant}
    api.call(bank, "POST", "/v1/transfers", body)
    restarted = RegistryApi(api.db)
    status = restarted.call(bank, "GET", f"/v1/batches/{issued['batch_id']}").json
    assert status["issuance"] == issued["issuance"] and len(status["operations"]) == 1
    following = submission(bank, make_leaves(1, grams=1_000_000), carried_from=issued["batch_id"])
    assert restarted.submit(bank, following).json["serial_start"] == 4  # the chain continues
    assert restarted.call(bank, "GET", "/v1/transactions").json["transactions"][-1]["seq"] == 3
    assert restarted.client.get("/v1/public-key").json["public_key"] == REGISTRY_KEYS[1]


def test_after_the_registry_rotates_its_key_earlier_records_still_verify(api, mongo_database):
    bank = api.onboard()
    before = api.submit(bank, submission(bank, make_leaves(1, grams=1_000_000))).json
    assert api.client.get("/v1/public-key").json["previous_public_keys"] == []

    new_private, new_public = gm.generate_sm2_keypair()
    rotated = RegistryApi(
        api.db, private_key=new_private, public_key=new_public, previous_public_keys=[REGISTRY_KEYS[1].upper()]
    )
    published = rotated.client.get("/v1/public-key").json
    assert (published["public_key"], published["previous_public_keys"]) == (new_public, [REGISTRY_KEYS[1]])
    body = {"retirement_id": "r-1", "batch_id": before["batch_id"], "units": 1, "beneficiary": "x", "reason": "y"}
    assert rotated.call(bank, "POST", "/v1/retirements", body).status_code in (200, 201)

    issue, retire = rotated.call(bank, "GET", "/v1/transactions").json["transactions"][-2:]
    # each record verifies with the key that was the registry's when it was decided, and only it
    assert (verify_record(REGISTRY_KEYS[1], issue), verify_record(new_public, issue)) == (True, False)
    assert (verify_record(REGISTRY_KEYS[1], retire), verify_record(new_public, retire)) == (False, True)
    assert all(
        key in [published["public_key"], *published["previous_public_keys"]] for key in (REGISTRY_KEYS[1], new_public)
    )


def test_a_previous_registry_key_that_is_not_a_key_stops_the_start(mongo_database):
    with pytest.raises(SystemExit, match="REGISTRY_SM2_PREVIOUS_PUBLIC_KEYS"):
        RegistryApi(mongo_database("registry"), previous_public_keys=["04" + "ab" * 64])
