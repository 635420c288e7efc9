"""A corrected factor set: recalculation reverses and recomputes each affected reduction once,
refuses (and says so in an event) for exchange-registered ones, and does nothing more when run
again."""

import pytest

from carbon_common.events import EventPublisher
from carbon_dev.testing import TEST_MONGO_URI

from calc.cli import recalculate
from carbon_dev.calc_fixtures import MethodologyDir, behaviour

EV = dict(scenario="ev_charging", occurred_at="2026-02-01T20:00:00+08:00")


@pytest.fixture
def methodology_dir(tmp_path):
    return MethodologyDir(tmp_path / "methodologies")


def test_corrected_factor_set_reverses_and_recalculates_once(
    start_calc,
    ingest,
    event_listener,
    platform_amqp,
    calc_db,
    methodology_dir,
    publish_grid_correction,
    monkeypatch,
    capsys,
    wait_until,
):
    calculated = event_listener("calc", "reduction_calculated")
    reversed_ = event_listener("calc", "reduction_reversed")
    refused = event_listener("calc", "reduction_reversal_refused")
    start_calc(CALC_METHODOLOGY_DIR=str(methodology_dir.root))
    records = [
        behaviour(10, **EV, kwh="30", region="north"),
        behaviour(11, **EV, kwh="30", region="north"),
        behaviour(12, **EV, kwh="30", region="north"),  # will be registered at the exchange
        behaviour(13, **EV, kwh="30", region="south"),  # region the correction does not touch
        behaviour(14),
    ]  # metro: another methodology
    for r in records:
        ingest.publish("behaviour_received", r)
    first = {e["data"]["record_key"]: e["data"] for e in calculated.wait(5)}
    # v2 north 2023 0.6361: 40,770 − 30 × 636.1 = 40,770 − 19,083 = 21,687
    assert first[records[0]["record_key"]]["grams"] == 21687
    locked_id = first[records[2]["record_key"]]["reduction_id"]
    bridge = EventPublisher(platform_amqp["AMQP_URI"], "exchange_bridge")
    bridge.publish(
        "exchange_batch_registered",
        {
            "batch_id": "B-7",
            "reduction_ids": [locked_id],
            "grams": 21687,
            "serial_start": "7",
            "serial_end": "7",
            "registered_at": "2026-02-03T00:00:00Z",
        },
    )
    wait_until(lambda: calc_db.locks.count_documents({"_id": locked_id}), message="lock stored")

    # Publish the correction: north 2023 was mistyped, 0.6361 -> 0.6400, same window as v2.
    publish_grid_correction(methodology_dir)
    monkeypatch.setenv("AMQP_URI", platform_amqp["AMQP_URI"])
    monkeypatch.setenv("MONGO_URI", TEST_MONGO_URI)
    monkeypatch.setenv("MONGO_DATABASE", calc_db.name)
    for _ in range(2):
        assert recalculate.main(["--methodology-dir", str(methodology_dir.root)]) == 0
    first_run, second_run = capsys.readouterr().out.split("done:")[:2]

    # Publishes are broker-confirmed before main() returns: everything is already queued.
    reversals = [e["body"]["data"] for e in reversed_.drain()]
    new = [e["body"]["data"] for e in calculated.drain()[5:]]
    affected = {records[i]["record_key"]: first[records[i]["record_key"]] for i in (0, 1, 3)}
    assert sorted(r["reduction_id"] for r in reversals) == sorted(a["reduction_id"] for a in affected.values())
    assert {r["reason"] for r in reversals} == {"factor_corrected"}
    assert {r["corrected_by_version"] for r in reversals} == {"2.1"}
    assert sorted(n["supersedes"] for n in new) == sorted(a["reduction_id"] for a in affected.values())
    assert all(n["revision"] == 1 and n["factor_set_version"] == "2.1" for n in new)
    by_record = {n["record_key"]: n["grams"] for n in new}
    # north corrected: 40,770 − 30 × 640.0 = 40,770 − 19,200 = 21,570; south unchanged: 40,770 − 30 × 404.2 = 28,644
    assert by_record == {
        records[0]["record_key"]: 21570,
        records[1]["record_key"]: 21570,
        records[3]["record_key"]: 28644,
    }
    # each reversal names the grams its successor gets (the account keeps them if it was redeemed)
    assert {r["reduction_id"]: r["corrected_grams"] for r in reversals} == {
        first[k]["reduction_id"]: by_record[k] for k in affected
    }
    assert locked_id not in {r["reduction_id"] for r in reversals}
    assert locked_id not in {n["supersedes"] for n in new}
    [refusal] = [e["body"]["data"] for e in refused.drain()]
    assert (refusal["reduction_id"], refusal["code"], refusal["batch_id"]) == (locked_id, "locked_at_exchange", "B-7")
    assert (int(refusal["original_grams"]), int(refusal["corrected_grams"])) == (21687, 21570)
    assert "3 recalculated" in first_run and "1 refused (locked at the exchange)" in first_run
    assert "0 recalculated" in second_run and "4 already done" in second_run

    # A late redelivery of a recalculated record publishes nothing: its revision 0 is reversed.
    from calc.loader import load_catalog
    from carbon_common.batching import Delivery
    from calc.processing import handle_behaviours
    from calc.repository import CalcRepository

    class Recorder:
        def __init__(self):
            self.sent = []

        def publish_many(self, items):
            self.sent.extend(items)

    publisher = Recorder()
    counts = handle_behaviours(
        [Delivery({"data": records[0]}, message=None)],
        load_catalog(methodology_dir.root),
        CalcRepository(calc_db),
        publisher,
    )
    assert (counts, publisher.sent) == ({"already_reversed": 1}, [])
