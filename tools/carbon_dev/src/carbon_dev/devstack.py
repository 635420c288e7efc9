"""The whole platform on one machine, under supervisord: `make run`, `make stop`, e2e tests.

An *instance* is a named copy of the platform with its own RabbitMQ vhost, database names,
ports and supervisord, so `make run` (instance "dev") and the e2e tests (instance "e2e")
can share the same RabbitMQ/FerretDB/Jaeger without seeing each other's data.
"""

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

ROOT = pathlib.Path(__file__).resolve().parents[4]
VENV_BIN = ROOT / ".venv" / "bin"
DEPS_SCRIPT = ROOT / "scripts" / "deps.sh"
DEPS = {"rabbitmq": "RabbitMQ", "ferretdb": "FerretDB", "jaeger": "Jaeger"}
STOP_TIMEOUT = 30  # seconds: supervisord stops every program (stopwaitsecs=15), then SIGKILL
RABBIT_API = "http://127.0.0.1:15672/api"
RABBIT_AUTH = "Basic Z3Vlc3Q6Z3Vlc3Q="  # guest:guest, the loopback-only dev broker
INGEST_SECRETS = (
    "PSEUDONYM_KEY",
    "CONTACT_SM4_KEY",
    "PLATFORM_SM2_PRIVATE_KEY",
    "PLATFORM_SM2_PUBLIC_KEY",
    "ADMIN_TOKEN",
)
BRIDGE_SECRETS = ("BRIDGE_SM2_PRIVATE_KEY", "BRIDGE_SM2_PUBLIC_KEY")
JAEGER_UI = "http://127.0.0.1:16686"


@dataclass
class Process:
    name: str
    command: str
    ready_url: str
    env: dict = field(default_factory=dict)
    address: str = ""


def fresh_secrets() -> dict:
    """A new set of every dev secret the platform's processes take (throwaway keys)."""
    from carbon_common import gm

    platform_key, bridge_key = gm.generate_sm2_keypair(), gm.generate_sm2_keypair()
    return {
        "PSEUDONYM_KEY": os.urandom(32).hex(),
        "CONTACT_SM4_KEY": os.urandom(16).hex(),
        "PLATFORM_SM2_PRIVATE_KEY": platform_key[0],
        "PLATFORM_SM2_PUBLIC_KEY": platform_key[1],
        "ADMIN_TOKEN": os.urandom(16).hex(),
        "BRIDGE_SM2_PRIVATE_KEY": bridge_key[0],
        "BRIDGE_SM2_PUBLIC_KEY": bridge_key[1],
    }


