"""The process table of `make run`: which processes, their commands, environment, ports and
readiness URLs, built at run time from the Helm chart's values (carbon_dev.chart_values).

What the chart says is taken as it is: the command (run from .venv/bin, the image's /app/
being the repository root), the plain environment, the names of the secret variables, the
ports and the readiness probe. What differs on one machine is overlaid here, and only that:

- every port is a loopback port of its own (LOCAL_PORTS; docker-compose publishes the same
  host ports), and a listen address `0.0.0.0:<container port>` in the chart's environment
  becomes `127.0.0.1:<local port>`;
- database names carry the instance (`carbon_ingest` -> `carbon_dev_ingest`), the broker and
  database URIs are the instance's, traces go to the local Jaeger;
- secrets are throwaway development keys (fresh_secrets), generated per instance;
- the dev-only exchange registry (disabled in the chart) runs too, the bridge talks to it, and
  the chart's onboarding Job is a step once it answers (onboarding);
- CARBON_REPLICAS="calc=2,account=2" adds replicas on one machine (ports + 10 each).
"""

import re
import shlex
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from carbon_dev.chart_values import ROOT, Component, components, local_path, onboarding_job

VENV_BIN = ROOT / ".venv" / "bin"
OTLP_ENDPOINT = "http://127.0.0.1:4318"  # the local Jaeger (scripts/deps.sh)

# Host ports on 127.0.0.1 (plus an instance's port offset), by component and chart port name.
LOCAL_PORTS = {
    "ingest": {"http": 8080},
    "calc": {"http": 8101},
    "account": {"http": 8102},
    "account-grpc": {"grpc": 50051, "http": 8103},
    "exchange-bridge": {"http": 8104},
    "ingest-relay": {"http": 8105},
    "exchange-registry": {"http": 8200},
}
# Environment that differs from the chart on one machine; None drops the chart's variable.
# "{component.port}" is that component's local address (host:port).
LOCAL_ENV = {
    # gunicorn binds through --bind on the command line (LOCAL_ARGS) instead
    "ingest": {"GUNICORN_CMD_ARGS": None},
    "exchange-bridge": {"REGISTRY_URL": "http://{exchange-registry.http}"},
}
# Arguments appended to the chart's command line.
LOCAL_ARGS = {"ingest": ("--bind", "{ingest.http}")}
REPLICABLE = ("calc", "account")  # CARBON_REPLICAS may add more of these
REPLICA_PORT_STEP = 10
# The development secrets `make run` generates (fresh_secrets); the chart takes each from a
# Kubernetes Secret (components.<name>.secretEnv).
SECRET_NAMES = (
    "PSEUDONYM_KEY",
    "CONTACT_SM4_KEY",
    "PLATFORM_SM2_PRIVATE_KEY",
    "PLATFORM_SM2_PUBLIC_KEY",
    "ADMIN_TOKEN",
    "BRIDGE_SM2_PRIVATE_KEY",
    "BRIDGE_SM2_PUBLIC_KEY",
    "REGISTRY_ADMIN_TOKEN",
    "REGISTRY_SM2_PRIVATE_KEY",
    "REGISTRY_SM2_PUBLIC_KEY",
)
# Variables naming a component's database: `carbon_<name>` becomes `carbon_<instance>_<name>`.
DATABASE_VARIABLES = ("MONGO_DATABASE", "REGISTRY_DB")
LISTEN_ADDRESS = re.compile(r"0\.0\.0\.0:(\d+)")


@dataclass
class Process:
    name: str
    command: str
    ready_url: str
    env: dict = field(default_factory=dict)
    address: str = ""


def fresh_secrets() -> dict:
    """A new set of every dev secret the platform's processes take (throwaway keys)."""
    import os

    from carbon_common import gm

    platform_key, bridge_key, registry_key = (gm.generate_sm2_keypair() for _ in range(3))
    return {
        "PSEUDONYM_KEY": os.urandom(32).hex(),
        "CONTACT_SM4_KEY": os.urandom(16).hex(),
        "PLATFORM_SM2_PRIVATE_KEY": platform_key[0],
        "PLATFORM_SM2_PUBLIC_KEY": platform_key[1],
        "ADMIN_TOKEN": os.urandom(16).hex(),
        "BRIDGE_SM2_PRIVATE_KEY": bridge_key[0],
        "BRIDGE_SM2_PUBLIC_KEY": bridge_key[1],
        "REGISTRY_ADMIN_TOKEN": os.urandom(16).hex(),
        "REGISTRY_SM2_PRIVATE_KEY": registry_key[0],
        "REGISTRY_SM2_PUBLIC_KEY": registry_key[1],
    }


