"""The span exporter's own encoder writes what the stock OTLP encoder writes.

Equality is checked on the parsed ExportTraceServiceRequest (field order on the wire is free
in protobuf), over hand-picked edge cases and a seeded random mix of spans."""

import random

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from carbon_common.otlp_wire import encode_request


def provider(**kwargs):
    collected = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": "account", "replica": 2}), **kwargs)
    tp.add_span_processor(SimpleSpanProcessor(collected))
    return tp, collected


def assert_same_request(spans):
    ours = ExportTraceServiceRequest()
    ours.ParseFromString(encode_request(spans))
    assert ours == encode_spans(spans)
    return ours


def test_a_consumer_span_with_every_kind_of_field_encodes_as_the_stock_encoder():
    tp, collected = provider(span_limits=SpanLimits(max_span_attributes=12))
    tracer, versioned = tp.get_tracer("carbon"), tp.get_tracer("pymongo", "0.66b1", schema_url="https://x/1.21")
    remote = SpanContext(
        trace_id=0xABC, span_id=0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("v", "1")])
    )
    with trace.use_span(NonRecordingSpan(remote)):
        span = tracer.start_span(
            "process evt-calc-reduction_calculated--account.handle",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.batch.message_count": 57,
                "negative": -(2**40),
                "big": 2**63 - 1,
                "ok": True,
                "no": False,
                "ratio": 0.125,
                "names": ("a", "碳账户😀"),
                "counts": (1, -2, 3),
                "flags": (True, False),
                "empty": (),
                "carbon.record.key": "r" * 64,
                "dropped 1": 1,
                "dropped 2": 2,
            },
            links=[Link(remote, {"why": "batch"}), Link(remote)],
        )
        span.add_event("exception", {"exception.type": "ValueError", "exception.message": "bad"})
        span.add_event("bare")
        span.set_status(Status(StatusCode.ERROR, "ValueError"))
        span.end()
    child = versioned.start_span("find", kind=SpanKind.CLIENT, context=trace.set_span_in_context(span))
    child.set_status(Status(StatusCode.OK))
    child.end()
    root = tracer.start_span("root")
    root.end()
    request = assert_same_request(collected.get_finished_spans())
    assert [len(r.scope_spans) for r in request.resource_spans] == [2]
    assert collected.get_finished_spans()[0].dropped_attributes == 1  # the limit was exercised


def test_random_spans_encode_as_the_stock_encoder():
    rng = random.Random(20261130)
    tp, collected = provider()
    tracers = [tp.get_tracer("carbon"), tp.get_tracer("other", "1.0")]

    def value():
        kind = rng.randrange(6)
        if kind == 0:
            return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x4E00, 0x9FFF)])) for _ in range(9))
        if kind == 1:
            return rng.choice([0, 1, 127, 128, 300, -1, -(2**63), 2**63 - 1, rng.randrange(-(10**12), 10**12)])
        if kind == 2:
            return rng.random() * 10 ** rng.randrange(-5, 20)
        if kind == 3:
            return rng.random() < 0.5
        if kind == 4:
            return tuple(rng.randrange(-1000, 1000) for _ in range(rng.randrange(4)))
        return tuple(str(rng.randrange(100)) for _ in range(rng.randrange(4)))

    parents = [None]
    for n in range(400):
        parent = rng.choice(parents)
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = rng.choice(tracers).start_span(
            f"span {n}",
            context=context,
            kind=rng.choice(list(SpanKind)),
            attributes={f"k{i}": value() for i in range(rng.randrange(25))},
            links=[Link(p.get_span_context(), {"n": n}) for p in parents[1:][-rng.randrange(3) :]] if n % 7 else [],
        )
        if n % 5 == 0:
            span.set_status(Status(rng.choice(list(StatusCode)), "why" if n % 10 == 0 else None))
        span.end()
        parents.append(span)
    assert_same_request(collected.get_finished_spans())
    assert len(collected.get_finished_spans()) == 400
