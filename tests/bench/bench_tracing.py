"""Span export encoding: the platform's wire encoder vs the stock OTLP encoder.

One account consumer span (20 attributes, as under load) encoded in batches of 512, as the
BatchSpanProcessor hands them over. Prints µs per span for both and the ratio.
"""

import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from carbon_common.otlp_wire import encode_request

SPANS = 5000
ATTRIBUTES = {
    "messaging.system": "rabbitmq",
    "messaging.operation.type": "process",
    "messaging.destination.name": "calc.events",
    "messaging.rabbitmq.destination.routing_key": "reduction_calculated",
    "messaging.consumer.group.name": "evt-calc-reduction_calculated--account.handle_reduction_calculated",
    "messaging.batch.message_count": 57,
    "carbon.event.type": "reduction_calculated",
    "carbon.delivery.attempt": 1,
    "messaging.message.id": "e" * 64,
    "carbon.event.id": "e" * 64,
    "carbon.record.key": "r" * 64,
    "carbon.partner.id": "metro-sz",
    "carbon.scenario": "metro_ride",
    "carbon.reduction.id": "d" * 64,
    "carbon.methodology.id": "CM-001",
    "carbon.methodology.version": "1.0.0",
    "carbon.ledger.entry_id": "l" * 64,
    "carbon.account.id": "acc_" + "a" * 32,
    "carbon.outcome": "credit",
    "carbon.grams": 123,
}


def per_span_us(encode, spans) -> float:
    started = time.perf_counter()
    for i in range(0, len(spans), 512):
        encode(spans[i : i + 512])
    return (time.perf_counter() - started) / len(spans) * 1e6


def main() -> None:
    collected = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "account"}))
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("carbon")
    for n in range(SPANS):
        tracer.start_span(f"process {n % 3}", kind=SpanKind.CONSUMER, attributes=ATTRIBUTES).end()
    spans = collected.get_finished_spans()
    stock = per_span_us(lambda batch: encode_spans(batch).SerializePartialToString(), spans)
    ours = per_span_us(encode_request, spans)
    print(f"span encoding, {SPANS} spans of {len(ATTRIBUTES)} attributes in batches of 512")
    print(f"   stock OTLP encoder {stock:6.1f} µs/span")
    print(f"   otlp_wire          {ours:6.1f} µs/span   ratio stock/ours {stock / ours:.1f}x")


if __name__ == "__main__":
    main()
