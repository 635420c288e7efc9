"""The signed API: partners post behaviour records and report catalogue fulfilments; bank apps
manage consents.

Each handler consumes the request's nonce only once the request has proven valid, right
before its first write (`before_write`), so refused requests leave nothing behind.
"""

from flask import Blueprint, current_app, g, jsonify, request

from ingest.errors import ApiError
from ingest.intake import precheck
from ingest.views import auth
from ingest.views.batch_answer import batch_answer

bp = Blueprint("partner_api", __name__)


def _ext():
    return current_app.extensions["ingest"]


@bp.post("/v1/records")
def post_records():
    ext = _ext()
    if ext.backlog.overloaded():  # before any signature math: shedding must be cheap
        wait = ext.backlog.retry_after()
        raise ApiError(
            "overloaded",
            f"the platform is catching up with earlier records; retry in {wait} s (nothing was stored)",
            retry_after=wait,
        )
    caller = auth.signed_request("data_partner", precheck=lambda doc: precheck(doc, ext.settings.max_batch))
    status, body = batch_answer(ext.intake.handle(caller))
    return jsonify({**body, "trace_id": g.trace_id}), status


@bp.post("/v1/consents")
def record_consent():
    caller = auth.signed_request("bank_app")
    status, body = _ext().consents.record(caller.partner_id, caller.body, caller.now, caller.consume_nonce)
    return jsonify(body), status


@bp.get("/v1/consents")
def list_consents():
    caller = auth.signed_request("bank_app")
    body = _ext().consents.of_customer(caller.partner_id, request.args, caller.now)
    caller.consume_nonce()
    return jsonify(body), 200


@bp.get("/v1/consents/<consent_id>")
def get_consent(consent_id):
    caller = auth.signed_request("bank_app")
    body = _ext().consents.get(caller.partner_id, consent_id)
    caller.consume_nonce()
    return jsonify(body), 200


@bp.post("/v1/consents/<consent_id>/revoke")
def revoke_consent(consent_id):
    caller = auth.signed_request("bank_app")
    if caller.body != {}:
        raise ApiError("invalid_request", "the body must be {}")
    body = _ext().consents.revoke(caller.partner_id, consent_id, caller.now, caller.consume_nonce)
    return jsonify(body), 200


@bp.post("/v1/deletion-requests")
def delete_personal_data():
    caller = auth.signed_request("bank_app")
    body = _ext().consents.delete_personal_data(caller.partner_id, caller.body, caller.now, caller.consume_nonce)
    return jsonify(body), 202


@bp.post("/v1/fulfilments/<fulfilment_id>/confirm")
def confirm_fulfilment(fulfilment_id):
    """The fulfilling partner delivered a catalogue item (ingest.fulfilments)."""
    return _report_fulfilment("confirm", fulfilment_id)


@bp.post("/v1/fulfilments/<fulfilment_id>/fail")
def fail_fulfilment(fulfilment_id):
    """The fulfilling partner could not deliver it: the customer is refunded (ingest.fulfilments)."""
    return _report_fulfilment("fail", fulfilment_id)


def _report_fulfilment(action: str, fulfilment_id: str):
    caller = auth.signed_request("data_partner")
    body = _ext().fulfilments.report(
        caller.partner_id, action, fulfilment_id, caller.body, caller.now, caller.consume_nonce
    )
    return jsonify(body), 202
