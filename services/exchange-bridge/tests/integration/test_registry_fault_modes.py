"""Each injected fault does what docs/registry-api.md says, is counted, and is reproducible."""

import pytest

from exchange_bridge.registry import Faults
from exchange_bridge.registry.store import counts
from registry_support import RegistryApi, make_leaves, submission

pytestmark = pytest.mark.integration


@pytest.fixture
def make_api(mongo_database):
    def make(spec: str = "", seed: int = 0, **options) -> RegistryApi:
        return RegistryApi(
            mongo_database("registry"), Faults(spec, seed, max_latency=0.001, timeout_seconds=0), **options
        )

    return make


def injected(api) -> dict:
    return api.admin("GET", "/v1/admin/faults").json["injected"]


def test_an_injected_rejection_stores_the_batch_rejected_and_claims_nothing(make_api):
    api = make_api("reject=1")
    bank = api.onboard()
    leaves = make_leaves(3, grams=500_000)
    body = submission(bank, leaves)
    answer = api.submit(bank, body)
    assert answer.status_code == 201 and answer.json["status"] == "rejected" and answer.json["reason"] == "injected"
    assert [(h["state"], h["reason"]) for h in answer.json["history"]] == [("submitted", ""), ("rejected", "injected")]
    assert api.db.reductions.count_documents({}) == 0 and api.db.issuances.count_documents({}) == 0
    assert api.submit(bank, body).json["status"] == "rejected"  # stays rejected: it is the same batch
    assert injected(api)["reject"] == 1
    api.admin("PUT", "/v1/admin/faults", {"rates": ""})
    retry = api.submit(bank, submission(bank, leaves, attempt=2))  # the same reductions, once more (R2)
    assert retry.status_code == 201 and retry.json["status"] == "issued"


def test_an_injected_5xx_does_nothing(make_api):
    api = make_api("error5xx=1")
    bank = api.onboard()
    before = counts(api.db)
    answer = api.submit(bank, submission(bank, make_leaves(2)))
    assert answer.status_code in (500, 502, 503) and answer.json["code"] == "injected_fault"
    assert counts(api.db) == before and injected(api)["error5xx"] == 1


def test_a_duplicated_request_is_done_once_and_answered_with_the_second_answer(make_api):
    api = make_api("duplicate=1")
    bank, other = api.onboard(), api.onboard()
    answer = api.submit(bank, submission(bank, make_leaves(2, grams=1_000_000)))
    assert answer.status_code == 200 and answer.json["status"] == "issued"  # the 2nd delivery found it stored
    assert api.db.batches.count_documents({}) == 1 and api.db.sequence.count_documents({}) == 1
    body = {"transfer_id": "t1", "batch_id": answer.json["batch_id"], "units": 1, "to_holder": other.participant}
    moved = api.call(bank, "POST", "/v1/transfers", body)
    assert moved.status_code == 200 and api.db.fates.count_documents({}) == 1
    assert injected(api)["duplicate"] == 2


def test_a_timeout_after_commit_keeps_the_work(make_api):
    api = make_api("timeout_after_commit=1")  # no socket in a test client: the answer is delayed 0 s
    bank = api.onboard()
    body = submission(bank, make_leaves(1, grams=1_000_000))
    api.submit(bank, body)
    assert api.db.batches.count_documents({}) == 1 and injected(api)["timeout_after_commit"] == 1
    assert api.call(bank, "GET", f"/v1/batches/{body['batch']['batch_id']}").json["status"] == "issued"


def test_latency_is_counted(make_api):
    api = make_api("latency=1")
    bank = api.onboard()
    api.call(bank, "GET", f"/v1/holdings/{bank.participant}")
    assert injected(api)["latency"] == 1


def test_the_same_seed_over_the_admin_api_gives_the_same_faults(make_api):
    api = make_api()
    bank = api.onboard()

    def run():
        api.admin("PUT", "/v1/admin/faults", {"rates": {"error5xx": 0.5}, "seed": 42})
        return [api.call(bank, "GET", f"/v1/holdings/{bank.participant}").status_code for _ in range(30)]

    first = run()
    assert first == run() and 200 in first and {500, 502, 503} & set(first)
    snapshot = api.admin("GET", "/v1/admin/faults").json
    assert snapshot["seed"] == 42 and snapshot["injected_total"] == snapshot["injected"]["error5xx"] > 0


def test_admin_off_without_a_token_and_bodies_have_a_limit(make_api):
    api = make_api(admin_token=None)
    assert api.admin("GET", "/v1/admin/faults").json["code"] == "admin_disabled"
    api = make_api()
    api.app.config["MAX_CONTENT_LENGTH"] = 1000
    bank = api.onboard()
    answer = api.submit(bank, submission(bank, make_leaves(20)))
    assert answer.status_code == 413 and answer.json["code"] == "body_too_large"