def healthy(url: str) -> bool:
    """Whether a readiness URL answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Site:
    """Where one platform instance runs: its name, port offset, broker and database URIs."""

    name: str
    offset: int
    amqp_uri: str
    mongo_uri: str

    def address(self, component: str, port: str, replica: int = 1) -> str:
        base = LOCAL_PORTS[component][port]
        return f"127.0.0.1:{base + self.offset + REPLICA_PORT_STEP * (replica - 1)}"


def replicas_wanted(text: str) -> dict[str, int]:
    """CARBON_REPLICAS, e.g. "calc=2,account=2" -> {"calc": 2, "account": 2}."""
    wanted = dict(item.split("=") for item in text.split(",") if "=" in item)
    return {service: int(n) for service, n in wanted.items()}


def preferred_shards(replica: int, count: int) -> dict:
    """Account replica k (1-based) of `count` takes shards k-1, k-1+count, … first."""
    from carbon_common import topology

    if count < 2:
        return {}
    return {"CARBON_PREFERRED_SHARDS": ",".join(str(s) for s in range(replica - 1, topology.shard_count(), count))}


def table(site: Site, secrets: dict, replicas: dict[str, int]) -> list[Process]:
    """Every process of the instance at `site`: each chart component once, in the chart's
    order, then the extra replicas of REPLICABLE components."""
    charted = components()

    def shards(name, k):
        return preferred_shards(k, replicas.get(name, 1)) if name == "account" else {}

    out = [process(site, c, secrets, extra_env=shards(c.name, 1)) for c in charted.values()]
    for name in REPLICABLE:
        for k in range(2, replicas.get(name, 1) + 1):
            out.append(process(site, charted[name], secrets, replica=k, extra_env=shards(name, k)))
    return out


def process(site: Site, c: Component, secrets: dict, replica: int = 1, extra_env: dict | None = None) -> Process:
    """One chart component as a local process (replica k > 1 is named `<name>-k`)."""
    if c.name not in LOCAL_PORTS or set(LOCAL_PORTS[c.name]) != set(c.ports):
        raise SystemExit(
            f"chart component {c.name} has ports {sorted(c.ports)}; carbon_dev.processes.LOCAL_PORTS "
            f"gives it {sorted(LOCAL_PORTS.get(c.name, {}))}: give every port a local one"
        )

    def local(text: str) -> str:
        text = re.sub(r"\{([a-z-]+)\.([a-z]+)\}", lambda m: site.address(m[1], m[2], 1), text)
        by_container_port = {str(port): name for name, port in c.ports.items()}
        return LISTEN_ADDRESS.sub(lambda m: site.address(c.name, by_container_port[m[1]], replica), text)

    env = {}
    if c.amqp:
        env["AMQP_URI"] = site.amqp_uri
    if c.mongodb:
        env["MONGO_URI"] = site.mongo_uri
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = OTLP_ENDPOINT
    for key, value in c.env.items():
        env[key] = local(value)
    for name in DATABASE_VARIABLES:  # carbon_<service> -> carbon_<instance>_<service>
        if name in env:
            env[name] = re.sub(r"^carbon_", f"carbon_{site.name}_", env[name])
    unknown = set(c.secret_env) - set(secrets)
    if unknown:
        raise SystemExit(f"chart component {c.name} takes {sorted(unknown)}: add a development value to fresh_secrets")
    env.update({name: secrets[name] for name in c.secret_env})
    for key, value in LOCAL_ENV.get(c.name, {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = local(value)
    env.update(extra_env or {})
    env["OTEL_SERVICE_NAME"] = c.name

    argv = [str(VENV_BIN / c.command[0]), *(local_path(a) for a in c.command[1:])]
    argv += [local(a) for a in LOCAL_ARGS.get(c.name, ())]
    ready_port, ready_path = c.readiness_http()
    front = "grpc" if "grpc" in c.ports else "http"
    return Process(
        c.name if replica == 1 else f"{c.name}-{replica}",
        shlex.join(argv),
        f"http://{site.address(c.name, ready_port, replica)}{ready_path}",
        env,
        f"{front}://{site.address(c.name, front, replica)}",
    )


@dataclass
class Step:
    """A Job of the chart run once on this machine: its command line and environment."""

    name: str
    argv: list[str]
    env: dict


def onboarding(site: Site, secrets: dict, processes: list[Process]) -> Step | None:
    """The chart's onboarding Job (`exchangeOnboarding`) for this instance: the bridge's local
    REGISTRY_URL, participant and key id, the registry's admin token and the bridge's public key.
    None when the chart's values disable it."""
    job = onboarding_job()
    if job is None:
        return None
    bridge = next(p for p in processes if p.name == "exchange-bridge")
    env = {**job.env, **{k: bridge.env[k] for k in ("REGISTRY_URL", "BRIDGE_PARTICIPANT", "BRIDGE_KEY_ID")}}
    env.update({name: secrets[name] for name in job.secret_env})
    env["OTEL_SERVICE_NAME"] = "exchange-onboarding"
    return Step("exchange-onboarding", [str(VENV_BIN / job.command[0]), *job.command[1:]], env)
