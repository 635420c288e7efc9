"""JSON logs carrying trace and span ids, one object per line on stderr.

Never log personal data: callers log pseudonyms (user_pid) and record keys only.
"""

import json
import logging
import sys
import time

from opentelemetry import trace

from carbon_common.config import setting

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service_name: str):
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service_name,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if span.is_valid:
            doc["trace_id"] = format(span.trace_id, "032x")
            doc["span_id"] = format(span.span_id, "016x")
        doc.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(service_name: str, level: str | None = None) -> None:
    """`level` defaults to LOG_LEVEL from the environment, else INFO."""
    level = level or setting("LOG_LEVEL", "INFO").upper()
    handler = _CurrentStderr()
    handler.setFormatter(JsonFormatter(service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kombu", "amqp", "nameko", "pymongo", "urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel("WARNING")
