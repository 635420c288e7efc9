"""`python -m account.cli.report --grpc 127.0.0.1:50051 [--month YYYY-MM] [--owner-pid PID ...]`

Reads through the gRPC API only (what another bank system sees): prints every customer
account's balance and tier, the platform totals, and one monthly statement (the given
owner's, else the customer with the largest balance) for the month (default: this month).
"""

import argparse
import sys

import grpc

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from carbon_common.clock import utc_now_iso

from account.caps import statement_month
from account.grpc_paging import all_accounts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Show balances and a monthly statement via the gRPC API")
    parser.add_argument("--grpc", default="127.0.0.1:50051")
    parser.add_argument("--month", default=statement_month(utc_now_iso()))
    parser.add_argument("--owner-pid", action="append", default=[])
    args = parser.parse_args(argv)
    with grpc.insecure_channel(args.grpc) as channel:
        stub = pb_grpc.AccountServiceStub(channel)
        accounts = [a for a in all_accounts(stub) if a.kind != "pool"]
        if args.owner_pid:
            accounts = [a for a in accounts if a.owner_pid in args.owner_pid]
        print(f"{'account':38} {'owner (pseudonym)':20} {'kind':10} {'status':7} {'tier':9} {'balance g':>10}")
        for a in sorted(accounts, key=lambda a: -a.balance_grams):
            print(
                f"{a.account_id:38} {a.owner_pid[:18] + '…':20} {a.kind:10} {a.status:7} {a.tier:9} {a.balance_grams:>10}"
            )
        totals = stub.GetTotals(pb.GetTotalsRequest(), timeout=10)
        print(
            f"totals: {totals.accounts} accounts, credited {totals.credited_grams} g, reversed "
            f"{totals.reversed_grams} g, redeemed {totals.redeemed_grams} g, balance {totals.balance_grams} g, "
            f"bank pool {totals.pool_grams} g"
        )
        if not accounts:
            print("no customer accounts yet")
            return 0
        chosen = max(accounts, key=lambda a: a.balance_grams)
        s = stub.GetStatement(
            pb.GetStatementRequest(account=pb.AccountRef(account_id=chosen.account_id), month=args.month), timeout=10
        )
        print(
            f"\nstatement {s.month} for {s.account_id}: opening {s.opening_balance} g, closing {s.closing_balance} g, "
            f"credited {s.credited_grams} g, reversed {s.reversed_grams} g, redeemed {s.redeemed_grams} g"
        )
        for line in s.scenarios:
            print(
                f"  {line.scenario:24} credited {line.credited_grams:>7} g in {line.credited_count:>3} records"
                f"  capped {line.capped_count:>3} ({line.capped_grams} g)  declined {line.declined_count:>3}"
                f"  reversed {line.reversed_grams} g"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
