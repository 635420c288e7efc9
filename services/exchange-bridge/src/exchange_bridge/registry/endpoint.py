"""How every bank endpoint of the registry is served (`bank_endpoint`): fault decision, SM2
request authentication, JSON parsing, the operation (twice when a duplicate is injected), then
an optional dropped answer.
"""

import socket
import time
from functools import wraps

import orjson
from flask import jsonify, request

from exchange_bridge.registry.errors import ApiError
from exchange_bridge.registry.parts import registry


def json_body(raw: bytes):
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise ApiError("malformed_json", "the body is not valid JSON")


def _drop_connection() -> None:
    """Close the client's connection before any answer is written (werkzeug's server exposes
    the socket); without one (a test client), delay the answer beyond the client's timeout."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
            return
        except OSError:
            return
    time.sleep(registry().faults.timeout_seconds)


def bank_endpoint(operation):
    """operation(registry, caller, body, decision, **url_args) -> (payload, status)."""

    @wraps(operation)
    def endpoint(**url_args):
        reg = registry()
        decision = reg.faults.decide()
        if decision.delay:
            reg.faults.count("latency")
            time.sleep(decision.delay)
        if decision.error:
            reg.faults.count("error5xx")
            return jsonify(code="injected_fault", message="injected before any work: nothing was done"), decision.error
        raw = request.get_data(cache=True)
        target = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
        caller = reg.participants.authenticate(request.headers, request.method, target, raw)
        body = json_body(raw) if request.method == "POST" else None
        payload, status = operation(reg, caller, body, decision, **url_args)
        if decision.duplicate:
            reg.faults.count("duplicate")  # delivered twice: the second answer is returned
            payload, status = operation(reg, caller, body, decision, **url_args)
        if decision.timeout:
            reg.faults.count("timeout_after_commit")
            _drop_connection()
        return jsonify(payload), status

    return endpoint
