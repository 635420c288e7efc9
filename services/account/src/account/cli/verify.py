"""Operator CLI: `python -m account.cli.verify [--account ID ...] [--json]`.

Reads MONGO_URI / MONGO_DATABASE (default carbon_account). Exit status 0 when every chain
verifies, 1 when any problem is found (each printed with account, seq, entry id and kind).
The checks themselves are account.verifier (pure, also used by the tests).
"""

import argparse
import json
import sys
from dataclasses import asdict

from carbon_common.mongo import connect_database

from account.repository import Repository
from account.verifier import verify_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Verify the carbon ledger's balances and SM3 hash chains")
    parser.add_argument("--account", action="append", help="verify only this account id (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = verify_all(Repository(connect_database("carbon_account")), args.account)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "accounts": report.accounts,
                    "entries": report.entries,
                    "problems": [asdict(p) for p in report.problems],
                },
                indent=2,
            )
        )
    else:
        for p in report.problems:
            print(f"PROBLEM {p.kind}: account {p.account_id} seq {p.seq} entry {p.entry_id}: {p.detail}")
        print(
            f"{'OK' if report.ok else 'FAILED'}: {report.accounts} accounts, {report.entries} entries, "
            f"{len(report.problems)} problems"
        )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
