"""`python -m account.cli.enterprise --grpc 127.0.0.1:50051 --owner-pid PID [--month YYYY-MM]`:
prints what an enterprise sees of a month (account.enterprise.view.view_lines): its linked
employees' reductions per scenario, small groups withheld, and its own balance."""

import argparse
import sys

import grpc

from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account.enterprise.view import view_lines
from account.enterprise.links import period_of
from carbon_common.clock import utc_now_iso


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grpc", default="127.0.0.1:50051", help="the account gRPC server (plaintext, loopback)")
    parser.add_argument("--owner-pid", required=True, help="the enterprise's pseudonym")
    parser.add_argument("--month", default="", help="YYYY-MM (China Standard Time); default: this month")
    args = parser.parse_args(argv)
    with grpc.insecure_channel(args.grpc) as channel:
        try:
            lines = view_lines(
                pb_grpc.AccountServiceStub(channel), args.owner_pid, args.month or period_of(utc_now_iso())
            )
        except grpc.RpcError as exc:
            print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
