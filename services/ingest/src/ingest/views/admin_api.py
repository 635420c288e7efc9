"""The admin API (bearer ADMIN_TOKEN, separate from partner signing): partners and keys."""

from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify

from ingest import jsonsafe
from ingest.views import auth

bp = Blueprint("admin_api", __name__, url_prefix="/admin/v1")


@bp.before_request
def _require_admin():
    auth.require_admin()


def _partners():
    return current_app.extensions["ingest"].partners


def _now():
    return datetime.fromtimestamp(current_app.extensions["ingest"].clock(), timezone.utc)


def _json():
    ext = current_app.extensions["ingest"]
    return jsonsafe.parse(auth.read_body(ext.settings.max_body_bytes))


@bp.get("/partners")
def list_partners():
    return jsonify({"partners": _partners().list()})


@bp.post("/partners")
def register_partner():
    status, body = _partners().register(_json(), _now())
    return jsonify(body), status


@bp.get("/partners/<partner_id>")
def get_partner(partner_id):
    return jsonify(_partners().view(partner_id))


@bp.post("/partners/<partner_id>/keys")
def rotate_key(partner_id):
    status, body = _partners().rotate_key(partner_id, _json(), _now())
    return jsonify(body), status


@bp.post("/partners/<partner_id>/keys/<key_id>/revoke")
def revoke_key(partner_id, key_id):
    return jsonify(_partners().revoke_key(partner_id, key_id, _now()))


@bp.post("/partners/<partner_id>/suspend")
def suspend(partner_id):
    return jsonify(_partners().set_status(partner_id, "suspended"))


@bp.post("/partners/<partner_id>/resume")
def resume(partner_id):
    return jsonify(_partners().set_status(partner_id, "active"))
