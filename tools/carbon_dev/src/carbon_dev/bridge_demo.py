"""`python -m carbon_dev.bridge_demo --grpc 127.0.0.1:50051 --registry http://127.0.0.1:8200`

The last act of `make run`: the first five customers (by account id) redeem 5,000 g each
through the gRPC API (idempotent request keys per customer and day, so a re-run spends nothing
twice), the bank pool takes the grams back, and one bridge pass (nameko RPC
`exchange_bridge.run_batch`, AMQP_URI) registers them at the exchange as an SM2-signed batch.
"""

import argparse
import datetime
import sys
import time
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # nameko's import; noise here

import grpc
from nameko.standalone.rpc import ClusterRpcProxy

from account.grpc_paging import all_accounts  # the account API's own pager (dev tooling: every service installed)
from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from carbon_common.config import require

GRAMS = 5_000


def redeem_for_demo_customers(stub, count: int) -> int:
    accounts = all_accounts(stub)
    # the first customers by account id: the same ones on every re-run, whatever their balances
    chosen = [a for a in sorted(accounts, key=lambda a: a.account_id) if a.kind != "pool"][:count]
    day = datetime.date.today().strftime("%Y%m%d")
    redeemed = 0
    for account in chosen:
        if account.balance_grams < GRAMS:
            continue
        response = stub.Redeem(
            pb.RedeemRequest(
                account=pb.AccountRef(account_id=account.account_id),
                grams=GRAMS,
                request_key=f"demo-reward-{day}-{account.account_id}",
                reward_id="demo-metro-pass",
            ),
            timeout=10,
        )
        state = "already redeemed today" if response.replayed else "redeemed"
        print(f"  {account.account_id}  {state} {GRAMS} g for a metro pass")
        redeemed += 1
    return redeemed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carbon_dev.bridge_demo", description=__doc__.splitlines()[0])
    parser.add_argument("--grpc", default="127.0.0.1:50051")
    parser.add_argument("--registry", default="http://127.0.0.1:8200")
    parser.add_argument("--customers", type=int, default=5)
    args = parser.parse_args(argv)
    with grpc.insecure_channel(args.grpc) as channel:
        stub = pb_grpc.AccountServiceStub(channel)
        redeem_for_demo_customers(stub, args.customers)
        with ClusterRpcProxy({"AMQP_URI": require("AMQP_URI")}, timeout=60) as rpc:
            # the pool receives redeemed grams through the account's outbox relay (every 0.5 s),
            # a moment after the redemption: pass until a pass finds nothing new after that
            settle, deadline = time.monotonic() + 3, time.monotonic() + 60
            registered, failed = [], 0
            while True:
                result = rpc.exchange_bridge.run_batch()
                registered += result["registered"]
                failed = result["failed"]
                quiet = not result["registered"] and not failed and time.monotonic() > settle
                if quiet or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            overview = rpc.exchange_bridge.overview()
        pool = stub.GetTotals(pb.GetTotalsRequest(), timeout=10).pool_grams
    print(
        f"  bank pool holds {pool} g taken back from redemptions; "
        f"this run issued {len(registered)} new batch(es), {failed} waiting"
    )
    for group in overview["groups"]:
        print(
            f"  {group['group']}: {group['pending_grams']} g queued, {group['carried_in_grams']} g carried, "
            f"{group['batches']} batch(es), head {group['head_state'] or '-'}"
        )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
