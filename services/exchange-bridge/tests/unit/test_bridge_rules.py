"""The bridge's pure rules: leaves from contributions, the queue cursor, the carried remainder,
when a group's batch is due, event payloads and their span links."""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from carbon_common.events import MAX_LINKS
from carbon_common.schemas import validate_payload
from exchange_bridge import announce, rules
from exchange_bridge.registry.signing import KEY_ID

from bridge_fakes import FakeDatabase, contribution


def slices(*groups_of_rows):
    return [
        {"k": k, "reductions": [[f"r{k}.{i}", g] for i, g in enumerate(rows)]}
        for k, rows in enumerate(groups_of_rows, 1)
    ]


def test_leaf_of_a_contribution_has_exactly_the_leaf_fields_and_its_vintage():
    c = contribution("pid-a", 1234, occurred_at="2026-12-31T16:00:00Z")  # 00:00 on 1 January in UTC+08:00
    leaf = rules.leaf_of(c)
    assert set(leaf) == {
        "reduction_id",
        "grams",
        "owner_pid",
        "methodology_id",
        "methodology_version",
        "factor_set_id",
        "factor_set_version",
        "vintage",
        "occurred_at",
    }
    assert leaf["vintage"] == 2027 and rules.group_of(leaf) == "metro_ride:1:2027"
    assert rules.candidate(c, "bank-pool")["consent_id"] == "consent-pid-a"


@pytest.mark.parametrize(
    "change",
    [
        {"occurred_at": "2026-06-01T10:00:00"},
        {"occurred_at": ""},
        {"methodology_id": ""},
        {"methodology_version": None},
        {"grams": 0},
        {"grams": 1.5},
        {"owner_pid": "x" * 129},
        {"factor_set_id": None},
    ],
)
def test_a_contribution_that_cannot_make_a_valid_leaf_is_unbatchable(change):
    with pytest.raises(rules.Unbatchable):
        rules.leaf_of({**contribution("pid-a", 10), **change})


def test_a_reduction_claimed_under_another_mechanism_never_goes_to_the_exchange():
    # green electricity certificates already carry the attribute: the contract says so
    green = contribution(
        "ent-a", 4_850_400, scenario="green_electricity_office", methodology_id="green_electricity_office"
    )
    with pytest.raises(rules.Unbatchable, match="not for the exchange: its green electricity certificates"):
        rules.candidate(green, "bank-pool")
    assert rules.candidate(contribution("pid-a", 10), "bank-pool")["leaf"]["grams"] == 10


def test_take_stops_at_the_limit_inside_a_slice_and_resumes_there():
    queue = slices([1, 2, 3], [4], [5, 6])
    rows, end = rules.take(queue, (1, 0), 2)
    assert [g for _, g in rows] == [1, 2] and end == (1, 2)
    rows, end = rules.take(queue, end, 2)
    assert [g for _, g in rows] == [3, 4] and end == (3, 0)
    rows, end = rules.take(queue, end, 10)
    assert [g for _, g in rows] == [5, 6] and end == (4, 0)
    assert rules.between(queue, (1, 2), (3, 1)) == [("r1.2", 3), ("r2.0", 4), ("r3.0", 5)]
    with pytest.raises(ValueError):
        rules.between(queue[:1], (1, 0), (3, 0))


def test_the_carried_remainder_passes_through_a_rejected_batch():
    slot = {
        "batch_id": "b2",
        "carried_from": "b1",
        "carried_in_grams": 300,
        "from": [2, 0],
        "to": [3, 1],
        "cum_from": 10,
        "cum_to": 20,
    }
    assert rules.carry_after(None, {}) == ("", 0)
    assert rules.carry_after(slot, {"issued": {"carried_out_grams": 42}}) == ("b2", 42)
    assert rules.carry_after(slot, {"released": {}}) == ("b1", 300)
    assert rules.next_range(slot, {"released": {}}) == ("retry", {"from": (2, 0), "to": (3, 1), "cum_from": 10})
    assert rules.next_range(slot, {"issued": {}}) == ("queue", {"from": (3, 1), "cum_from": 20})
    assert rules.next_range(None, {}) == ("queue", {"from": (1, 0), "cum_from": 0})


def test_a_batch_is_due_when_queue_and_carry_reach_the_threshold():
    assert rules.due(600_000, 400_000, 1_000_000)
    assert not rules.due(599_999, 400_000, 1_000_000)
    assert not rules.due(0, 999_999, 1)  # a carry alone is never a batch


def test_operation_ids_fit_the_registry():
    ids = {rules.client_id(kind, "key ü/1") for kind in ("transfer", "retire", "cancel")}
    assert len(ids) == 3 and all(KEY_ID.fullmatch(i) for i in ids)
    assert rules.client_id("retire", "a") == rules.client_id("retire", "a") != rules.client_id("retire", "b")


def test_event_payloads_fit_their_contracts_and_spans_link_the_records_traces(monkeypatch):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(announce, "tracer", lambda: provider.get_tracer("test"))
    traces = [f"00-{n:032x}-{n:016x}-01" for n in range(1, 100)]
    batch = {
        "_id": "ab" * 32,
        "batch": {
            "batch_id": "ab" * 32,
            "methodology_id": "metro_ride",
            "methodology_version": "1",
            "vintage": 2026,
            "attempt": 2,
            "record_count": 1,
            "quantity_grams": 1_500_000,
            "carried_in_grams": 0,
            "carried_from": "",
            "merkle_root": "cd" * 32,
            "consent_root": "ef" * 32,
            "period": "a/b",
        },
        "leaves": [{"reduction_id": "r-1"}],
        "transfer_entry_ids": ["t-1"],
        "traceparents": traces + traces[:5] + [""],
    }
    issued = {
        "at": "t",
        "units": 1,
        "serial": "S",
        "start": 7,
        "end": 7,
        "carried_out_grams": 500_000,
        "record_id": "issue:x",
    }
    events = announce.lifecycle_events(batch, "issued", issued, {})
    for event_type, _, payload in events:
        validate_payload(event_type, payload)
    sent = []
    repo = type("Repo", (), {"mark_published": lambda self, i, at: sent.append(i)})()
    announce.Announcer(lambda t, p, event_id: None, repo).publish(batch, events)
    assert sent == ["ab" * 32 + ":issued", "ab" * 32]
    spans = exporter.get_finished_spans()
    assert len(spans) == 2 and all(len(s.links) == MAX_LINKS for s in spans)
    assert all(s.parent is None for s in spans)  # a new trace per batch event, linked to its records
    assert [format(link.context.trace_id, "032x") for link in spans[0].links] == [
        t.split("-")[1] for t in traces[:MAX_LINKS]
    ]
    registered = events[1][2]
    assert registered["serial_start"] == "CN-PCA-METRO-RIDE-V1-2026-000000007-000000007" and registered["attempt"] == 2


def test_the_fake_database_refuses_what_ferretdb_would_scan():
    db = FakeDatabase()
    db["x"].insert_many([{"_id": 1, "a": 2}])
    with pytest.raises(AssertionError):
        db["x"].find({"a": 2})
