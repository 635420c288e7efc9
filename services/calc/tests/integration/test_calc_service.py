"""The calc service through the real broker and FerretDB: behaviour_received in,
reduction_calculated / behaviour_rejected out; RPC preview and listings; health."""

import pathlib

import pytest
import requests
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from carbon_common.gm import sm3_hex
from carbon_common.schemas import validate_envelope

import calc
from calc.repository import CalcRepository
from carbon_dev.calc_fixtures import behaviour

METHODOLOGIES = pathlib.Path(calc.__file__).parent / "methodologies"


def test_behaviour_received_in_reduction_calculated_out(start_calc, ingest, event_listener, calc_db):
    calculated = event_listener("calc", "reduction_calculated")
    start_calc()
    record = behaviour(1)
    ingest.publish("behaviour_received", record, event_id="evt-1")
    [envelope] = calculated.wait(1)
    validate_envelope(envelope)
    reduction = envelope["data"]
    # 12.4 km × 46.7 g/pkm = 579.08 → 579
    assert reduction["grams"] == 579
    assert reduction["reduction_id"] == sm3_hex(f"{record['record_key']}:0".encode()) == envelope["event_id"]
    assert (reduction["methodology_id"], reduction["methodology_version"]) == ("metro_ride", "1")
    assert reduction["consent_id"] == "consent-1" and reduction["inputs"]["distance_km"] == "12.4"
    assert reduction["baseline_g"] == "579.08" and reduction["project_g"] == "0"
    assert reduction["caps"] == [
        {"period": "day", "max_grams": 0, "max_count": 5, "scope": "user_scenario", "scope_key": ""}
    ]
    [stored] = CalcRepository(calc_db).pinned_to("methodology", "metro_ride", "1")
    assert stored["_id"] == reduction["reduction_id"] and stored["payload"] == reduction


def test_redelivered_record_yields_the_same_reduction_once(start_calc, ingest, event_listener, calc_db):
    calculated = event_listener("calc", "reduction_calculated")
    start_calc()
    ingest.publish("behaviour_received", behaviour(2), event_id="evt-2a")
    ingest.publish("behaviour_received", behaviour(2), event_id="evt-2b")  # ingest retried
    first, second = calculated.wait(2)
    assert first["event_id"] == second["event_id"] and first["data"] == second["data"]
    assert calc_db.outcomes.count_documents({}) == 1


def test_ineligible_record_is_rejected_with_reason_not_dropped(
    start_calc, ingest, event_listener, calc_db, monkeypatch
):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from calc import processing

    spans, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(processing, "tracer", lambda: provider.get_tracer("test"))
    rejected = event_listener("calc", "behaviour_rejected")
    calculated = event_listener("calc", "reduction_calculated")
    start_calc()
    ingest.publish("behaviour_received", behaviour(3, distance_km="250", city="shenzhen"))
    [envelope] = rejected.wait(1)
    assert envelope["data"]["code"] == "implausible"
    assert envelope["data"]["record_key"] == f"{3:064x}" and "plausible maximum" in envelope["data"]["message"]
    assert calc_db.outcomes.count_documents({"record_key": f"{3:064x}", "kind": "rejection"}) == 1
    assert calculated.drain() == []
    # processing spans are shared by a request's records: the rejected one has a span of its own
    [span] = [s for s in spans.get_finished_spans() if s.name == "reject record"]
    assert (
        span.attributes["carbon.record.key"] == f"{3:064x}"
        and span.attributes["carbon.rejection.code"] == "implausible"
    )


