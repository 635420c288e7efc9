"""A deletion request in calc (calc.forgetting, over FakeCalcRepository): a forgotten person's
records still on their way are dropped before calculation, and one that lands while a batch is
storing is scrubbed by the batch itself; a forgotten outcome is never recalculated."""

from carbon_common.batching import Delivery

from calc import forgetting
from calc.processing import handle_behaviours
from calc.recalculation import recalculate
from calc_fakes import FakeCalcRepository, FakePublisher
from carbon_dev.calc_fixtures import behaviour

PERSON = behaviour(1)["user_pid"]


def deliveries(*records):
    return [Delivery({"data": r}, message=None) for r in records]


def stored_texts(repo) -> list[str]:
    return [d["payload_json"] + d["record_json"] for d in repo._outcomes.values()]


def test_records_of_a_forgotten_person_are_dropped_before_calculation(catalog):
    repo, publisher = FakeCalcRepository(), FakePublisher()
    repo.forget_person(PERSON, "2026-11-25T08:00:00Z")
    batch = deliveries(behaviour(1), {**behaviour(2), "user_pid": PERSON}, behaviour(3), {"no": "record_key"})
    work, dropped = forgetting.drop_forgotten(batch, repo)
    assert dropped == 2 and [d.data.get("record_key") for d in work] == [behaviour(3)["record_key"], None]
    handle_behaviours(work, catalog, repo, publisher)
    assert [p["record_key"] for p in publisher.of("reduction_calculated")] == [behaviour(3)["record_key"]]
    assert forgetting.scrub_stored(work, repo) == 0
    assert not any(PERSON in text for text in stored_texts(repo))


def test_a_deletion_request_landing_while_a_batch_stores_is_carried_out_by_the_batch(catalog):
    repo, publisher = FakeCalcRepository(), FakePublisher()
    batch = deliveries(behaviour(1), behaviour(3))
    work, dropped = forgetting.drop_forgotten(batch, repo)  # not forgotten yet
    assert dropped == 0
    # the request's tombstone and scan run now, before the batch stores: the scan finds nothing
    assert repo.forget_person(PERSON, "2026-11-25T08:00:00Z")["outcomes"] == 0
    handle_behaviours(work, catalog, repo, publisher)
    assert any(PERSON in text for text in stored_texts(repo))
    assert forgetting.scrub_stored(work, repo) == 1  # the batch reads the tombstones after storing
    assert not any(PERSON in text for text in stored_texts(repo))
    assert sum(behaviour(3)["user_pid"] in text for text in stored_texts(repo)) == 1


def test_a_forgotten_outcome_is_not_recalculated(methodology_dir):
    repo, publisher = FakeCalcRepository(), FakePublisher()
    handle_behaviours(deliveries(behaviour(1), behaviour(3)), methodology_dir.catalog(), repo, publisher)
    methodology_dir.derive(
        "metro_ride.v1.yml", "metro_ride.v1.1.yml", version='"1.1"', status="corrected", supersedes='"1"'
    )
    repo.forget_person(PERSON, "2026-11-25T08:00:00Z")
    later = FakePublisher()
    [progress] = recalculate(methodology_dir.catalog(), repo, later.publish, report=lambda line: None)
    assert progress.total == 1 and progress.recalculated == 1
    assert [p["record_key"] for p in later.of("reduction_reversed")] == [behaviour(3)["record_key"]]
    assert all(p.get("user_pid") != "" for _, p, _ in later.published)
