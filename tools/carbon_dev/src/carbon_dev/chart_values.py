"""The platform's processes as the Helm chart's values describe them: the one copy of each
process's command, environment names, ports and probes.

`make run` (carbon_dev.processes) and docker-compose.yml (carbon_dev.compose) are built from
what this module reads out of charts/carbon-platform/values.yaml; each overlays only what
differs where it runs (loopback ports, local databases, the exchange registry).
"""

import copy
import pathlib
from dataclasses import dataclass

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[4]
VALUES = ROOT / "charts" / "carbon-platform" / "values.yaml"
IMAGE_WORKDIR = "/app/"  # deploy/docker/Dockerfile: WORKDIR /app holds the service's files


@dataclass(frozen=True)
class Component:
    """One process of the chart (`components.<name>`), merged over `default` as the chart does."""

    name: str
    image: str  # a directory under services/ (the image's build arg SERVICE)
    command: tuple[str, ...]
    env: dict  # plain environment, name -> value (strings, as the chart renders them)
    secret_env: tuple[str, ...]  # names of the variables that come from Secrets
    ports: dict  # port name -> container port
    readiness: dict  # the readiness probe's handler, e.g. {"httpGet": {"path": "/health", "port": "http"}}
    amqp: bool
    mongodb: bool
    enabled: bool  # deployed by a default install (the dev-only registry is not)

    def readiness_http(self) -> tuple[str, str]:
        """(port name, path) of the HTTP readiness probe."""
        probe = self.readiness.get("httpGet")
        if not probe:
            raise ValueError(f"components.{self.name}: only an httpGet readiness probe can be run outside Kubernetes")
        return probe["port"], probe["path"]


@dataclass(frozen=True)
class Job:
    """A Job of the chart that runs once, then exits: the topology Job (`topology`) declares the
    broker's topology; the onboarding Job (`exchangeOnboarding`) registers the bank at the registry."""

    image: str
    command: tuple[str, ...]
    env: dict
    amqp: bool
    mongodb: bool
    secret_env: tuple[str, ...] = ()


def merged(default: dict, override: dict) -> dict:
    """`carbon.mergeInto`: maps merge key by key, anything else (lists, false, 0) replaces."""
    out = copy.deepcopy(default)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(path: pathlib.Path = VALUES) -> dict:
    return yaml.safe_load(path.read_text())


def components(values: dict | None = None) -> dict[str, Component]:
    """Every component of the chart, in the values file's order, enabled or not."""
    values = load() if values is None else values
    out = {}
    for name, raw in values["components"].items():
        c = merged(values["default"], raw)
        out[name] = Component(
            name=name,
            image=c["image"]["name"],
            command=tuple(str(a) for a in c["command"]),
            env={k: str(v) for k, v in (c.get("env") or {}).items() if v is not None},
            secret_env=tuple(k for k, v in (c.get("secretEnv") or {}).items() if v),  # null drops one
            ports=dict(c["ports"]),
            readiness=c["probes"]["readiness"],
            amqp=bool(c["amqp"]),
            mongodb=bool(c["mongodb"]),
            enabled=bool(c["enabled"]),
        )
    return out


def topology_job(values: dict | None = None) -> Job:
    values = load() if values is None else values
    job = merged(values["default"], values["topology"])
    return Job(
        image=job["image"]["name"],
        command=tuple(str(a) for a in job["command"]),
        env={k: str(v) for k, v in (job.get("env") or {}).items() if v is not None},
        amqp=bool(job["amqp"]),
        mongodb=bool(job["mongodb"]),
    )


REGISTRY, BRIDGE = "exchange-registry", "exchange-bridge"
# What the onboarding Job takes from the bridge's plain environment and from Secrets
# (templates/exchange-onboarding-job.yaml: the registry's admin token, the bridge's public key).
ONBOARDING_ENV = ("REGISTRY_URL", "BRIDGE_PARTICIPANT", "BRIDGE_KEY_ID")
ONBOARDING_SECRETS = ("REGISTRY_ADMIN_TOKEN", "BRIDGE_SM2_PUBLIC_KEY")


def onboarding_job(values: dict | None = None) -> Job | None:
    """The Job that onboards the bank at the registry (`exchangeOnboarding`), its environment as
    the chart renders it: the bridge's REGISTRY_URL, BRIDGE_PARTICIPANT and BRIDGE_KEY_ID, and
    the secret variables ONBOARDING_SECRETS. None when `exchangeOnboarding.enabled` is false."""
    values = load() if values is None else values
    job = merged(values["default"], values["exchangeOnboarding"])
    if not job.get("enabled", True):
        return None
    bridge = components(values)[BRIDGE]
    env = {k: str(v) for k, v in (job.get("env") or {}).items() if v is not None}
    env.update({name: bridge.env[name] for name in ONBOARDING_ENV})
    return Job(
        image=job["image"]["name"],
        command=tuple(str(a) for a in job["command"]),
        env=env,
        amqp=bool(job["amqp"]),
        mongodb=bool(job["mongodb"]),
        secret_env=ONBOARDING_SECRETS,
    )


def local_path(arg: str) -> str:
    """An argument of an image's command as it reads in the repository (the image's /app/… is
    the repository root: `services/<dir>/…`)."""
    return arg.removeprefix(IMAGE_WORKDIR)


def component_comments(path: pathlib.Path = VALUES) -> dict[str, list[str]]:
    """The comment lines right above each `components.<name>:` key (what the process is for)."""
    out, above, inside = {}, [], False
    for line in path.read_text().splitlines():
        if line.startswith("components:"):
            inside = True
        elif inside and line and not line.startswith(" "):
            break
        elif inside and line.startswith("  # "):
            above.append(line[4:])
        elif inside and line.startswith("  ") and not line.startswith("   ") and line.endswith(":"):
            out[line.strip().rstrip(":")] = above
            above = []
        else:
            above = []
    return out