class Instance:
    def __init__(self, name: str = "dev", port_offset: int = 0):
        self.name = name
        self.offset = port_offset
        self.dir = ROOT / ".data" / "platform" / name
        self.vhost = f"carbon_{name}"
        self.amqp_uri = f"pyamqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.mongo_uri = "mongodb://127.0.0.1:27017/?retryWrites=false"
        self.started = False  # whether start() started supervisord (else it found it running)

    def port(self, base: int) -> int:
        return base + self.offset

    def address(self, base: int) -> str:
        return f"127.0.0.1:{self.port(base)}"

    def secrets(self) -> dict:
        """Dev-only secrets, generated once per instance and kept (production takes them from
        Kubernetes Secrets). A secret added later is generated alone: existing pseudonyms stay."""
        path = self.dir / "dev-secrets.json"
        values = json.loads(path.read_text()) if path.exists() else {}
        missing = [name for name in (*INGEST_SECRETS, *BRIDGE_SECRETS) if name not in values]
        if missing:
            fresh = fresh_secrets()
            if "PLATFORM_SM2_PRIVATE_KEY" in values:  # a key pair is replaced only as a pair
                fresh.pop("PLATFORM_SM2_PRIVATE_KEY"), fresh.pop("PLATFORM_SM2_PUBLIC_KEY")
            if "BRIDGE_SM2_PRIVATE_KEY" in values:
                fresh.pop("BRIDGE_SM2_PRIVATE_KEY"), fresh.pop("BRIDGE_SM2_PUBLIC_KEY")
            values = {**fresh, **values}
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        return values

    def secrets_for(self, names: tuple[str, ...]) -> dict:
        """Only the secrets one process needs (each process gets its own, as in the chart)."""
        secrets = self.secrets()
        return {n: secrets[n] for n in names}

    def processes(self) -> list[Process]:
        nameko = f"{VENV_BIN}/nameko run --config"

        def db(service):
            return {
                "AMQP_URI": self.amqp_uri,
                "MONGO_URI": self.mongo_uri,
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                "PYTHONUNBUFFERED": "1",
                "MONGO_DATABASE": f"carbon_{self.name}_{service}",
            }

        ingest, calc, account, grpc_metrics, bridge, relay, sandbox = (
            self.address(p) for p in (8080, 8101, 8102, 8103, 8104, 8105, 8200)
        )
        return [
            *self._base_processes(nameko, db, ingest, calc, account, grpc_metrics, bridge, relay, sandbox),
            *self._extra_replicas(nameko, db),
        ]

    @staticmethod
    def _replicas() -> dict[str, int]:
        wanted = dict(item.split("=") for item in os.environ.get("CARBON_REPLICAS", "").split(",") if "=" in item)
        return {service: int(n) for service, n in wanted.items()}

    def _preferred_shards(self, replica: int) -> dict:
        """Replica k (1-based) of N account replicas takes shards k-1, k-1+N, … first."""
        from carbon_common import topology

        count = self._replicas().get("account", 1)
        if count < 2:
            return {}
        return {"CARBON_PREFERRED_SHARDS": ",".join(str(s) for s in range(replica - 1, topology.shard_count(), count))}

    def _extra_replicas(self, nameko, db) -> list[Process]:
        """CARBON_REPLICAS="calc=2,account=2": more consumers of the same queues (scale-out on
        one machine); replica k listens on the base port + 10·(k-1)."""
        extra = []
        for service, base in (("calc", 8101), ("account", 8102)):
            for k in range(2, self._replicas().get(service, 1) + 1):
                address = self.address(base + 10 * (k - 1))
                shards = self._preferred_shards(k) if service == "account" else {}
                extra.append(
                    Process(
                        f"{service}-{k}",
                        f"{nameko} services/{service}/config.yml {service}.service",
                        f"http://{address}/health",
                        {**db(service), **shards, "WEB_SERVER_ADDRESS": address, "OTEL_SERVICE_NAME": service},
                        f"http://{address}",
                    )
                )
        return extra

    def _base_processes(self, nameko, db, ingest, calc, account, grpc_metrics, bridge, relay, sandbox):
        return [
            Process(
                "ingest",
                f"{VENV_BIN}/gunicorn -c services/ingest/gunicorn.conf.py --bind {ingest} 'ingest.app:create_app()'",
                f"http://{ingest}/readyz",
                {**db("ingest"), **self.secrets_for(INGEST_SECRETS), "OTEL_SERVICE_NAME": "ingest"},
                f"http://{ingest}",
            ),
            Process(
                "ingest-relay",
                f"{VENV_BIN}/python -m ingest.relay",
                f"http://{relay}/health",
                {**db("ingest"), "METRICS_ADDRESS": relay, "OTEL_SERVICE_NAME": "ingest-relay"},
                f"http://{relay}",
            ),
            Process(
                "calc",
                f"{nameko} services/calc/config.yml calc.service",
                f"http://{calc}/health",
                {**db("calc"), "WEB_SERVER_ADDRESS": calc, "OTEL_SERVICE_NAME": "calc"},
                f"http://{calc}",
            ),
            Process(
                "account",
                f"{nameko} services/account/config.yml account.service",
                f"http://{account}/health",
                {
                    **db("account"),
                    **self._preferred_shards(1),
                    "WEB_SERVER_ADDRESS": account,
                    "OTEL_SERVICE_NAME": "account",
                },
                f"http://{account}",
            ),
            Process(
                "account-grpc",
                f"{VENV_BIN}/python -m account.grpc_server",
                f"http://{grpc_metrics}/health",
                {
                    **db("account"),
                    "GRPC_ADDRESS": self.address(50051),
                    "METRICS_ADDRESS": grpc_metrics,
                    "OTEL_SERVICE_NAME": "account-grpc",
                },
                f"grpc://{self.address(50051)}",
            ),
            Process(
                "exchange-bridge",
                f"{nameko} services/exchange-bridge/config.yml exchange_bridge.service",
                f"http://{bridge}/health",
                {
                    **db("exchange_bridge"),
                    **self.secrets_for(BRIDGE_SECRETS),
                    "WEB_SERVER_ADDRESS": bridge,
                    "EXCHANGE_URL": f"http://{sandbox}",
                    "OTEL_SERVICE_NAME": "exchange-bridge",
                },
                f"http://{bridge}",
            ),
            Process(
                "exchange-sandbox",
                f"{VENV_BIN}/python -m exchange_bridge.sandbox",
                f"http://{sandbox}/health",
                {
                    "SANDBOX_ADDRESS": sandbox,
                    "OTEL_SERVICE_NAME": "exchange-sandbox",
                    "PYTHONUNBUFFERED": "1",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                },
                f"http://{sandbox}",
            ),
        ]

    # --- supervisord -----------------------------------------------------------------------
    @property
    def conf(self) -> pathlib.Path:
        return self.dir / "supervisord.conf"

    def write_conf(self, processes: list[Process]) -> None:
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        lines = [
            "[unix_http_server]",
            f"file={self.dir}/supervisor.sock",
            "",
            "[supervisord]",
            f"logfile={logs}/supervisord.log",
            f"pidfile={self.dir}/supervisord.pid",
            f"directory={ROOT}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.dir}/supervisor.sock",
            "",
        ]
        for p in processes:
            env = ",".join(f'{k}="{v}"' for k, v in {**p.env, "PATH": f"{VENV_BIN}:/usr/bin:/bin"}.items())
            lines += [
                f"[program:{p.name}]",
                f"command={p.command}",
                f"directory={ROOT}",
                f"environment={env}",
                "autorestart=true",
                "startsecs=2",
                "stopasgroup=true",
                "killasgroup=true",
                "stopwaitsecs=15",
                f"stdout_logfile={logs}/{p.name}.log",
                "redirect_stderr=true",
                "",
            ]
        self.conf.write_text("\n".join(lines))
        self.conf.chmod(0o600)

    def ctl(self, *args: str, check: bool = False, timeout: float = STOP_TIMEOUT) -> subprocess.CompletedProcess:
        """supervisorctl, bounded: a wedged supervisord answers as a failed command (124)."""
        argv = [f"{VENV_BIN}/supervisorctl", "-c", str(self.conf), *args]
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(
                argv, 124, "", f"supervisorctl {' '.join(args)}: no answer in {timeout:.0f}s"
            )

    def running(self) -> bool:
        return self.conf.exists() and self.ctl("pid", timeout=10).returncode == 0

    def supervisord_pid(self) -> int:
        """This instance's supervisord: from its pid file, else found by its command line (a lost
        pid file or socket); 0 when there is none."""
        pidfile = self.dir / "supervisord.pid"
        candidates = [pidfile.read_text().strip()] if pidfile.exists() else []
        candidates += [p.name for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()]
        for pid in candidates:
            try:
                argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"supervisord") for a in argv) and str(self.conf).encode() in argv:
                return int(pid)
        return 0

    def pid(self, name: str) -> int:
        """The pid of one supervised process (0 while it is not running)."""
        out = self.ctl("pid", name).stdout.strip()
        return int(out) if out.isdigit() and out != "0" else 0

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Crash one process and its children without warning (chaos tests); supervisord
        restarts it (autorestart). Returns the killed pid (0: it was not running)."""
        pid = self.pid(name)
        if pid:
            os.killpg(pid, sig)  # supervisord puts every program in its own process group
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 60) -> int:
        """Until `name` runs under a new pid and answers its readiness URL; -> the new pid."""
        process = next(p for p in self.processes() if p.name == name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid(name)
            if pid and pid != old_pid and healthy(process.ready_url):
                return pid
            time.sleep(0.2)
        raise TimeoutError(f"{name} not back within {timeout:.0f}s (see {self.dir / 'logs'})")

    def _rabbit_api(self, method: str, path: str, body: bytes | None = None):
        """The management API's JSON answer (None for an empty one; a DELETE of nothing is fine)."""
        request = urllib.request.Request(
            RABBIT_API + path,
            data=body,
            method=method,
            headers={"content-type": "application/json", "authorization": RABBIT_AUTH},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            if not (method == "DELETE" and exc.code == 404):
                raise

    def ensure_vhost(self) -> None:
        self._rabbit_api("PUT", f"/vhosts/{self.vhost}", b"{}")
        self._rabbit_api("PUT", f"/permissions/{self.vhost}/guest", b'{"configure":".*","write":".*","read":".*"}')

    def in_flight(self) -> int:
        """Messages waiting or being processed in this instance's handler queues."""
        from carbon_common import topology

        queues = {q["name"]: q for q in self._rabbit_api("GET", f"/queues/{self.vhost}")}
        names = {q.name for r in topology.ROUTES for q, kind in topology.route_queues(r) if kind != "dlq"}
        return sum(queues[n].get("messages", 0) for n in names if n in queues)

    def wait_drained(self, timeout: float = 900, progress=print) -> bool:
        """Until every handler queue is empty (the flow has caught up), showing progress."""
        deadline = time.monotonic() + timeout
        quiet_since, started = None, time.monotonic()
        while time.monotonic() < deadline:
            left = self.in_flight()
            if left == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 2:  # the broker's counters lag a little
                    progress(f"\r   all events processed ({time.monotonic() - started:.0f} s)          \n")
                    return True
            else:
                quiet_since = None
                progress(f"\r   {left} events still in flight through calc and account ...   ")
            time.sleep(1)
        progress("\n   the flow did not drain in time; balances below are partial\n")
        return False

    def reset(self) -> None:
        """Forget everything of this instance: its vhost (queues, messages) and its databases."""
        from carbon_common.mongo import client

        self.stop()
        self._rabbit_api("DELETE", f"/vhosts/{self.vhost}")
        mongo = client(self.mongo_uri)
        for name in mongo.list_database_names():
            if name.startswith(f"carbon_{self.name}_"):
                mongo.drop_database(name)

    def start(self, timeout: float = 120, progress=print) -> list[Process]:
        """Start the instance (or find it running); -> its processes. `self.started` says whether
        this call started supervisord, i.e. whether stopping it is this caller's business."""
        from carbon_common import topology

        processes = self.processes()
        self.ensure_vhost()
        topology.declare(self.amqp_uri)
        progress(f"topology declared in vhost {self.vhost}")
        self.started = not self.running()
        if self.started:
            self.write_conf(processes)
            subprocess.run([f"{VENV_BIN}/supervisord", "-c", str(self.conf)], check=True)
            (self.dir / "started-by").write_text(f"{started_by()} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
            progress(f"supervisord started {len(processes)} processes (logs: {self.dir / 'logs'})")
        else:
            progress(f"platform already running (started by {self.started_by()}): left running at the end")
        self.wait_healthy(processes, timeout, progress)
        return processes

    def wait_healthy(self, processes, timeout, progress) -> None:
        deadline = time.monotonic() + timeout
        pending = {p.name: p for p in processes}
        while pending:
            for name, p in list(pending.items()):
                if healthy(p.ready_url):
                    progress(f"  {name:17s} healthy")
                    del pending[name]
            if pending and time.monotonic() > deadline:
                raise SystemExit(f"not healthy after {timeout:.0f}s: {', '.join(pending)} (see {self.dir / 'logs'})")
            time.sleep(0.3)

    def started_by(self) -> str:
        path = self.dir / "started-by"
        return path.read_text().strip() if path.exists() else "not recorded"

    def stop(self, timeout: float = STOP_TIMEOUT) -> str:
        """Stop supervisord and every process under it, within `timeout` (+10 s for a SIGKILL);
        found by pid file, socket or command line. -> what was done, in words."""
        pid = self.supervisord_pid()
        if self.running():
            self.ctl("shutdown", timeout=timeout)
            how = "supervisorctl shutdown"
        elif pid:  # no socket (or it does not answer): the process itself
            os.kill(pid, signal.SIGTERM)
            how = f"SIGTERM to supervisord pid {pid} (its socket did not answer)"
        else:
            return f"platform instance {self.name} was not running"
        deadline = time.monotonic() + timeout
        while pid and alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)
            how += f", then SIGKILL after {timeout:.0f}s (its programs may be left: ps -ef | grep {self.dir})"
            _wait_gone(pid, 10)
        (self.dir / "started-by").unlink(missing_ok=True)
        return f"platform instance {self.name} stopped ({how})"

    def status_table(self) -> str:
        pid = self.supervisord_pid()
        head = (
            f"platform instance {self.name}: supervisord pid {pid}, started by {self.started_by()}\n"
            if pid
            else f"platform instance {self.name}: not running\n"
        )
        rows = [("component", "address", "state")]
        for p in self.processes():
            rows.append((p.name, p.address, "healthy" if healthy(p.ready_url) else "DOWN"))
        rows += [
            ("rabbitmq", f"amqp://127.0.0.1:5672/{self.vhost}  (UI http://127.0.0.1:15672)", "-"),
            ("ferretdb", "mongodb://127.0.0.1:27017", "-"),
            ("jaeger", JAEGER_UI, "-"),
        ]
        width = [max(len(r[i]) for r in rows) for i in range(3)]
        return head + "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, width)) for r in rows)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:  # gone meanwhile
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not alive(pid)


def started_by() -> str:
    """Who runs this process, for the records `make status` shows: our command line, and the
    `make` above it when there is one."""

    def cmdline(pid):
        try:
            return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            return "?"

    me, parent = os.getpid(), os.getppid()
    text = f"{cmdline(me)} (pid {me})"
    return f"{cmdline(parent)} (pid {parent}) > {text}" if cmdline(parent).startswith("make") else text


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


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def run_step(title: str, args: list[str], env: dict) -> None:
    """A demo/report step of another package: run it if that package is installed."""
    print(f"\n== {title}")
    result = subprocess.run([f"{VENV_BIN}/python", *args], cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        print(f"   (step exited with {result.returncode})")


def demo(instance: Instance) -> None:
    secrets = instance.secrets()
    env = {"AMQP_URI": instance.amqp_uri, "MONGO_URI": instance.mongo_uri, "OTEL_SERVICE_NAME": "demo"}
    ingest = f"http://{instance.address(8080)}"
    run_step(
        "demo partner traffic: a day of signed records",
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
        "customers redeem grams; the bank takes them back and registers them at the exchange",
        [
            "-m",
            "carbon_dev.bridge_demo",
            "--grpc",
            instance.address(50051),
            "--exchange",
            f"http://{instance.address(8200)}",
        ],
        env,
    )
    run_step(
        "balances and a monthly statement, read through the gRPC API",
        ["-m", "account.report", "--grpc", instance.address(50051)],
        {**env, "MONGO_DATABASE": f"carbon_{instance.name}_account"},
    )


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
        print(instance.status_table())
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
        print("\nThe platform is up:\n" + instance.status_table())
        print(f"\n  traces: {JAEGER_UI}/search?service=ingest   logs: {instance.dir / 'logs'}")
        if detached:
            print("  stop it with: make stop")
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
