"""`python -m exchange_bridge.cli.reconcile`: the registry against the bridge's records and the
ledger, now (the bridge service runs the same every BRIDGE_RECONCILE_SECONDS).

Prints the report as JSON on stdout (`ok`, `counts` per check, `differences`, `in_flight`,
`overstated`, `figures`, `cost`; exchange_bridge.reconciliation) and one summary line on stderr. Reports,
never fixes. Settings: the bridge's own — MONGO_URI, MONGO_DATABASE (carbon_exchange_bridge),
AMQP_URI (the account's RPCs), REGISTRY_URL, BRIDGE_PARTICIPANT, BRIDGE_KEY_ID and the bank's
SM2 key pair (the registry's reads are signed). Exit status: 0 everything agrees, 1 differences
found, 2 it could not run (a missing setting, the registry or the account unavailable).
"""

import argparse
import json
import sys

from nameko.standalone.rpc import ClusterRpcProxy

from carbon_common.config import require, setting
from carbon_common.mongo import client

from exchange_bridge.dependencies import DATABASE, load_settings, registry_client
from exchange_bridge.reconciliation import ReconciliationFailed, Reconciler
from exchange_bridge.repository import Repository


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exchange_bridge.cli.reconcile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rpc-timeout", type=float, default=60.0, help="seconds per account RPC (default 60)")
    parser.add_argument("--indent", type=int, default=1, help="JSON indent (0: one line)")
    args = parser.parse_args(argv)
    try:
        values = load_settings()
        mongo_uri, amqp_uri = require("MONGO_URI"), require("AMQP_URI")
    except SystemExit as error:
        print(f"reconcile: {error}", file=sys.stderr)
        return 2
    repo = Repository(client(mongo_uri)[setting("MONGO_DATABASE", DATABASE)])
    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=args.rpc_timeout) as cluster:
            reconciler = Reconciler(repo, registry_client(values), cluster.account, values["BRIDGE_PARTICIPANT"])
            result = reconciler.run()
    except ReconciliationFailed as error:
        print(f"reconcile: could not complete: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=args.indent or None, ensure_ascii=False))
    counts = ", ".join(f"{check} {n}" for check, n in result["counts"].items())
    verdict = "agree" if result["ok"] else "DIFFER"
    over = result["figures"].get("overstated_at_exchange_grams", 0)
    overstated = (
        f"{result['figures']['corrected_after_batching']} overstated at the exchange ({over} g); " if over else ""
    )
    print(
        f"reconcile: registry, bridge and ledger {verdict} ({counts}; {len(result['in_flight'])} in flight; "
        f"{overstated}{result['seconds']} s)",
        file=sys.stderr,
    )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
