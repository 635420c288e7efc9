"""`python -m account.cli.grpc_callers token | check FILE [--mutual-tls]`

`token` prints a new random token and its digests (only a digest goes into the callers file);
`check` validates a callers file (account.grpc_callers) and lists its callers.
"""

import argparse
import json
import secrets
import sys
from typing import Mapping, Sequence

from account.grpc_callers import TOKEN_DIGESTS, Caller, load_callers_file


def _describe(callers: Mapping[str, Caller]) -> Sequence[str]:
    return [
        f"{c.caller_id}: methods={sorted(c.methods)} token={'yes' if c.token_digests else 'no'} "
        f"cert_cn={c.cert_cn or '-'}"
        for c in callers.values()
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m account.cli.grpc_callers")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("token", help="print a new random token and the digests to put in the callers file")
    check = sub.add_parser("check", help="validate a callers file")
    check.add_argument("path")
    check.add_argument("--mutual-tls", action="store_true", help="the server runs with GRPC_TLS_CLIENT_CA_FILE")
    args = parser.parse_args(argv)
    if args.command == "token":
        token = secrets.token_urlsafe(32)
        print(
            json.dumps(
                {"token": token, **{kind: fn(token.encode()).hex() for kind, fn in TOKEN_DIGESTS.items()}}, indent=2
            )
        )
        return 0
    try:
        callers = load_callers_file(args.path, args.mutual_tls)
    except (OSError, ValueError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print("\n".join(_describe(callers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
