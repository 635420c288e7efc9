"""A stand-in for the emissions exchange's registry API, for dev and tests.

Deprecated: the bridge talks to the faithful registry (`python -m exchange_bridge.registry`)
and no longer to this sandbox. It stays only while the chart, the devstack and
docker-compose still start it; delete it (and tests/unit/test_sandbox.py) when they switch.

POST /v1/batches  {batch: {...}, signature: hex, public_key: hex} — verifies the SM2 signature
over the canonical JSON of `batch` (integer `quantity` in grams), and issues a serial block.
Idempotent by batch_id. GET /v1/batches lists them; GET /v1/batches/<id> reads one.
Fault injection: SANDBOX_FAIL_RATE (0..1) answers 503 at that rate; SANDBOX_FAIL_FIRST=N
answers 503 to the first N submissions.
"""

import random
import threading

from flask import Flask, jsonify, request

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from carbon_common.clock import utc_now_iso
from carbon_common.config import float_setting, int_setting, setting


def create_app(fail_rate: float | None = None, fail_first: int | None = None) -> Flask:
    """fail_rate: share of submissions answered 503; fail_first: the first N submissions get 503."""
    app = Flask(__name__)
    rate = float_setting("SANDBOX_FAIL_RATE", 0.0) if fail_rate is None else fail_rate
    first = int_setting("SANDBOX_FAIL_FIRST", 0) if fail_first is None else fail_first
    state = {"batches": {}, "next_serial": 1, "lock": threading.Lock(), "to_fail": first, "attempts": 0}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/v1/batches")
    def submit():
        with state["lock"]:
            state["attempts"] += 1
            forced = state["to_fail"] > 0
            state["to_fail"] -= forced
        if forced or (rate and random.random() < rate):
            return jsonify(code="unavailable", message="injected fault"), 503
        body = request.get_json(silent=True) or {}
        batch, signature, key = body.get("batch"), body.get("signature", ""), body.get("public_key", "")
        if (
            not isinstance(batch, dict)
            or not batch.get("batch_id")
            or not isinstance(batch.get("quantity"), int)
            or batch["quantity"] <= 0
        ):
            return jsonify(
                code="invalid_batch", message="batch with batch_id and positive integer quantity (grams) required"
            ), 400
        try:
            valid = gm.sm2_verify(key, canonical_bytes(batch), bytes.fromhex(signature))
        except ValueError:
            valid = False
        if not valid:
            return jsonify(code="bad_signature", message="SM2 signature does not verify"), 401
        with state["lock"]:
            known = state["batches"].get(batch["batch_id"])
            if known is None:
                # one serial per gram: never more units than grams submitted (a real exchange
                # issues per tonne; the bridge then needs BRIDGE_MIN_GRAMS=1000000)
                start = state["next_serial"]
                state["next_serial"] += batch["quantity"]
                known = {
                    "batch_id": batch["batch_id"],
                    "status": "issued",
                    "unit": "gCO2e",
                    "serial_start": f"CN-PCA-{start:015d}",
                    "serial_end": f"CN-PCA-{start + batch['quantity'] - 1:015d}",
                    "quantity": batch["quantity"],
                    "merkle_root": batch.get("merkle_root", ""),
                    "registered_at": utc_now_iso(),
                }
                state["batches"][batch["batch_id"]] = known
        return jsonify(known), 200

    @app.get("/v1/batches")
    def list_batches():
        """Every registered batch and the number of submission attempts seen (for tests and demos)."""
        return {"batches": list(state["batches"].values()), "attempts": state["attempts"]}

    @app.get("/v1/batches/<batch_id>")
    def get_batch(batch_id):
        known = state["batches"].get(batch_id)
        return (jsonify(known), 200) if known else (jsonify(code="not_found", message="unknown batch"), 404)

    return app


if __name__ == "__main__":
    host, port = setting("SANDBOX_ADDRESS", "127.0.0.1:8200").rsplit(":", 1)
    from werkzeug.serving import run_simple

    run_simple(host, int(port), create_app(), threaded=True)
