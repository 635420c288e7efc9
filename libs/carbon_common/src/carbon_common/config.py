"""Configuration from the environment, read once at start-up: the one reader of the
platform's own settings. Two exceptions, on purpose: `telemetry.py` reads the standard `OTEL_*`
variables the way the OpenTelemetry SDK specifies them (and sets defaults the SDK then reads),
and ingest's `gunicorn.conf.py` sets `PROMETHEUS_MULTIPROC_DIR` for prometheus_client's workers.

A missing required value stops the process with a message naming the variable
(Online Boutique's mustMapEnv), so a mis-deployed pod fails loudly at start, not at first use.

`config`: a nameko service passes its container config (config.yml maps the environment, a
test passes values directly); a value there wins over the environment.
"""

import os
import sys
from typing import Mapping


class MissingSetting(SystemExit):
    def __init__(self, name):
        super().__init__(f"missing required environment variable {name}")
        self.name = name


def _raw(name: str, config: Mapping | None) -> str:
    value = str((config or {}).get(name) or "").strip()
    return value or os.environ.get(name, "").strip()


def require(name: str, config: Mapping | None = None) -> str:
    value = _raw(name, config)
    if not value:
        print(f"fatal: missing required environment variable {name}", file=sys.stderr)
        raise MissingSetting(name)
    return value


def setting(name: str, default: str, config: Mapping | None = None) -> str:
    return _raw(name, config) or default


def int_setting(name: str, default: int, config: Mapping | None = None) -> int:
    return _number(name, default, config, int, "an integer")


def float_setting(name: str, default: float, config: Mapping | None = None) -> float:
    return _number(name, default, config, float, "a number")


def _number(name: str, default, config: Mapping | None, parse, what: str):
    raw = setting(name, str(default), config)
    try:
        return parse(raw)
    except ValueError:
        raise SystemExit(f"environment variable {name} must be {what}, got {raw!r}")
