"""The OTLP exporter follows the standard protocol variables, and refuses what it cannot do.

Each case runs in a fresh interpreter: this test process is eventlet-patched (root conftest),
and the refusal depends on exactly that.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_common import telemetry

ROOT = Path(__file__).resolve().parents[3]
SETUP = (
    "from carbon_common.telemetry import setup_telemetry, span_exporter; setup_telemetry('probe', False); "
    "exporter = span_exporter(); print(type(exporter).__module__, type(exporter).__mro__[1].__module__)"
)


def run(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, ("http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL")),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, ("grpc", "OTEL_EXPORTER_OTLP_PROTOCOL")),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            ("http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
        ),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": " GRPC "}, ("grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")),
    ],
)
def test_protocol_follows_the_standard_variables_per_signal_first(env, expected):
    assert telemetry.otlp_protocol(env) == expected


def test_http_protobuf_uses_the_http_exporter():
    result = run(SETUP, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["carbon_common.otlp_wire", "opentelemetry.exporter.otlp.proto.http.trace_exporter"]


def test_grpc_in_an_eventlet_process_is_refused_at_start_up():
    result = run("import eventlet; eventlet.monkey_patch(); " + SETUP, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    assert result.returncode != 0
    assert "fatal: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: this process runs on eventlet" in result.stderr, result.stderr


def test_grpc_in_a_plain_process_uses_the_grpc_exporter_or_names_the_missing_package():
    result = run(SETUP, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc")
    if importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is None:
        assert result.returncode != 0
        assert "needs the package opentelemetry-exporter-otlp-proto-grpc" in result.stderr, result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[0] == "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


def test_an_unsupported_protocol_stops_the_process_instead_of_losing_traces():
    result = run(SETUP, OTEL_EXPORTER_OTLP_PROTOCOL="http/json")
    assert result.returncode != 0
    assert "fatal: OTEL_EXPORTER_OTLP_PROTOCOL='http/json' is not supported" in result.stderr, result.stderr


def test_a_nameko_service_refuses_grpc_before_serving():
    """The real `nameko run` of a service: the Tracing dependency sets telemetry up first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        MONGO_URI="mongodb://127.0.0.1:1/",
        AMQP_URI="pyamqp://guest:guest@127.0.0.1:5672/",
        WEB_SERVER_ADDRESS="127.0.0.1:0",
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "nameko"), "run", "--config", "services/calc/config.yml", "calc.service"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "runs on eventlet" in result.stderr, result.stderr[-2000:]
