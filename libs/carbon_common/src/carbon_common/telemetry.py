"""OpenTelemetry set-up, once per process, from the standard OTEL_* variables only.

OTEL_SDK_DISABLED=true turns it off; OTEL_EXPORTER_OTLP_ENDPOINT (default
http://127.0.0.1:4318) receives spans over OTLP/HTTP — the HTTP exporter because the gRPC one
does not cooperate with eventlet. W3C trace context is the propagator everywhere.
"""
import atexit
import os

from opentelemetry import trace, propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False
TRACER_NAME = "carbon"


def setup_telemetry(service_name: str, instrument_pymongo: bool = True) -> trace.Tracer:
    global _configured
    if _configured:
        return tracer()
    _configured = True
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return tracer()
    os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ["OTEL_SERVICE_NAME"]}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    if instrument_pymongo:
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        PymongoInstrumentor().instrument()
    return tracer()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def force_flush(timeout_millis: int = 5000) -> None:
    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(timeout_millis)


# AMQP headers: nameko turns `nameko.<key>` headers into worker context data, so the W3C
# fields ride as `nameko.traceparent` / `nameko.tracestate` and reach handlers unchanged.
HEADER_PREFIX = "nameko."


def inject_amqp_headers(headers: dict) -> dict:
    carrier = {}
    propagate.inject(carrier)
    for key, value in carrier.items():
        headers[HEADER_PREFIX + key] = value
    return headers


def extract_context(context_data: dict):
    """Context from nameko worker context data (keys without the `nameko.` prefix)."""
    carrier = {k: v for k, v in (context_data or {}).items() if k in ("traceparent", "tracestate")}
    return propagate.extract(carrier)


def current_traceparent() -> str:
    """The W3C traceparent of the current span ("" outside a trace): store it with work that is
    published later (outbox) so the event continues the same trace."""
    carrier = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""
