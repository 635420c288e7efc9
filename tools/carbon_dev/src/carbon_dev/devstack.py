"""`make run`, `make stop`, `make status`: the whole platform on one machine, under supervisord.

    python -m carbon_dev.devstack run|start|stop|status [--instance NAME] [--port-offset N]

`run` starts the dependencies (scripts/deps.sh, unless running), the platform instance, streams
the demo and prints where to look; Ctrl-C stops what this run started. The parts:

- carbon_dev.instance: a platform instance (its own vhost, databases, ports, supervisord);
- carbon_dev.processes: its process table, built from the Helm chart's values
  (carbon_dev.chart_values) with the local ports and settings overlaid;
- carbon_dev.supervision: supervisord's config, start/stop, the pids of its programs.
"""

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import time

from carbon_dev.instance import Instance
from carbon_dev.processes import LOCAL_PORTS, ROOT, VENV_BIN, Process, fresh_secrets, healthy
from carbon_dev.supervision import alive, started_by

# Code written before the split imports these from here (e.g. libs/carbon_common's probe tests).
__all__ = ["ROOT", "VENV_BIN", "Instance", "Process", "alive", "fresh_secrets", "main"]

DEPS_SCRIPT = ROOT / "scripts" / "deps.sh"
DEPS = {"rabbitmq": "RabbitMQ", "ferretdb": "FerretDB", "jaeger": "Jaeger"}
JAEGER_UI = "http://127.0.0.1:16686"


