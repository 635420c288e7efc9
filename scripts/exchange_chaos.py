"""`make exchange-chaos`: the exchange fault run. Customers' redeemed reductions become batches
at the registry while the registry injects faults (REGISTRY_FAULTS from a seed) and the bridge —
and every few kills the registry — is SIGKILLed over and over; then an audit from the outside
(carbon_dev.chaos.exchange): no double submission, no reduction in two batches, every tonne
issued exactly once, every redeemed reduction issued, written off or waiting, reconciliation
clean. Waves go on until at least --min-faults faults (5xx, timeouts after commit, duplicated
deliveries, rejections; latency not counted) and --min-batches issued batches.

    .venv/bin/python scripts/exchange_chaos.py [--min-faults 1000] [--min-batches 50] [--seed N]

Runs its own platform instance "xchaoslong" (vhost carbon_xchaoslong, databases
carbon_xchaoslong_*, ports +7000), reset at the start. Exit status 0 only when the audit finds
no problem and the targets were met.
"""

import argparse
import sys
import time

from carbon_dev.chaos.exchange import COUNTED_FAULTS, ExchangeInstance, ExchangeRun, Settings, audit

STARTED = time.monotonic()


def say(line: str) -> None:
    print(f"[exchange-chaos {time.monotonic() - STARTED:6.1f}s] {line}", flush=True)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-faults", type=int, default=1000, help="counted faults injected before the stream stops")
    parser.add_argument("--min-batches", type=int, default=50, help="batches issued before the stream stops")
    parser.add_argument("--waves", type=int, default=4, help="at least this many waves")
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument("--tonnes-per-group", type=float, default=2.5, help="redeemed per group per wave, about")
    parser.add_argument("--kill-every", type=float, default=6.0, help="seconds between SIGKILLs")
    parser.add_argument("--registry-every", type=int, default=4, help="every N-th SIGKILL hits the registry (0: never)")
    parser.add_argument(
        "--faults",
        default="latency=0.2,error5xx=0.35,timeout_after_commit=0.25,duplicate=0.35,reject=0.12",
        help="REGISTRY_FAULTS",
    )
    parser.add_argument("--seed", type=int, default=20261207, help="REGISTRY_FAULT_SEED (and the load's)")
    parser.add_argument(
        "--max-leaves", type=int, default=3, help="BRIDGE_MAX_LEAVES: small, so a queue makes many batches"
    )
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args(argv)

    bridge_env = {
        "BRIDGE_MIN_GRAMS": "1000000",
        "BRIDGE_MAX_LEAVES": str(args.max_leaves),
        "BRIDGE_INTERVAL_SECONDS": "1",
        "BRIDGE_RECONCILE_SECONDS": "3",
        "BRIDGE_SUBMIT_ATTEMPTS": "4",
        "BRIDGE_SUBMIT_BACKOFF_SECONDS": "0.05",
        "BRIDGE_REGISTRY_TIMEOUT_SECONDS": "5",
    }
    registry_env = {
        "REGISTRY_FAULTS": args.faults,
        "REGISTRY_FAULT_SEED": str(args.seed),
        "REGISTRY_FAULT_MAX_LATENCY": "0.02",
    }
    instance = ExchangeInstance("xchaoslong", port_offset=7000, bridge_env=bridge_env, registry_env=registry_env)
    say(f"resetting and starting platform instance {instance.name} (logs: {instance.dir / 'logs'})")
    settings = Settings(
        waves=args.waves,
        customers=args.customers,
        grams_per_group=int(args.tonnes_per_group * 1_000_000),
        pause=3.0,
        kill_every=args.kill_every,
        registry_every=args.registry_every,
        unit_op_every=3,
        min_faults=args.min_faults,
        min_batches=args.min_batches,
        max_seconds=args.max_seconds,
        settle_seconds=300,
        seed=args.seed,
    )
    say(f"faults {args.faults} (seed {args.seed}); bridge {bridge_env}")
    try:
        instance.reset()
        instance.start(timeout=180, progress=say)
        run = ExchangeRun(instance, settings, say=say, watch=True)
        outcome = run.run()
        say("stream done and settled; auditing")
        report = audit(run)
    finally:
        instance.stop()
    f = report.figures
    kills: dict[str, list[float]] = {}
    for kill in run.crasher.kills:
        kills.setdefault(kill.name, []).append(kill.back_after)
    counted = sum(outcome.faults.get(k, 0) for k in COUNTED_FAULTS)
    sub, red = f["submissions"], f["reductions"]
    rows = [
        ("waves / customers", f"{outcome.waves} / {args.customers}"),
        ("reductions redeemed", f"{red['redeemed']} ({outcome.redeemed_grams:,} g)"),
        (
            "faults injected",
            f"{counted} counted ({', '.join(f'{k} {outcome.faults.get(k, 0)}' for k in COUNTED_FAULTS)}) "
            f"+ latency {outcome.faults.get('latency', 0)}, in {outcome.requests} bank requests",
        ),
        (
            "SIGKILLs",
            f"{len(run.crasher.kills)}: "
            + ", ".join(f"{name} x{len(b)} (back in {min(b):.1f}-{max(b):.1f} s)" for name, b in sorted(kills.items())),
        ),
        (
            "batches",
            f"formed {sub['bridge_formed']}, stored at the registry {sub['registry_stored']}, issued {sub['registry_issued']}, "
            f"rejected {sub['registry_rejected']}; transitions {f['transitions']}",
        ),
        ("units issued", f"{f['units']} for {f['issued_grams']:,} g in {len(f['groups'])} groups"),
        ("per group", "; ".join(f"{g} {v['batches']} batches {v['units']} units" for g, v in f["groups"].items())),
        (
            "reductions",
            f"issued {red['issued']}, written off {red['written_off']}, waiting below a tonne {red['waiting']} "
            f"({red['waiting_grams']:,} g)",
        ),
        ("unit operations", f"{outcome.unit_ops} ({outcome.unit_retries} asked again after an unknown outcome)"),
        ("double submissions", str(sub["double_submissions"])),
        ("reductions in two batches", str(f["reductions_in_two_batches"])),
        ("reconciliation (CLI)", f"{f['reconcile']['summary']}; cost {f['reconcile']['cost']}"),
        ("periodic reconciliations", str(f["periodic_reconciliations"])),
        ("stream / settle", f"{outcome.stream_seconds:.1f} s / {outcome.settle_seconds:.1f} s"),
    ]
    print("\n" + table(rows))
    problems = list(report.problems)
    if counted < args.min_faults:
        problems.append(f"only {counted} faults injected (wanted {args.min_faults})")
    if sub["registry_issued"] < args.min_batches:
        problems.append(f"only {sub['registry_issued']} batches issued (wanted {args.min_batches})")
    if problems:
        print("\nPROBLEMS:\n" + "\n".join(f"  - {p}" for p in problems[:60]))
        return 1
    print("\nverdict: EVERY TONNE ISSUED EXACTLY ONCE; RECONCILIATION CLEAN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
