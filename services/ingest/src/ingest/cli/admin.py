"""Operator CLI for the admin API (bearer ADMIN_TOKEN).

python -m ingest.cli.admin list
python -m ingest.cli.admin register metro-sz "Shenzhen Metro" --scenario metro_ride --key k1=<pubhex> [--rate 600]
python -m ingest.cli.admin register bank-app "Bank app" --kind bank_app --key app1=<pubhex>
python -m ingest.cli.admin show metro-sz
python -m ingest.cli.admin rotate-key metro-sz k2=<pubhex> --replaces k1 [--overlap-seconds 86400]
python -m ingest.cli.admin revoke-key metro-sz k1
python -m ingest.cli.admin suspend metro-sz | resume metro-sz
"""

import argparse
import json
import sys

import requests

from carbon_common.config import setting


class AdminClient:
    def __init__(self, base_url: str, token: str, timeout: float = 15):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, document=None) -> requests.Response:
        return self.session.request(method, self.base_url + "/admin/v1" + path, json=document, timeout=self.timeout)

    def register(self, partner_id, name, kind, scenarios, rate, keys) -> requests.Response:
        return self.call(
            "POST",
            "/partners",
            {
                "partner_id": partner_id,
                "name": name,
                "kind": kind,
                "scenarios": scenarios,
                "rate_limit_per_minute": rate,
                "keys": [{"key_id": k, "public_key": v} for k, v in keys],
            },
        )


def _key(text: str):
    key_id, sep, public = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("a key is KEY_ID=PUBLIC_KEY_HEX")
    return key_id, public


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest.cli.admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default=setting("INGEST_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=setting("ADMIN_TOKEN", ""), help="default: env ADMIN_TOKEN")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    reg = sub.add_parser("register")
    reg.add_argument("partner_id")
    reg.add_argument("name")
    reg.add_argument("--kind", default="data_partner", choices=["data_partner", "bank_app"])
    reg.add_argument("--scenario", action="append", default=[])
    reg.add_argument("--rate", type=int, default=600, help="requests per minute (0 = unlimited)")
    reg.add_argument("--key", action="append", type=_key, required=True, help="KEY_ID=PUBLIC_KEY_HEX")
    for name in ("show", "suspend", "resume"):
        sub.add_parser(name).add_argument("partner_id")
    rot = sub.add_parser("rotate-key")
    rot.add_argument("partner_id")
    rot.add_argument("key", type=_key)
    rot.add_argument("--replaces")
    rot.add_argument("--overlap-seconds", type=int, default=86400)
    rev = sub.add_parser("revoke-key")
    rev.add_argument("partner_id")
    rev.add_argument("key_id")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token or ADMIN_TOKEN is required")
    admin = AdminClient(args.base_url, args.token)
    if args.command == "list":
        response = admin.call("GET", "/partners")
    elif args.command == "register":
        response = admin.register(args.partner_id, args.name, args.kind, args.scenario, args.rate, args.key)
    elif args.command == "show":
        response = admin.call("GET", f"/partners/{args.partner_id}")
    elif args.command in ("suspend", "resume"):
        response = admin.call("POST", f"/partners/{args.partner_id}/{args.command}")
    elif args.command == "rotate-key":
        body = {"key_id": args.key[0], "public_key": args.key[1], "overlap_seconds": args.overlap_seconds}
        if args.replaces:
            body["replaces"] = args.replaces
        response = admin.call("POST", f"/partners/{args.partner_id}/keys", body)
    else:
        response = admin.call("POST", f"/partners/{args.partner_id}/keys/{args.key_id}/revoke")
    print(json.dumps(response.json(), indent=2, ensure_ascii=False))
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