def status_table(instance: Instance) -> str:
    pid = instance.supervisord_pid()
    head = (
        f"platform instance {instance.name}: supervisord pid {pid}, started by {instance.started_by()}\n"
        if pid
        else f"platform instance {instance.name}: not running\n"
    )
    rows = [("component", "address", "state")]
    for p in instance.processes():
        rows.append((p.name, p.address, "healthy" if healthy(p.ready_url) else "DOWN"))
    rows += [
        ("rabbitmq", f"amqp://127.0.0.1:5672/{instance.vhost}  (UI http://127.0.0.1:15672)", "-"),
        ("ferretdb", "mongodb://127.0.0.1:27017", "-"),
        ("jaeger", JAEGER_UI, "-"),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return head + "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, width)) for r in rows)


# --- the dependencies (scripts/deps.sh) ---------------------------------------------------------
def deps_data() -> pathlib.Path:
    return pathlib.Path(os.environ.get("CARBON_DEPS_DATA", ROOT / ".data"))


def deps_owned_by(token: str) -> list[str]:
    """The dependencies whose owner record (written by deps.sh start) names `token`."""
    owned = []
    for dep in DEPS:
        path = deps_data() / f"{dep}.owner"
        if path.exists() and f"owner={token}" in path.read_text().splitlines():
            owned.append(dep)
    return owned


def start_deps(token: str) -> list[str]:
    """deps.sh start as owner `token`; -> the dependencies it started (the others were running)."""
    env = {**os.environ, "CARBON_DEPS_OWNER": token, "CARBON_DEPS_STARTED_BY": started_by()}
    subprocess.run(["bash", str(DEPS_SCRIPT), "start"], env=env, check=True, timeout=300)
    return deps_owned_by(token)


def stop_deps(token: str) -> None:
    """Stop the dependencies `token` started, and only those (deps.sh stop-owned, bounded)."""
    try:  # each stop is bounded in deps.sh (SIGTERM, SIGKILL after 30 s): this is a backstop
        subprocess.run(["bash", str(DEPS_SCRIPT), "stop-owned", token], timeout=180)
    except subprocess.TimeoutExpired:
        print("stopping the dependencies this run started took over 180 s: see make status")


def run_step(title: str, args: list[str], env: dict) -> None:
    """A demo/report step of another package: run it if that package is installed."""
    print(f"\n== {title}")
    result = subprocess.run([f"{VENV_BIN}/python", *args], cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        print(f"   (step exited with {result.returncode})")


def demo(instance: Instance) -> None:
    secrets = instance.secrets()
    env = {
        "AMQP_URI": instance.amqp_uri,
        "MONGO_URI": instance.mongo_uri,
        "OTEL_SERVICE_NAME": "demo",
        # the demo finds its customers' accounts by pseudonym, as ingest computes them
        "PSEUDONYM_KEY": secrets["PSEUDONYM_KEY"],
    }
    ingest, grpc = instance.url("ingest"), instance.address(LOCAL_PORTS["account-grpc"]["grpc"])
    run_step(
        "an enterprise carbon account: staff link their personal accounts to their employer's",
        ["-m", "carbon_dev.enterprise_step", "link", "--grpc", grpc],
        env,
    )
    run_step(
        "demo partner traffic: a day of signed records, and the energy-saving programme's meter readings",
        [
            "-m",
            "carbon_dev.ingest_demo",
            "--base-url",
            ingest,
            "--admin-token",
            secrets["ADMIN_TOKEN"],
            "--records",
            os.environ.get("DEMO_RECORDS", "2000"),
        ],
        env,
    )
    print("\n== waiting for calc and account to process the day")
    instance.wait_drained(progress=lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    run_step(
        "the enterprise's view: its linked employees' reductions this month, pseudonymous and aggregated",
        ["-m", "carbon_dev.enterprise_step", "view", "--grpc", grpc],
        env,
    )
    run_step(
        "the rewards catalogue: an operator lists a reward, a customer redeems it, the partner delivers it",
        ["-m", "carbon_dev.catalogue_demo", "--grpc", grpc, "--base-url", ingest],
        env,
    )
    bridge = next(p for p in instance.processes() if p.name == "exchange-bridge")
    run_step(
        "customers redeem grams; the bank takes them back, and the exchange registry issues, moves and retires units",
        [
            "-m",
            "carbon_dev.bridge_demo",
            "--grpc",
            grpc,
            "--registry",
            instance.url("exchange-registry"),
            "--participant",
            bridge.env["BRIDGE_PARTICIPANT"],
            "--key-id",
            bridge.env["BRIDGE_KEY_ID"],
            "--out",
            str(certificates_dir(instance)),
        ],
        {**env, "REGISTRY_ADMIN_TOKEN": secrets["REGISTRY_ADMIN_TOKEN"]},
    )
    run_step(
        "balances and a monthly statement, read through the gRPC API",
        ["-m", "account.cli.report", "--grpc", grpc],
        {**env, "MONGO_DATABASE": f"carbon_{instance.name}_account"},
    )


def certificates_dir(instance: Instance) -> pathlib.Path:
    return instance.dir / "certificates"


def where_to_look(instance: Instance) -> str:
    """The places `run` points at once the platform is up."""
    bridge = next(p for p in instance.processes() if p.name == "exchange-bridge")
    certificates = sorted(certificates_dir(instance).glob("*.json"))
    lines = [
        f"  traces: {JAEGER_UI}/search?service=ingest   logs: {instance.dir / 'logs'}",
        f"  exchange registry: {instance.url('exchange-registry')} (docs/registry-api.md: GET "
        f"/v1/participants/{bridge.env['BRIDGE_PARTICIPANT']}/keys/{bridge.env['BRIDGE_KEY_ID']}, /v1/public-key)",
        f"  the bridge's batches: MONGO_URI={instance.mongo_uri} MONGO_DATABASE={bridge.env['MONGO_DATABASE']} "
        f"{VENV_BIN.relative_to(ROOT)}/python -m exchange_bridge.cli.status",
    ]
    if certificates:
        lines.append(
            f"  retirement certificates: {certificates_dir(instance).relative_to(ROOT)}/ "
            "(node tools/certificate-verifier/verify.js --bank-key … --registry-key … <file>, "
            "or tools/certificate-verifier/index.html)"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carbon_dev.devstack")
    parser.add_argument("command", choices=("run", "start", "stop", "status"))
    parser.add_argument("--instance", default=os.environ.get("CARBON_INSTANCE", "dev"))
    parser.add_argument(
        "--port-offset",
        type=int,
        default=int(os.environ.get("CARBON_PORT_OFFSET", "0")),
        help="added to every port of the instance (a second instance beside `make run`)",
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        default=os.environ.get("DETACH") == "1",
        help="return after the demo instead of waiting for Ctrl-C",
    )
    args = parser.parse_args(argv)
    instance = Instance(args.instance, port_offset=args.port_offset)
    if args.command == "stop":
        print(instance.stop())
        return 0
    if args.command == "status":
        print(status_table(instance))
        others = [Instance(d.name) for d in sorted((ROOT / ".data" / "platform").glob("*")) if d.name != instance.name]
        for other in others:
            pid = other.supervisord_pid()
            if pid:
                print(
                    f"also running: platform instance {other.name} (supervisord pid {pid}, started by {other.started_by()})"
                )
        return 0
    detached = args.command == "start" or args.detach
    # Ctrl-C (the whole foreground group gets it) or SIGTERM, at any moment from here on:
    # stop what this run started — the platform instance, and the dependencies it started.
    for signum in (signal.SIGINT, signal.SIGTERM):  # explicit: a shell may start us with SIGINT ignored
        signal.signal(signum, _interrupt)
    token = f"devstack-{instance.name}-{os.getpid()}-{os.urandom(4).hex()}"
    owned: list[str] = []
    try:
        owned = start_deps(token)
        instance.start()
        if args.command == "run":
            demo(instance)
        print("\nThe platform is up:\n" + status_table(instance))
        print("\n" + where_to_look(instance))
        if detached:
            print(
                f"  stop it with: {VENV_BIN.relative_to(ROOT)}/python -m carbon_dev.devstack stop --instance {instance.name}"
                " (make stop stops RabbitMQ, FerretDB and Jaeger too)"
            )
            return 0
        print("\n" + _what_ctrl_c_stops(instance, owned))
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        detached = False
        return 0
    finally:
        if not detached:
            for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C does not cut the stop short
                signal.signal(signum, signal.SIG_IGN)
            print("\nstopping what this run started ...", flush=True)
            if instance.started:
                print(instance.stop(), flush=True)
            stop_deps(token)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _what_ctrl_c_stops(instance: Instance, owned: list[str]) -> str:
    stops = ([f"platform instance {instance.name}"] if instance.started else []) + [DEPS[d] for d in owned]
    kept = [DEPS[d] for d in DEPS if d not in owned]
    text = f"Ctrl-C stops what this run started: {', '.join(stops) or 'nothing'}."
    if kept:
        text += f"\n{', '.join(kept)} were already running (see make status): they keep running."
    if not instance.started:
        text += f"\nPlatform instance {instance.name} was already running: it keeps running (make stop)."
    return text


if __name__ == "__main__":
    sys.exit(main())
