"""Liveness, readiness, metrics and the OpenAPI document."""

from importlib import resources

from flask import Blueprint, Response, current_app, jsonify

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    ext = current_app.extensions["ingest"]
    checks = {}
    try:
        ext.repo.ping()
        checks["mongo"] = "ok" if ext.repo.ensure_indexes_once() else "unavailable: indexes not created yet"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["mongo"] = f"unavailable: {type(exc).__name__}"
    try:
        ext.bus.ping()
        checks["amqp"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["amqp"] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ready" if ready else "unavailable", "checks": checks}), 200 if ready else 503


@bp.get("/metrics")
def metrics():
    return Response(current_app.extensions["ingest"].metrics.exposition(), mimetype="text/plain; version=0.0.4")


def openapi_text() -> str:
    return resources.files("ingest").joinpath("openapi.yaml").read_text()


@bp.get("/openapi.yaml")
def openapi():
    return Response(openapi_text(), mimetype="application/yaml")
