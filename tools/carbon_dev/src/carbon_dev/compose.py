"""docker-compose.yml, generated from the Helm chart's values: `make compose`.

    python -m carbon_dev.compose           write docker-compose.yml
    python -m carbon_dev.compose --check   exit 1 (with the diff) when it is stale

Every platform process of the chart (charts/carbon-platform/values.yaml, `components` and the
`topology` and `exchangeOnboarding` Jobs) becomes a compose service with the chart's image,
command, environment, secret variable names, ports and readiness probe (as its healthcheck).
What compose adds is written here and nowhere else: the backing servers (MongoDB, RabbitMQ,
Jaeger), the host ports (those of `make run`, carbon_dev.processes.LOCAL_PORTS), public
development values for the secrets, the exchange registry for the bridge (the bridge starts
once the bank is onboarded there), and plaintext gRPC. tests/chart fails when the committed
file differs from what this module writes.
"""

import argparse
import difflib
import json
import sys
import textwrap

import yaml

from carbon_dev import chart_values
from carbon_dev.chart_values import ROOT, Component
from carbon_dev.processes import LOCAL_PORTS

COMPOSE_FILE = ROOT / "docker-compose.yml"
# DEVELOPMENT keys, public in the generated file; overridable from the shell or an .env file.
DEV_SECRETS = {
    "PSEUDONYM_KEY": "b35bc48de97ce510ac41a5a7dceb67e2",
    "PLATFORM_SM2_PRIVATE_KEY": "d8d2d72fa4ccf61b2b9a69f8106f73c3de3a8ec1eec46373028b0d25c2b78356",
    "PLATFORM_SM2_PUBLIC_KEY": "a807e856e8d075cc2240073fb987966c8af59d478b7662bcd64fdec9b6669dab"
    "e92641ba05b0214324019ea066ce69387424cd95d7d562cf21e3c02153deccb5",
    "CONTACT_SM4_KEY": "9a1b88ce24e2653510c9279c0a944fa8",
    "ADMIN_TOKEN": "dev-admin-token-not-secret",
    "BRIDGE_SM2_PRIVATE_KEY": "1fa5ee23f4ec6a48aba4bf8c8dcf3d4365ad9afb5869f787d59efb52cb21b618",
    "BRIDGE_SM2_PUBLIC_KEY": "09f6a8b493dea27dfeed61094a1726a383102007fa225e8f2cfe117bd8b52bb0"
    "ee7d3ed815a77e9d9ae31748cddf322b72e1808209ba15434a442e8da48f4c93",
    "REGISTRY_ADMIN_TOKEN": "dev-registry-admin-token-not-secret",
    "REGISTRY_SM2_PRIVATE_KEY": "373cca9dd961e5cf2dbb2df5d2e6081721b242862ecc85f3679fa59af4b6b660",
    "REGISTRY_SM2_PUBLIC_KEY": "9c97302074d1801babfad2925f158353eb0d56dde92f6cda92ff9cfe06b2c1b8"
    "818e14907d969af549f1c0c7f19f09fab34ecef93b1b1dd2a006ee56e0bc443c",
}
REGISTRY, ONBOARDING = chart_values.REGISTRY, "exchange-onboarding"
# MongoDB's healthcheck initiates the one-member replica set on first start.
MONGO_CHECK = (
    "try { rs.status() } catch (e) { rs.initiate({_id: 'rs0', members: [{_id: 0, host: 'mongodb:27017'}]}) }; "
    "quit(db.hello().isWritablePrimary ? 0 : 1)"
)
HEALTHCHECK = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=3)"

