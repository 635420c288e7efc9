"""supervisord for one platform instance: its config, starting and stopping it, the pids of its
programs. Everything lives in the instance's directory (.data/platform/<instance>/): the
config, the socket, the pid file, the logs and who started it."""

import os
import pathlib
import signal
import subprocess
import time

from carbon_dev.processes import ROOT, VENV_BIN, Process

STOP_TIMEOUT = 30  # seconds: supervisord stops every program (stopwaitsecs=15), then SIGKILL


class Supervisor:
    """The supervisord whose files are in `dir`, and the programs it runs."""

    def __init__(self, dir: pathlib.Path):
        self.dir = dir

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

    def launch(self, processes: list[Process]) -> None:
        """Write the config and start supervisord (it daemonizes), recording who started it."""
        self.write_conf(processes)
        subprocess.run([f"{VENV_BIN}/supervisord", "-c", str(self.conf)], check=True)
        (self.dir / "started-by").write_text(f"{started_by()} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")

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
        """This supervisord: from its pid file, else found by its command line (a lost pid file
        or socket); 0 when there is none."""
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

    def started_by(self) -> str:
        path = self.dir / "started-by"
        return path.read_text().strip() if path.exists() else "not recorded"

    def shutdown(self, timeout: float = STOP_TIMEOUT) -> str | None:
        """Stop supervisord and every program under it, within `timeout` (+10 s for a SIGKILL);
        found by pid file, socket or command line. -> how, in words; None: it was not running."""
        pid = self.supervisord_pid()
        if self.running():
            self.ctl("shutdown", timeout=timeout)
            how = "supervisorctl shutdown"
        elif pid:  # no socket (or it does not answer): the process itself
            os.kill(pid, signal.SIGTERM)
            how = f"SIGTERM to supervisord pid {pid} (its socket did not answer)"
        else:
            return None
        deadline = time.monotonic() + timeout
        while pid and alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)
            how += f", then SIGKILL after {timeout:.0f}s (its programs may be left: ps -ef | grep {self.dir})"
            wait_gone(pid, 10)
        (self.dir / "started-by").unlink(missing_ok=True)
        return how


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


def wait_gone(pid: int, timeout: float) -> bool:
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
