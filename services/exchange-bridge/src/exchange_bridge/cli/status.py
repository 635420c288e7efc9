"""`python -m exchange_bridge.cli.status [--json] [--batch ID]`: where the bridge stands.

Reads the bridge's database only (MONGO_URI, MONGO_DATABASE, default carbon_exchange_bridge):
the intake watermark of each pool chain and, per group (methodology:version:vintage), the
grams queued, pending and carried in, and the head batch with its state. `--batch ID` prints
one batch: its states, reductions and unit operations.
"""

import argparse
import json
import sys

from carbon_common.config import require, setting
from carbon_common.mongo import client

from exchange_bridge.bridge import Bridge
from exchange_bridge.dependencies import DATABASE
from exchange_bridge.repository import Repository


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exchange_bridge.cli.status", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--batch", default="")
    args = parser.parse_args(argv)
    repo = Repository(client(require("MONGO_URI"))[setting("MONGO_DATABASE", DATABASE)])
    bridge = Bridge(None, repo, None, None, None)
    if args.batch:
        found = bridge.batch_status(args.batch)
        if found is None:
            print(f"no batch {args.batch}", file=sys.stderr)
            return 1
        print(json.dumps(found, indent=1, ensure_ascii=False))
        return 0
    view = bridge.overview()
    view["write_offs"] = repo.write_offs.estimated_document_count()
    view["held_refusals"] = repo.refusals.estimated_document_count()
    if args.json:
        print(json.dumps(view, indent=1, ensure_ascii=False))
        return 0
    marks = ", ".join(f"{pool} seq {seq}" for pool, seq in sorted(view["watermarks"].items())) or "nothing read yet"
    print(f"intake: {view['intake_links']} link(s); {marks}")
    print(f"{'group':<34} {'queued g':>12} {'pending g':>11} {'carry g':>9} {'batches':>7}  head")
    for g in view["groups"]:
        head = (
            f"{g['head_batch_id'][:16]}… {g['head_state']} (attempt {g['head_attempt']})" if g["head_batch_id"] else "-"
        )
        print(
            f"{g['group']:<34} {g['queued_grams']:>12} {g['pending_grams']:>11} {g['carried_in_grams']:>9} {g['batches']:>7}  {head}"
        )
    print(f"write-offs: {view['write_offs']}; refusals holding batches (ever): {view['held_refusals']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