HEAD = """\
# GENERATED from charts/carbon-platform/values.yaml by `make compose`
# (tools/carbon_dev/src/carbon_dev/compose.py): change those, then run `make compose`; do not
# edit this file (tests/chart fails when it differs from what the generator writes).
#
# The whole platform for people with Docker: MongoDB 7 (single-node replica set), RabbitMQ
# 3.13, Jaeger v2 (OTLP), the topology init step, every service process, the exchange registry
# and the bank's onboarding there, built from deploy/docker/Dockerfile (build arg SERVICE; build
# context = repository root).
#
#   docker-compose up --build -d          # or: make up
#   docker-compose ps                     # every service should become "healthy"
#   open http://127.0.0.1:16686           # Jaeger UI; RabbitMQ UI: http://127.0.0.1:15672 (carbon/carbon)
#
{ports}
# The keys below are DEVELOPMENT keys, public in this file: never reuse them anywhere else.
# Override any of them from the shell or an .env file (e.g. PSEUDONYM_KEY=...).

# Connections and telemetry (the chart takes the URIs from Secrets, OTEL_* from `otel`).
x-amqp-uri: &amqp-uri amqp://carbon:carbon@rabbitmq:5672/
# replicaSet: writes go to the primary with w=majority, as in production.
x-mongo-uri: &mongo-uri mongodb://mongodb:27017/?replicaSet=rs0&w=majority
x-otel-env: &otel-env
  OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4318
  OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf
  OTEL_RESOURCE_ATTRIBUTES: service.namespace=carbon-platform,deployment.environment.name=compose

# Same hardening as the Helm chart: read-only root, writable /tmp only, no capabilities.
x-hardening: &hardening
  read_only: true
  tmpfs:
    - /tmp
  cap_drop: [ALL]
  security_opt:
    - no-new-privileges:true
  restart: unless-stopped

# Every image: one Dockerfile, the service directory as build arg (docs/deploy.md, Images).
x-build: &build
  context: .
  dockerfile: deploy/docker/Dockerfile

x-needs-platform: &needs-platform
  topology:
    condition: service_completed_successfully
  mongodb:
    condition: service_healthy
  jaeger:
    condition: service_started

services:
  mongodb:
    image: mongo:7.0
    command: [--replSet, rs0, --bind_ip_all]
    ports:
      - "127.0.0.1:27017:27017"
    volumes:
      - mongodb-data:/data/db
    # Initiates the one-member replica set on first start; healthy once it is primary.
    healthcheck:
      test:
        - CMD
        - mongosh
        - --quiet
        - --eval
        - "{mongo_check}"
      interval: 5s
      timeout: 10s
      retries: 30
      start_period: 10s

  rabbitmq:
    image: rabbitmq:3.13-management
    environment:
      RABBITMQ_DEFAULT_USER: carbon
      RABBITMQ_DEFAULT_PASS: carbon
    ports:
      - "127.0.0.1:5672:5672"
      - "127.0.0.1:15672:15672"
    volumes:
      - rabbitmq-data:/var/lib/rabbitmq
    healthcheck:
      test: [CMD, rabbitmq-diagnostics, -q, check_port_connectivity]
      interval: 5s
      timeout: 10s
      retries: 30
      start_period: 15s

  jaeger:
    image: jaegertracing/jaeger:2.13.0
    ports:
      - "127.0.0.1:16686:16686"
      - "127.0.0.1:4317:4317"
      - "127.0.0.1:4318:4318"
"""

TAIL = """
volumes:
  mongodb-data:
  rabbitmq-data:
"""


def flow(value, context: str = "value") -> str:
    """`value` as YAML in flow style, quoted only where it must be ("value": a map value,
    "item": an element of a flow list)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v, "item") for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    for candidate in (text, json.dumps(text), f"'{text}'" if "'" not in text else None):
        if candidate is None:
            continue
        try:
            parsed = yaml.safe_load(f"k: {candidate}" if context == "value" else f"[{candidate}]")
        except yaml.YAMLError:
            continue
        if parsed == ({"k": text} if context == "value" else [text]):
            return candidate
    raise ValueError(f"cannot write {text!r} as YAML")


def comment(lines: list[str], indent: str) -> list[str]:
    return [f"{indent}# {line}" if line else f"{indent}#" for line in lines]


def environment(c: Component | chart_values.Job, name: str, charted: dict[str, Component]) -> list[str]:
    """A service's environment: the chart's, with compose's connections, keys and registry."""
    lines = ["    environment:", "      <<: *otel-env"]
    if c.amqp:
        lines.append("      AMQP_URI: *amqp-uri")
    if c.mongodb:
        lines.append("      MONGO_URI: *mongo-uri")
    env = {"OTEL_SERVICE_NAME": name, **c.env}
    if "REGISTRY_URL" in env:  # the registry here (the chart's URL is a placeholder)
        env["REGISTRY_URL"] = f"http://{REGISTRY}:{charted[REGISTRY].ports['http']}"
    for secret in getattr(c, "secret_env", ()):
        if secret not in DEV_SECRETS:
            raise SystemExit(f"chart component {name} takes secret {secret}: add a development value to DEV_SECRETS")
        env[secret] = f"${{{secret}:-{DEV_SECRETS[secret]}}}"
    lines += [f"      {k}: {flow(v)}" for k, v in env.items()]
    if "grpc" in getattr(c, "ports", {}):  # as the chart's grpc.allowInsecure
        lines += comment(
            ["a laptop sandbox: plaintext gRPC, every caller anonymous (docs/grpc.md for TLS + callers)"], "      "
        )
        lines.append('      GRPC_ALLOW_INSECURE: "true"')
    return lines