def test_a_deletion_request_unlinks_the_person_from_every_outcome_calc_keeps(
    start_calc, ingest, event_listener, calc_db, wait_until
):
    calculated = event_listener("calc", "reduction_calculated")
    start_calc()
    records = [behaviour(20), {**behaviour(21), "user_pid": behaviour(20)["user_pid"]}, behaviour(22)]
    for n, record in enumerate(records):
        ingest.publish("behaviour_received", record, event_id=f"evt-del-{n}")
    calculated.wait(3)
    person = records[0]["user_pid"]

    ingest.publish("personal_data_deleted", {"user_pid": person, "requested_at": "2026-11-25T08:00:00Z"})
    wait_until(lambda: calc_db.forgotten.count_documents({"_id": person}) == 1, timeout=20)
    wait_until(lambda: calc_db.outcomes.count_documents({"forgotten": True}) == 2, timeout=20)
    texts = [doc["payload_json"] + doc["record_json"] for doc in calc_db.outcomes.find()]
    assert sum(person in text for text in texts) == 0 and len(texts) == 3
    assert sum(records[2]["user_pid"] in text for text in texts) == 1  # others keep theirs

    # the person's records still on their way: nothing calculated, stored or published
    late = {**behaviour(23), "user_pid": person}
    ingest.publish("behaviour_received", late, event_id="evt-del-late")
    ingest.publish("behaviour_received", records[0], event_id="evt-del-0-again")  # a redelivery
    ingest.publish("behaviour_received", behaviour(24), event_id="evt-del-other")
    after = calculated.wait(4)[3:]
    assert [e["data"]["record_key"] for e in after] == [behaviour(24)["record_key"]]
    assert len(calculated.drain()) == 4 and calc_db.outcomes.count_documents({}) == 4


def test_exchange_registration_locks_reductions(start_calc, platform_amqp, calc_db, wait_until):
    from carbon_common.events import EventPublisher

    start_calc()
    bridge = EventPublisher(platform_amqp["AMQP_URI"], "exchange_bridge")
    batch = {
        "batch_id": "B-1",
        "reduction_ids": ["r1", "r2"],
        "grams": 1000,
        "serial_start": "1",
        "serial_end": "1",
        "registered_at": "2026-03-03T00:00:00Z",
    }
    bridge.publish("exchange_batch_registered", batch, event_id="batch-B-1")
    bridge.publish("exchange_batch_registered", batch, event_id="batch-B-1")  # redelivered
    wait_until(lambda: calc_db.locks.count_documents({}) == 2, message="two locks")
    bridge.close()


def test_preview_and_methodology_rpc(start_calc, calc_config):
    start_calc()
    with ServiceRpcProxy("calc", calc_config) as calc:
        answer = calc.preview(
            {
                "scenario": "ev_charging",
                "occurred_at": "2026-02-01T20:00:00+08:00",
                "activity": {"kwh": "30", "region": "southwest"},
            }
        )
        # BE = 30 ÷ 0.20 × 271.8 = 40,770; PE = 30 × 247.2 = 7,416 → 33,354
        assert answer["grams"] == 33354 and answer["baseline_g"] == "40770" and answer["project_g"] == "7416"
        assert answer["factors"]["grid_kg_per_kwh"] == "0.2472"
        assert answer["factor_set"] == {"id": "cn_grid_average", "version": "2"}
        assert "petrol_car_g_per_km" in answer["formula"]["baseline_g"]
        ineligible = calc.preview(
            {"scenario": "walking", "occurred_at": "2026-02-01T20:00:00+08:00", "activity": {"steps": "12"}}
        )
        assert ineligible["eligible"] is False and ineligible["code"] == "below_minimum"
        with pytest.raises(RemoteError) as err:
            calc.preview({"scenario": "walking", "occurred_at": "yesterday", "activity": {"steps": "9000"}})
        assert err.value.exc_type == "InvalidRecord"
        listed = {(m["id"], m["version"]) for m in calc.list_methodologies()}
        shipped = {p.name for p in METHODOLOGIES.glob("*.yml")}  # one file per methodology version
        assert ("household_electricity", "1") in listed and len(listed) == len(shipped)
        assert calc.get_methodology("walking", "1")["caps"][0]["max_grams"] == 296
        assert calc.get_factor_set("cn_grid_average", "2")["factors"]["average"]["2023"]["north"] == "0.6361"
        with pytest.raises(RemoteError) as err:
            calc.get_methodology("walking", "9")
        assert err.value.exc_type == "UnknownVersion"


def test_health_reports_ready(start_calc, calc_config):
    start_calc()
    response = requests.get(f"http://{calc_config['WEB_SERVER_ADDRESS']}/health", timeout=5)
    assert response.status_code == 200 and response.json()["checks"]["mongo"] == "ok"
