"""A platform instance: a named copy of the platform with its own RabbitMQ vhost, database
names, ports and supervisord, so `make run` (instance "dev") and the e2e tests (instance "e2e")
can share the same RabbitMQ/FerretDB/Jaeger without seeing each other's data.

Its processes come from carbon_dev.processes (the chart's values, overlaid for one machine);
supervisord runs them (carbon_dev.supervision)."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from carbon_dev import processes as table
from carbon_dev.processes import ROOT, SECRET_NAMES, Process, fresh_secrets, healthy
from carbon_dev.supervision import STOP_TIMEOUT, Supervisor

RABBIT_API = "http://127.0.0.1:15672/api"
RABBIT_AUTH = "Basic Z3Vlc3Q6Z3Vlc3Q="  # guest:guest, the loopback-only dev broker
# key pairs: generated, and replaced, only as a pair
KEY_PAIRS = (
    ("PLATFORM_SM2_PRIVATE_KEY", "PLATFORM_SM2_PUBLIC_KEY"),
    ("BRIDGE_SM2_PRIVATE_KEY", "BRIDGE_SM2_PUBLIC_KEY"),
    ("REGISTRY_SM2_PRIVATE_KEY", "REGISTRY_SM2_PUBLIC_KEY"),
)


class Instance(Supervisor):
    def __init__(self, name: str = "dev", port_offset: int = 0):
        super().__init__(ROOT / ".data" / "platform" / name)
        self.name = name
        self.offset = port_offset
        self.vhost = f"carbon_{name}"
        self.amqp_uri = f"pyamqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.mongo_uri = "mongodb://127.0.0.1:27017/?retryWrites=false"
        self.started = False  # whether start() started supervisord (else it found it running)

    def port(self, base: int) -> int:
        return base + self.offset

    def address(self, base: int) -> str:
        return f"127.0.0.1:{self.port(base)}"

    def url(self, component: str, port: str = "http") -> str:
        """A component's local address, e.g. url("ingest") -> "http://127.0.0.1:8080"."""
        scheme = "grpc" if port == "grpc" else "http"
        return f"{scheme}://{self.address(table.LOCAL_PORTS[component][port])}"

    def secrets(self) -> dict:
        """Dev-only secrets, generated once per instance and kept (production takes them from
        Kubernetes Secrets). A secret added later is generated alone: existing pseudonyms stay."""
        path = self.dir / "dev-secrets.json"
        values = json.loads(path.read_text()) if path.exists() else {}
        missing = [name for name in SECRET_NAMES if name not in values]
        if missing:
            fresh = fresh_secrets()
            for pair in KEY_PAIRS:
                if pair[0] in values:
                    for name in pair:
                        fresh.pop(name)
            values = {**fresh, **values}
            self.dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        return values

    def processes(self) -> list[Process]:
        site = table.Site(self.name, self.offset, self.amqp_uri, self.mongo_uri)
        replicas = table.replicas_wanted(os.environ.get("CARBON_REPLICAS", ""))
        return table.table(site, self.secrets(), replicas)

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

    # --- its share of the shared RabbitMQ and FerretDB ----------------------------------------
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

    # --- start and stop -------------------------------------------------------------------------
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
            self.launch(processes)
            progress(f"supervisord started {len(processes)} processes (logs: {self.dir / 'logs'})")
        else:
            progress(f"platform already running (started by {self.started_by()}): left running at the end")
        self.wait_healthy(processes, timeout, progress)
        self.onboard(processes, progress)
        return processes

    def onboard(self, processes: list[Process], progress=print) -> None:
        """The chart's onboarding Job as a step: the bank's participant and key at the registry,
        before the bridge's first pass needs them (idempotent: a restart finds them registered)."""
        site = table.Site(self.name, self.offset, self.amqp_uri, self.mongo_uri)
        step = table.onboarding(site, self.secrets(), processes)
        if step is None:
            return
        result = subprocess.run(step.argv, cwd=ROOT, env={**os.environ, **step.env}, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{step.name} exited with {result.returncode}: {(result.stderr or result.stdout).strip()}")
        done = "; ".join(line for line in result.stdout.splitlines() if line.strip())
        progress(f"  {step.name:17s} {done}")

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

    def stop(self, timeout: float = STOP_TIMEOUT) -> str:
        """Stop supervisord and every process under it (Supervisor.shutdown). -> what was done."""
        how = self.shutdown(timeout)
        if how is None:
            return f"platform instance {self.name} was not running"
        return f"platform instance {self.name} stopped ({how})"
