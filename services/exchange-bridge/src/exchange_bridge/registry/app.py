"""The registry's Flask app: `create_app(db, faults=None, …)`.

The parts live in exchange_bridge.registry.parts (`Registry`, reached by views through
`registry()`); every bank endpoint is served through exchange_bridge.registry.endpoint
(`bank_endpoint`: fault decision, SM2 request authentication, JSON parsing, the operation,
an optional dropped answer).
"""

import time

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from carbon_common import gm
from exchange_bridge.registry import catalogue as catalogues
from exchange_bridge.registry import views_admin, views_bank
from exchange_bridge.registry.errors import ApiError
from exchange_bridge.registry.faults import Faults
from exchange_bridge.registry.parts import Registry

MAX_BODY = 64 * 1024 * 1024
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 500: "internal_error"}


def create_app(
    db,
    faults: Faults | None = None,
    *,
    methodologies=None,
    admin_token: str | None = None,
    private_key: str | None = None,
    public_key: str | None = None,
    previous_public_keys=(),
    clock=time.time,
    max_leaves: int = 20_000,
) -> Flask:
    """`methodologies`: {(id, version)}, default the configured catalogue (catalogue.py);
    no key pair given: an ephemeral one (tests and demos only: records outlive it);
    `previous_public_keys`: the registry's earlier keys, published for records signed with them."""
    if private_key is None:
        private_key, public_key = gm.generate_sm2_keypair()
    catalogue = set(methodologies) if methodologies is not None else catalogues.configured()
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["registry"] = Registry(
        db,
        faults or Faults(),
        catalogue,
        (private_key, public_key, previous_public_keys),
        admin_token,
        clock,
        max_leaves,
    )

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return jsonify(error.body()), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = HTTP_CODES.get(error.code, "invalid_request")
        return jsonify(code=code, message=error.description), error.code

    app.register_blueprint(views_bank.bp)
    app.register_blueprint(views_admin.bp)
    return app
