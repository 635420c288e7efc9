"""`python -m exchange_bridge.registry`: serve the registry (werkzeug, one thread per request).

Environment: MONGO_URI (required), REGISTRY_DB (carbon_exchange_registry), REGISTRY_ADDRESS
(127.0.0.1:8200), REGISTRY_ADMIN_TOKEN, REGISTRY_SM2_PRIVATE_KEY and REGISTRY_SM2_PUBLIC_KEY
(required), REGISTRY_SM2_PREVIOUS_PUBLIC_KEYS (after a rotation of the registry's key: the earlier
public keys, comma-separated, still published for the records they signed), REGISTRY_FAULTS
(none), REGISTRY_FAULT_SEED (0), REGISTRY_FAULT_MAX_LATENCY (0.2 s), REGISTRY_FAULT_TIMEOUT_SECONDS
(30), REGISTRY_MAX_LEAVES (20000), and the catalogue's REGISTRY_METHODOLOGIES /
REGISTRY_METHODOLOGIES_DIR (catalogue.py).
"""

from werkzeug.serving import run_simple

from carbon_common.config import float_setting, int_setting, require, setting
from carbon_common.mongo import client
from exchange_bridge.registry.app import create_app
from exchange_bridge.registry.faults import Faults


def main() -> None:
    host, port = setting("REGISTRY_ADDRESS", "127.0.0.1:8200").rsplit(":", 1)
    db = client(require("MONGO_URI"))[setting("REGISTRY_DB", "carbon_exchange_registry")]
    try:
        faults = Faults(
            setting("REGISTRY_FAULTS", ""),
            int_setting("REGISTRY_FAULT_SEED", 0),
            max_latency=float_setting("REGISTRY_FAULT_MAX_LATENCY", 0.2),
            timeout_seconds=float_setting("REGISTRY_FAULT_TIMEOUT_SECONDS", 30.0),
        )
    except ValueError as error:
        raise SystemExit(f"REGISTRY_FAULTS: {error}")
    app = create_app(
        db,
        faults,
        admin_token=require("REGISTRY_ADMIN_TOKEN"),
        private_key=require("REGISTRY_SM2_PRIVATE_KEY"),
        public_key=require("REGISTRY_SM2_PUBLIC_KEY"),
        previous_public_keys=[
            k.strip() for k in setting("REGISTRY_SM2_PREVIOUS_PUBLIC_KEYS", "").split(",") if k.strip()
        ],
        max_leaves=int_setting("REGISTRY_MAX_LEAVES", 20_000),
    )
    run_simple(host, int(port), app, threaded=True)


if __name__ == "__main__":
    main()
