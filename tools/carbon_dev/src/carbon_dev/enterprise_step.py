"""`python -m carbon_dev.enterprise_step link|view --grpc 127.0.0.1:50051`

The enterprise carbon account in `make run` (docs/enterprise.md), through the account gRPC API:
`link`, before the day's records: the demo enterprise's account is opened and its staff — the
first demo customers — link their personal accounts to it with their recorded consent;
`view`, once the day is credited: what the enterprise sees of this month, per scenario, groups
of fewer than the minimum size withheld. No employee's grams move. Idempotent (request keys
derived from the pseudonyms). Environment: PSEUDONYM_KEY (as ingest computes pseudonyms).
"""

import argparse
import sys

import grpc

from account.enterprise.view import view_lines
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from carbon_common import gm
from carbon_common.clock import utc_now_iso
from carbon_common.config import require
from carbon_dev import enterprise_demo, ingest_demo

ENTERPRISE = "demo-enterprise-0001"  # the enterprise's pseudonymous owner id
STAFF = 12  # the first demo customers work there


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carbon_dev.enterprise_step", description=__doc__)
    parser.add_argument("phase", choices=("link", "view"))
    parser.add_argument("--grpc", required=True)
    args = parser.parse_args(argv)
    key = bytes.fromhex(require("PSEUDONYM_KEY"))
    staff = [gm.pseudonymize(key, number) for number in ingest_demo.customers(STAFF)]
    with grpc.insecure_channel(args.grpc) as channel:
        stub = pb_grpc.AccountServiceStub(channel)
        if args.phase == "link":
            account = enterprise_demo.set_up(stub, ENTERPRISE, staff, alias="Demo Manufacturing Ltd")
            print(
                f"  enterprise {ENTERPRISE} (account {account}): {len(staff)} employees linked their accounts "
                "with their own consent (LinkEnterprise); their credits from now on count for its view"
            )
        else:
            month = utc_now_iso()[:7]
            print(f"  what {ENTERPRISE} sees of {month} (GetEnterpriseAggregate; fewer than 5 employees: withheld)")
            for line in view_lines(stub, ENTERPRISE, month):
                print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
