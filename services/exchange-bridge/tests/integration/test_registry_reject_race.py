"""A registry fault found by the exchange fault run (docs/chaos.md, "The exchange fault run"):
the injected `reject` is drawn per request, so two deliveries of one new batch at the same
instant may get different verdicts. The delivery not rejected claims the reductions and links
the group's chain; the rejected one then stores the batch document first, as rejected; the
first delivery's insert finds it and ends rejected too. The registry holds a rejected batch with
a chain link and claims: the bridge releases it, and the group's next batch (attempt 2 of the
same reductions) is refused `carried_mismatch` for ever. Expected to fail until the registry
makes a rejection never land after a link. Injected rejections are now decided per batch (from
the seed and the batch id), so with one configuration two deliveries always agree; this test
changes the rate between the two deliveries, which can still split them."""

import threading

import pytest

from exchange_bridge.registry import issuance
from exchange_bridge.registry.faults import Faults
from registry_support import RegistryApi, make_leaves, submission

pytestmark = pytest.mark.integration


@pytest.mark.xfail(strict=True, reason="registry: a rejection may land on a batch another delivery linked")
def test_two_deliveries_of_one_batch_with_different_injected_verdicts_agree(mongo_database, monkeypatch):
    faults = Faults("")  # no fault for the first delivery
    api = RegistryApi(mongo_database("registry"), faults)
    bank = api.onboard()
    body = submission(bank, make_leaves(3, grams=500_000))
    linked, release = threading.Event(), threading.Event()
    link = issuance.Issuance._link

    def pausing_link(self, sub, participant, n, inserted):  # the first delivery stops after its link
        stored = link(self, sub, participant, n, inserted)
        if not linked.is_set():
            linked.set()
            release.wait(10)
        return stored

    monkeypatch.setattr(issuance.Issuance, "_link", pausing_link)
    answers = {}
    first = threading.Thread(target=lambda: answers.setdefault("first", api.submit(bank, body)))
    first.start()
    assert linked.wait(10)
    faults.configure({"reject": 1.0})  # the second delivery draws a rejection
    answers["second"] = api.submit(bank, body)
    release.set()
    first.join(10)

    batch_id = body["batch"]["batch_id"]
    stored = api.db.batches.find_one({"_id": batch_id})
    links = list(api.db.issuances.find({"batch_id": batch_id}))
    claims = api.db.reductions.count_documents({"batch_id": batch_id})
    # one verdict: issued with its link and claims, or rejected with neither
    assert (stored["rejected"] is None and len(links) == 1 and claims == 3) or (
        stored["rejected"] and not links and not claims
    ), (stored["rejected"], len(links), claims, answers["first"].json["status"], answers["second"].json["status"])


def test_an_injected_rejection_is_decided_per_batch_so_every_delivery_agrees():
    faults = Faults("reject=0.5", seed=7)
    verdicts = {f"batch-{n}": faults.rejects(f"batch-{n}") for n in range(200)}
    assert {faults.rejects(b) for b in verdicts for _ in range(3)} <= {True, False}
    assert all(faults.rejects(b) == v for b, v in verdicts.items())  # the same answer on every delivery
    assert 60 < sum(verdicts.values()) < 140  # about the configured share
    assert Faults("reject=0.5", seed=8).rejects("batch-1") in (True, False)
