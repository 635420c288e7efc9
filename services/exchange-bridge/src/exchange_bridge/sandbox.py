"""A stand-in for the emissions exchange's registry API, for dev and tests.

POST /v1/batches  {batch: {...}, signature: hex, public_key: hex} — verifies the SM2 signature
over the canonical JSON of `batch`, and issues a serial block. Idempotent by batch_id.
Fault injection: SANDBOX_FAIL_RATE (0..1) answers 503 at that rate.
"""
import json
import os
import random
import threading

from flask import Flask, jsonify, request

from carbon_common import gm


def canonical(batch: dict) -> bytes:
    return json.dumps(batch, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def create_app(fail_rate: float | None = None) -> Flask:
    app = Flask(__name__)
    state = {"batches": {}, "next_serial": 1, "lock": threading.Lock()}
    rate = float(os.environ.get("SANDBOX_FAIL_RATE", "0")) if fail_rate is None else fail_rate

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/v1/batches")
    def submit():
        if rate and random.random() < rate:
            return jsonify(code="unavailable", message="injected fault"), 503
        body = request.get_json(silent=True) or {}
        batch, signature, key = body.get("batch"), body.get("signature", ""), body.get("public_key", "")
        if not isinstance(batch, dict) or not batch.get("batch_id") or not isinstance(batch.get("grams"), int):
            return jsonify(code="invalid_batch", message="batch with batch_id and integer grams required"), 400
        try:
            valid = gm.sm2_verify(key, canonical(batch), bytes.fromhex(signature))
        except ValueError:
            valid = False
        if not valid:
            return jsonify(code="bad_signature", message="SM2 signature does not verify"), 401
        with state["lock"]:
            known = state["batches"].get(batch["batch_id"])
            if known is None:
                tonnes_serials = max(1, batch["grams"] // 1_000_000)
                start = state["next_serial"]
                state["next_serial"] += tonnes_serials
                known = {"batch_id": batch["batch_id"], "status": "issued",
                         "serial_start": f"CN-PCA-{start:012d}", "serial_end": f"CN-PCA-{start + tonnes_serials - 1:012d}"}
                state["batches"][batch["batch_id"]] = known
        return jsonify(known), 200

    @app.get("/v1/batches/<batch_id>")
    def get_batch(batch_id):
        known = state["batches"].get(batch_id)
        return (jsonify(known), 200) if known else (jsonify(code="not_found", message="unknown batch"), 404)

    return app


if __name__ == "__main__":
    host, port = os.environ.get("SANDBOX_ADDRESS", "127.0.0.1:8200").rsplit(":", 1)
    from werkzeug.serving import run_simple

    run_simple(host, int(port), create_app(), threaded=True)