def service(c: Component, charted: dict[str, Component], notes: dict[str, list[str]], onboards: bool) -> list[str]:
    host = LOCAL_PORTS[c.name]
    if set(host) != set(c.ports):
        raise SystemExit(f"chart component {c.name} has ports {sorted(c.ports)}, LOCAL_PORTS {sorted(host)}")
    lines = ["", *comment(notes.get(c.name, []), "  "), f"  {c.name}:", "    <<: *hardening"]
    lines += [
        f"    build: {{<<: *build, args: {{SERVICE: {c.image}}}}}",
        f"    image: carbon-platform/{c.image}:dev",
        f"    command: {flow(list(c.command))}",
    ]
    lines += environment(c, c.name, charted)
    lines += ["    ports:", *(f'      - "127.0.0.1:{host[name]}:{port}"' for name, port in c.ports.items())]
    if c.amqp or c.mongodb:
        if "REGISTRY_URL" in c.env and onboards:  # the bank is onboarded before its first pass
            lines += [
                "    depends_on:",
                "      <<: *needs-platform",
                f"      {ONBOARDING}:",
                "        condition: service_completed_successfully",
            ]
        else:
            lines.append("    depends_on: *needs-platform")
    port_name, path = c.readiness_http()
    check = ["CMD", "python", "-c", HEALTHCHECK.format(port=c.ports[port_name], path=path)]
    lines += [
        "    healthcheck:",
        f"      test: {flow(check)}",
        "      interval: 10s",
        "      timeout: 5s",
        "      retries: 12",
    ]
    return lines


def topology(job: chart_values.Job, charted: dict[str, Component]) -> list[str]:
    return [
        "",
        "  # Declares every exchange, queue, binding and DLQ, then exits; services start after it.",
        "  topology:",
        "    <<: *hardening",
        f"    build: {{<<: *build, args: {{SERVICE: {job.image}}}}}",
        f"    image: carbon-platform/{job.image}:dev",
        f"    command: {flow(list(job.command))}",
        '    restart: "no"',
        *environment(job, "topology", charted),
        "    depends_on:",
        "      rabbitmq:",
        "        condition: service_healthy",
    ]


def onboarding(job: chart_values.Job, charted: dict[str, Component]) -> list[str]:
    return [
        "",
        "  # Onboards the bank (the bridge's participant and public key) at the registry, then exits;",
        "  # the bridge starts after it (the chart's exchangeOnboarding Job).",
        f"  {ONBOARDING}:",
        "    <<: *hardening",
        f"    build: {{<<: *build, args: {{SERVICE: {job.image}}}}}",
        f"    image: carbon-platform/{job.image}:dev",
        f"    command: {flow(list(job.command))}",
        '    restart: "no"',
        *environment(job, ONBOARDING, charted),
        "    depends_on:",
        f"      {REGISTRY}:",
        "        condition: service_healthy",
    ]


def render() -> str:
    values = chart_values.load()
    charted = chart_values.components(values)
    notes = chart_values.component_comments()
    ports = ", ".join(f"{name} " + " + ".join(str(p) for p in LOCAL_PORTS[name].values()) for name in charted)
    ports = textwrap.fill(f"Host ports follow `make run`: {ports}.", 94, initial_indent="# ", subsequent_indent="# ")
    lines = [HEAD.replace("{ports}", ports).replace("{mongo_check}", MONGO_CHECK).rstrip("\n")]
    lines += topology(chart_values.topology_job(values), charted)
    job = chart_values.onboarding_job(values)
    if job is not None:
        lines += onboarding(job, charted)
    for c in charted.values():
        lines += service(c, charted, notes, onboards=job is not None)
    return "\n".join(lines) + "\n" + TAIL


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carbon_dev.compose", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docker-compose.yml is stale")
    args = parser.parse_args(argv)
    text = render()
    old = COMPOSE_FILE.read_text() if COMPOSE_FILE.exists() else ""
    if args.check:
        if old == text:
            return 0
        sys.stdout.writelines(
            difflib.unified_diff(old.splitlines(True), text.splitlines(True), "committed", "generated")
        )
        print("docker-compose.yml is stale: run `make compose` and commit it")
        return 1
    COMPOSE_FILE.write_text(text)
    print(f"{'updated' if old != text else 'same   '} {COMPOSE_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
