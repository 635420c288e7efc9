"""Real faults: SIGKILL of a supervised process group (supervisord restarts it) and, for the
long run only, a restart of the shared RabbitMQ and FerretDB servers."""

import subprocess
import threading
import time
from dataclasses import dataclass, field

from carbon_dev.processes import ROOT


@dataclass
class Kill:
    name: str
    pid: int
    backlog: dict  # records not yet through calc / account when the process died
    at: float
    back_after: float = -1  # seconds until the new process answered its readiness URL (-1: not waited)


@dataclass
class Crasher:
    instance: object
    progress: object = print
    backlog: object = dict  # () -> {"calc": n, "account": m}: work the pipeline has not finished
    kills: list = field(default_factory=list)
    restarts: list = field(default_factory=list)  # (what, seconds down)
    watch: bool = False  # time each restart in a thread (real threads: the long run only)

    def crash(self, name: str) -> Kill:
        """SIGKILL `name` now; a previous crash of it must have recovered first (else
        supervisord would count a crash loop and give up on the program)."""
        self._recovered(name)
        backlog = self.backlog()
        pid = self.instance.kill(name)
        if not pid:
            raise RuntimeError(f"{name} is not running; cannot crash it")
        kill = Kill(name, pid, backlog, time.monotonic())
        self.kills.append(kill)
        self.progress(f"SIGKILL {name} (pid {pid}); backlog {backlog}")
        if self.watch:
            threading.Thread(target=self._time_restart, args=(kill,), daemon=True).start()
        return kill

    def _time_restart(self, kill: Kill) -> None:
        try:
            self.instance.wait_restarted(kill.name, kill.pid, timeout=120)
            kill.back_after = time.monotonic() - kill.at
        except TimeoutError as exc:
            self.progress(str(exc))

    def _recovered(self, name: str) -> None:
        for kill in self.kills:
            if kill.name == name and kill.back_after < 0:
                self.instance.wait_restarted(name, kill.pid, timeout=120)
                if kill.back_after < 0:  # (a watcher thread may have timed it meanwhile)
                    kill.back_after = time.monotonic() - kill.at

    def recover_all(self) -> None:
        for name in {k.name for k in self.kills}:
            self._recovered(name)

    def restart_servers(self) -> float:
        """Stop and start RabbitMQ, FerretDB (and Jaeger) with scripts/deps.sh: shared servers,
        so never from `make test`. -> seconds the servers were down."""
        started = time.monotonic()
        self.progress("stopping RabbitMQ, FerretDB, Jaeger (scripts/deps.sh stop)")
        subprocess.run(["bash", str(ROOT / "scripts" / "deps.sh"), "stop"], check=True, capture_output=True)
        subprocess.run(["bash", str(ROOT / "scripts" / "deps.sh"), "start"], check=True, capture_output=True)
        down = time.monotonic() - started
        self.restarts.append(("rabbitmq+ferretdb", down))
        self.progress(f"servers back after {down:.1f} s")
        return down
