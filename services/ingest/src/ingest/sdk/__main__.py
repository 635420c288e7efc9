"""Partner SDK CLI.

    python -m ingest.sdk send --file records.jsonl --base-url http://127.0.0.1:8080 \
        --partner-id metro-sz --key-id metro-sz-2026 --private-key-file key.hex [--encrypt-to PUBHEX]
    python -m ingest.sdk keygen          # prints a fresh SM2 key pair (private, public hex)
"""

import argparse
import json
import sys

from carbon_common import gm
from carbon_common.config import setting

from ingest.sdk.client import IngestClient, progress_line


def _records(path):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise SystemExit(f"{path}:{number}: not JSON: {exc}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.sdk", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send records from a JSON-lines file")
    send.add_argument("--file", required=True)
    send.add_argument("--base-url", default=setting("INGEST_URL", "http://127.0.0.1:8080"))
    send.add_argument("--partner-id", required=True)
    send.add_argument("--key-id", required=True)
    send.add_argument(
        "--private-key-file", help="file holding the SM2 private key hex (or env PARTNER_SM2_PRIVATE_KEY)"
    )
    send.add_argument("--encrypt-to", metavar="PLATFORM_PUBLIC_HEX", help="encrypt bodies to the platform key")
    send.add_argument("--batch-size", type=int, default=100)
    sub.add_parser("keygen", help="print a new SM2 key pair")
    args = parser.parse_args(argv)
    if args.command == "keygen":
        private, public = gm.generate_sm2_keypair()
        print(json.dumps({"private_key": private, "public_key": public}, indent=2))
        return 0
    if args.private_key_file:
        with open(args.private_key_file, encoding="ascii") as handle:
            private = handle.read().strip()
    else:
        private = setting("PARTNER_SM2_PRIVATE_KEY", "") or parser.error(
            "--private-key-file or PARTNER_SM2_PRIVATE_KEY"
        )
    client = IngestClient(args.base_url, args.partner_id, args.key_id, private, platform_public_key=args.encrypt_to)
    totals = client.send_records(_records(args.file), batch_size=args.batch_size, progress=progress_line())
    print(
        f"\naccepted {totals.accepted}  duplicate {totals.duplicate}  rejected {totals.rejected}  "
        f"unavailable {totals.unavailable}" + (f"  rejection codes {totals.codes}" if totals.codes else "")
    )
    return 0 if totals.unavailable == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
