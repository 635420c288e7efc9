"""`make chaos`: thousands of partner records while every platform process is SIGKILLed over
and over and RabbitMQ + FerretDB are restarted mid-stream; then an exactly-once audit.

    .venv/bin/python scripts/chaos.py [--records 3000] [--batch 50] [--kill-every 3] [--server-restarts 2]

Runs its own platform instance "chaoslong" (vhost carbon_chaoslong, databases
carbon_chaoslong_*, ports +3000), reset at the start. Restarting the servers affects every
other user of this machine's RabbitMQ/FerretDB/Jaeger: never run it next to `make test`.
Exit status 0 only when the audit (carbon_dev.chaos.audit) finds no problem.
"""

import argparse
import sys
import threading
import time

from carbon_dev.chaos.audit import Auditor
from carbon_dev.chaos.faults import Crasher
from carbon_dev.chaos.traffic import Traffic, plan, register, send_settled
from carbon_dev.instance import Instance

FIRST = ("calc", "account", "ingest", "ingest-relay")  # the record path first, then every other process
STARTED = time.monotonic()


def say(line: str) -> None:
    print(f"[chaos {time.monotonic() - STARTED:6.1f}s] {line}", flush=True)


class Schedule:
    """Called after every batch: one SIGKILL every `kill_every` batches (cycling through every
    process), and server restarts spread over the stream, in a thread so partners keep sending
    while the servers are down."""

    def __init__(self, crasher: Crasher, total_batches: int, kill_every: int, restarts: int, traffic: Traffic):
        self.crasher, self.kill_every, self.traffic = crasher, kill_every, traffic
        self.restart_at = [total_batches * (n + 1) // (restarts + 1) for n in range(restarts)]
        self.server_thread: threading.Thread | None = None
        names = [p.name for p in crasher.instance.processes()]
        self.processes = [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]
        self.next_process = 0
        self.total = total_batches

    def servers_restarting(self) -> bool:
        return self.server_thread is not None and self.server_thread.is_alive()

    def __call__(self, batches: int) -> None:
        if batches % 5 == 0:
            t = self.traffic
            say(
                f"batch {batches}/~{self.total}: committed {len(t.committed)}, refused {len(t.refused)}, "
                f"answers {t.answers}, resent {t.resends}, no answer {t.connection_errors}, http {t.http_errors}"
            )
        if self.restart_at and batches >= self.restart_at[0] and not self.servers_restarting():
            self.restart_at.pop(0)
            self.server_thread = threading.Thread(target=self.crasher.restart_servers, daemon=True)
            self.server_thread.start()
        elif batches % self.kill_every == 0 and not self.servers_restarting():
            name = self.processes[self.next_process % len(self.processes)]
            self.next_process += 1
            try:
                self.crasher.crash(name)
            except (RuntimeError, TimeoutError, OSError) as exc:
                say(f"could not crash {name}: {exc}")

    def join(self) -> None:
        if self.server_thread:
            self.server_thread.join()


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--kill-every", type=int, default=4, help="SIGKILL one process every N batches")
    parser.add_argument("--server-restarts", type=int, default=2, help="RabbitMQ+FerretDB restarts mid-stream")
    parser.add_argument("--settle-timeout", type=float, default=900)
    args = parser.parse_args(argv)

    instance = Instance("chaoslong", port_offset=3000)
    say(f"resetting and starting platform instance {instance.name} (logs: {instance.dir / 'logs'})")
    instance.reset()
    instance.start(timeout=180, progress=say)
    auditor, traffic = Auditor(instance), Traffic()
    crasher = Crasher(instance, progress=say, backlog=lambda: _backlog(auditor, traffic), watch=True)
    clients, people = register(instance, args.customers, max(2, args.customers // 20))
    records = plan(people, args.records)
    batches = -(-len(records) // args.batch)
    schedule = Schedule(crasher, batches, args.kill_every, args.server_restarts, traffic)
    say(f"streaming {len(records)} records from {len(clients)} partners in batches of {args.batch}")
    stream_started = time.monotonic()
    send_settled(
        clients,
        records,
        traffic,
        batch_size=args.batch,
        on_batch=schedule,
        deadline=stream_started + args.settle_timeout,
    )
    stream_seconds = time.monotonic() - stream_started
    while schedule.restart_at:  # a short stream: the remaining restarts still happen, under the backlog
        schedule.join()
        schedule(schedule.restart_at[0])
    schedule.join()
    say("stream answered; waiting for crashed processes to be back")
    crasher.recover_all()
    replay = list(traffic.committed.values())[:200]
    again = Traffic()
    send_settled(clients, replay, again, batch_size=args.batch, deadline=time.monotonic() + 120)
    say(f"replayed {len(replay)} answered records: {again.answers}")
    settle_started = time.monotonic()
    report = auditor.settle(traffic, timeout=args.settle_timeout, progress=say)
    settle_seconds = time.monotonic() - settle_started
    if again.answers != {"duplicate": len(replay)}:
        report.problems.append(f"replayed records were not all duplicates: {again.answers}")

    kills = {}
    for kill in crasher.kills:
        kills.setdefault(kill.name, []).append(kill.back_after)
    rows = [
        ("records planned", str(len(records))),
        ("answers (per record)", ", ".join(f"{k} {v}" for k, v in sorted(traffic.answers.items()))),
        (
            "committed / refused",
            f"{report.committed} / {report.refused} ({', '.join(sorted(set(traffic.refused.values())))})",
        ),
        (
            "batches resent",
            f"{traffic.resends} (no answer {traffic.connection_errors}, http {traffic.http_errors or '-'})",
        ),
        ("stream / settle time", f"{stream_seconds:.1f} s / {settle_seconds:.1f} s"),
        (
            "SIGKILLs",
            f"{len(crasher.kills)}: "
            + ", ".join(f"{n} x{len(v)} (back in {max(v):.1f} s max)" for n, v in sorted(kills.items())),
        ),
        ("server restarts", ", ".join(f"{what} down {s:.1f} s" for what, s in crasher.restarts) or "-"),
        ("calc outcomes", f"{report.calc_reductions} reductions, {report.calc_rejections} rejections"),
        ("ledger decisions", ", ".join(f"{k} {v}" for k, v in sorted(report.decisions.items()))),
        ("credited grams", str(report.credited_grams)),
        ("accounts (gRPC)", str(report.accounts)),
        ("missing outcomes", str(report.pending)),
        ("queues / DLQs left", str(report.queues or 0)),
        ("account.verify", report.verify_output),
        ("problems", str(len(report.problems))),
        ("verdict", "EXACTLY-ONCE HELD" if report.ok else "FAILED"),
    ]
    print("\n" + table(rows))
    for problem in report.problems[:50]:
        print(f"  PROBLEM {problem}")
    instance.stop()
    return 0 if report.ok else 1


def _backlog(auditor: Auditor, traffic: Traffic) -> dict:
    try:
        return auditor.backlog(traffic)
    except Exception as exc:  # noqa: BLE001 - a server is down; the kill still happens
        return {"unknown": type(exc).__name__}


if __name__ == "__main__":
    sys.exit(main())
