"""The registry's Flask app: `create_app(db, faults=None, …)`.

One `Registry` holds the parts (participants, issuance, blocks, records) over the registry's
own database; views reach it as `current_app.extensions["registry"]`. Every bank endpoint
goes through `bank_endpoint`: fault decision, SM2 request authentication, JSON parsing, the
operation (twice when a duplicate is injected), then an optional dropped answer.
"""

import socket
import time
from functools import wraps

import orjson
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from carbon_common import gm
from exchange_bridge.registry import catalogue as catalogues
from exchange_bridge.registry.blocks import Ledger
from exchange_bridge.registry.errors import ApiError
from exchange_bridge.registry.faults import Faults
from exchange_bridge.registry.issuance import Issuance
from exchange_bridge.registry.participants import Participants
from exchange_bridge.registry.records import Records
from exchange_bridge.registry.store import Chains, ensure_indexes

MAX_BODY = 64 * 1024 * 1024
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 500: "internal_error"}


class Registry:
    def __init__(self, db, faults, catalogue, private_key, public_key, admin_token, clock, max_leaves):
        ensure_indexes(db)
        self.db, self.faults, self.catalogue, self.admin_token = db, faults, catalogue, admin_token
        self.chains = Chains(db)
        self.records = Records(db, self.chains, private_key, public_key)
        self.ledger = Ledger(db, self.chains, self.records)
        self.participants = Participants(db, clock)
        self.issuance = Issuance(db, self.chains, self.records, self.ledger, self.participants, catalogue, max_leaves)


def create_app(
    db,
    faults: Faults | None = None,
    *,
    methodologies=None,
    admin_token: str | None = None,
    private_key: str | None = None,
    public_key: str | None = None,
    clock=time.time,
    max_leaves: int = 20_000,
) -> Flask:
    """`methodologies`: {(id, version)}, default the configured catalogue (catalogue.py);
    no key pair given: an ephemeral one (tests and demos only: records outlive it)."""
    if private_key is None:
        private_key, public_key = gm.generate_sm2_keypair()
    catalogue = set(methodologies) if methodologies is not None else catalogues.configured()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["registry"] = Registry(
        db, faults or Faults(), catalogue, private_key, public_key, admin_token, clock, max_leaves
    )

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error.body()), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = HTTP_CODES.get(error.code, "invalid_request")
        return jsonify(code=code, message=error.description), error.code

    from exchange_bridge.registry import views_admin, views_bank

    app.register_blueprint(views_bank.bp)
    app.register_blueprint(views_admin.bp)
    return app


def registry() -> Registry:
    return current_app.extensions["registry"]


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
