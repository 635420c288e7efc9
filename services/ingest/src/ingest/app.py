"""Flask app factory: `gunicorn -c services/ingest/gunicorn.conf.py "ingest.app:create_app()"`."""

import logging
import time
import uuid
from dataclasses import dataclass

from flask import Flask, g, jsonify, request
from pymongo.errors import PyMongoError
from werkzeug.exceptions import HTTPException

from carbon_common import telemetry
from carbon_common.events import PublishError
from carbon_common.logs import configure_logging
from carbon_common.mongo import connect_database

from ingest.backpressure import Backlog
from ingest.bus import Bus
from ingest.config import load_settings
from ingest.consents import Consents
from ingest.fulfilments import Fulfilments
from ingest.errors import ApiError
from ingest.intake import Intake
from ingest.metrics import Metrics
from ingest.partners import Partners
from ingest.repository import Repository
from ingest.views import admin_api, ops, partner_api

log = logging.getLogger("ingest")
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


@dataclass
class Extension:
    settings: object
    repo: Repository
    bus: object
    metrics: Metrics
    intake: Intake
    consents: Consents
    partners: Partners
    fulfilments: Fulfilments
    clock: object
    backlog: Backlog


def create_app(config: dict | None = None) -> Flask:
    """`config` overrides environment settings (keys are the variable names); tests may also
    pass BUS (a publisher stand-in), CLOCK (seconds since the epoch) and TELEMETRY=False."""
    config = dict(config or {})
    settings = load_settings(config)
    if config.get("TELEMETRY", True):
        configure_logging("ingest")
        telemetry.setup_telemetry("ingest")
    app = Flask("ingest")
    app.json.sort_keys = False
    repo = Repository(connect_database("carbon_ingest", uri=settings.mongo_uri, name=settings.mongo_database))
    repo.ensure_indexes_once()  # retried by readiness and before any request while the store is down
    bus = config.get("BUS") or Bus(settings.amqp_uri)
    metrics = Metrics()
    app.extensions["ingest"] = Extension(
        settings=settings,
        repo=repo,
        bus=bus,
        metrics=metrics,
        intake=Intake(repo, bus, settings, metrics),
        consents=Consents(repo, bus, settings),
        partners=Partners(repo),
        fulfilments=Fulfilments(bus),
        clock=config.get("CLOCK") or time.time,
        backlog=Backlog(settings.amqp_uri, settings.max_backlog, settings.backlog_poll_seconds, metrics.backlog),
    )
    if config.get("TELEMETRY", True):  # first, so its span is open when our hooks read the trace id
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz,metrics")
    for blueprint in (ops.bp, admin_api.bp, partner_api.bp):
        app.register_blueprint(blueprint)
    _install_hooks(app, metrics)
    return app


def _error(code: str, status: int, message: str, **details):
    body = {"code": code, "message": message, "trace_id": g.get("trace_id", ""), **details}
    return jsonify(body), status


def _install_hooks(app: Flask, metrics: Metrics) -> None:
    @app.before_request
    def _start():
        g.started = time.perf_counter()
        g.trace_id = telemetry.current_trace_id() or uuid.uuid4().hex
        if (
            request.path not in ("/healthz", "/readyz", "/metrics")
            and not app.extensions["ingest"].repo.ensure_indexes_once()
        ):
            return _error("unavailable", 503, "the store is not reachable yet; retry later")

    @app.after_request
    def _finish(response):
        response.headers["X-Trace-Id"] = g.get("trace_id", "")
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(endpoint=endpoint, status=str(response.status_code)).observe(
            time.perf_counter() - g.get("started", time.perf_counter())
        )
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        metrics.rejections.labels(code=exc.code).inc()
        response = _error(exc.code, exc.status, exc.message, **exc.details)
        if "retry_after" in exc.details:  # rate_limited, overloaded
            response[0].headers["Retry-After"] = str(exc.details["retry_after"])
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = HTTP_CODES.get(exc.code, "invalid_request")
        return _error(code, exc.code, exc.description or code)

    @app.errorhandler(PublishError)
    def _publish_error(exc):
        log.warning("event not confirmed: %s", type(exc).__name__)
        return _error("unavailable", 503, "the event bus did not confirm; retry the request (it is idempotent)")

    @app.errorhandler(PyMongoError)
    def _mongo_error(exc):
        log.warning("database unavailable: %s", type(exc).__name__)
        return _error("unavailable", 503, "the database is unavailable; retry the request (it is idempotent)")

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error")
        return _error("internal_error", 500, "internal error")
