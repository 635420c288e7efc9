"""OpenTelemetry set-up, once per process, from the standard OTEL_* variables only.

OTEL_SDK_DISABLED=true turns it off. The span exporter follows the standard protocol setting,
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL (default http/protobuf):
  http/protobuf  OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://127.0.0.1:4318)
  grpc           OTLP/gRPC (default endpoint http://127.0.0.1:4317), plain processes only: the
                 gRPC exporter does not cooperate with eventlet, so a nameko (eventlet)
                 process refuses it at start-up, as it does when the installed packages lack
                 opentelemetry-exporter-otlp-proto-grpc.
Anything else (http/json has no Python exporter) stops the process at start-up with a message
naming the variable, like a missing required setting: traces are never silently lost.
The exporters read the other standard variables themselves (OTEL_EXPORTER_OTLP_CERTIFICATE,
…_HEADERS, …_TIMEOUT), and the TracerProvider OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG.
W3C trace context is the propagator everywhere.
"""

import atexit
import os
import sys

from opentelemetry import trace, propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False
TRACER_NAME = "carbon"
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
DEFAULT_ENDPOINTS = {"http/protobuf": "http://127.0.0.1:4318", "grpc": "http://127.0.0.1:4317"}


class UnsupportedExporter(SystemExit):
    """The OTLP protocol asked for cannot be exported by this process."""


def otlp_protocol(env=os.environ) -> tuple[str, str]:
    """(protocol, the variable it came from) following the OTel precedence: per-signal first."""
    for name in PROTOCOL_VARIABLES:
        value = env.get(name, "").strip().lower()
        if value:
            return value, name
    return "http/protobuf", PROTOCOL_VARIABLES[1]


def eventlet_patched() -> bool:
    """True in nameko processes (eventlet monkey-patched sockets/threads)."""
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher and (patcher.is_monkey_patched("socket") or patcher.is_monkey_patched("thread")))


def _refuse(message: str):
    print(f"fatal: {message}", file=sys.stderr)
    raise UnsupportedExporter(message)


def span_exporter(env=os.environ):
    """The OTLP span exporter the environment asks for, or UnsupportedExporter (a SystemExit)."""
    protocol, variable = otlp_protocol(env)
    if protocol == "http/protobuf":
        from carbon_common.otlp_wire import WireSpanExporter  # the stock one, with a faster encoder

        return WireSpanExporter()
    if protocol == "grpc":
        if eventlet_patched():
            _refuse(
                f"{variable}=grpc: this process runs on eventlet (nameko), where the OTLP gRPC exporter "
                "hangs; use http/protobuf (the collector's port 4318)"
            )
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            _refuse(
                f"{variable}=grpc needs the package opentelemetry-exporter-otlp-proto-grpc, which is not "
                "installed here; use http/protobuf (the collector's port 4318)"
            )
        return OTLPSpanExporter()
    _refuse(f"{variable}={protocol!r} is not supported: use http/protobuf or grpc")


def setup_telemetry(service_name: str, instrument_pymongo: bool = True) -> trace.Tracer:
    global _configured
    if _configured:
        return tracer()
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        _configured = True
        return tracer()
    os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
    protocol, _ = otlp_protocol()
    if protocol in DEFAULT_ENDPOINTS:
        os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_ENDPOINTS[protocol])
    exporter = span_exporter()  # refuses before anything is configured

    _configured = True
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ["OTEL_SERVICE_NAME"]}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    atexit.register(provider.shutdown)
    if instrument_pymongo:
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

        PymongoInstrumentor().instrument()
    return tracer()


_tracer = None


def tracer() -> trace.Tracer:
    """One Tracer per process: get_tracer builds a new one (and hashes the Resource) per call,
    which cost ~5% of a batch consumer's CPU when called per record."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer(TRACER_NAME)
    return _tracer


def force_flush(timeout_millis: int = 5000) -> None:
    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(timeout_millis)


# AMQP headers: nameko turns `nameko.<key>` headers into worker context data, so the W3C
# fields ride as `nameko.traceparent` / `nameko.tracestate` and reach handlers unchanged.
HEADER_PREFIX = "nameko."


def inject_amqp_headers(headers: dict, context=None) -> dict:
    carrier = {}
    propagate.inject(carrier, context=context)
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
