"""CLI: python -m calc.cli.recalculate — apply every `corrected` methodology/factor-set version.

Run after deploying a correction file (and restarting calc so new records use it). Safe to
re-run: already reversed and exchange-locked reductions are skipped. Env: AMQP_URI, MONGO_URI,
MONGO_DATABASE (default carbon_calc), CALC_METHODOLOGY_DIR (default: the packaged files).
"""

import argparse
import sys

from carbon_common.config import require, setting
from carbon_common.events import EventPublisher
from carbon_common.mongo import connect_database

from calc.loader import load_catalog
from calc.recalculation import recalculate
from calc.repository import CalcRepository


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m calc.cli.recalculate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--methodology-dir",
        default=setting("CALC_METHODOLOGY_DIR", ""),
        help="directory of methodology files (default: packaged)",
    )
    parser.add_argument("--every", type=int, default=100, help="progress line every N reductions")
    args = parser.parse_args(argv)
    catalog = load_catalog(args.methodology_dir or None)
    if not catalog.corrections():
        print("no corrected versions in the catalog: nothing to do")
        return 0
    repo = CalcRepository(connect_database("carbon_calc"))
    # Not closed here: EventPublisher.close() closes kombu's process-wide producer pool for this
    # broker, which would break a second run in the same process; the process ends anyway.
    publisher = EventPublisher(require("AMQP_URI"), "calc")
    results = recalculate(
        catalog, repo, publisher.publish, report=lambda line: print(line, flush=True), every=args.every
    )
    done = sum(p.recalculated + p.now_rejected for p in results)
    print(f"done: {done} reductions reversed and recalculated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
