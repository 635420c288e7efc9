"""`make run`'s process table comes from the chart's values (carbon_dev.processes): what it
overlays is only what differs on one machine, and what the chart says can run from this
repository. No server; the instance's secrets are stubbed (the real ones are written under .data/)."""

import shlex
import urllib.parse
from pathlib import Path

import pytest

from carbon_dev import chart_values, processes
from carbon_dev.instance import Instance

COMPONENTS = chart_values.components()


@pytest.fixture
def table(monkeypatch):
    def build(name="unit", offset=0, replicas=""):
        monkeypatch.setattr(Instance, "secrets", lambda self: {n: f"<{n}>" for n in processes.SECRET_NAMES})
        monkeypatch.setenv("CARBON_REPLICAS", replicas)
        return {p.name: p for p in Instance(name, port_offset=offset).processes()}

    return build


def test_every_chart_component_runs_the_registry_included(table):
    assert list(table()) == list(COMPONENTS)
    assert not COMPONENTS["exchange-registry"].enabled  # dev/test only in the chart, run here


def test_local_ports_cover_every_port_of_the_chart_and_are_distinct():
    assert set(processes.LOCAL_PORTS) == set(COMPONENTS)
    for name, component in COMPONENTS.items():
        assert set(processes.LOCAL_PORTS[name]) == set(component.ports), name
    ports = [p for by_name in processes.LOCAL_PORTS.values() for p in by_name.values()]
    assert len(ports) == len(set(ports))


@pytest.mark.parametrize("name", list(COMPONENTS))
def test_the_charts_command_runs_from_the_venv_and_the_repository(table, name):
    process, component = table()[name], COMPONENTS[name]
    argv = shlex.split(process.command)
    assert argv[0] == str(processes.VENV_BIN / component.command[0])
    assert argv[1 : len(component.command)] == [chart_values.local_path(a) for a in component.command[1:]]
    for arg in component.command[1:]:
        if arg.startswith(chart_values.IMAGE_WORKDIR):  # a file of the image: here, in the repository
            assert (chart_values.ROOT / chart_values.local_path(arg)).is_file(), arg


@pytest.mark.parametrize("name", list(COMPONENTS))
def test_environment_is_the_charts_on_loopback_with_the_instances_databases(table, name):
    process, component = table(offset=1000)[name], COMPONENTS[name]
    assert process.env["OTEL_SERVICE_NAME"] == name
    assert ("AMQP_URI" in process.env) == component.amqp
    assert ("MONGO_URI" in process.env) == component.mongodb
    for secret in component.secret_env:
        assert process.env[secret] == f"<{secret}>"
    for var, value in component.env.items():
        if var in processes.LOCAL_ENV.get(name, {}):
            continue
        if var in processes.DATABASE_VARIABLES:
            assert process.env[var] == value.replace("carbon_", "carbon_unit_", 1)
        elif "0.0.0.0:" in value:
            assert "0.0.0.0" not in process.env[var] and "127.0.0.1:" in process.env[var], var
        else:
            assert process.env[var] == value, var
    local = {port + 1000 for port in processes.LOCAL_PORTS[name].values()}
    listens = [int(a.rpartition(":")[2]) for k, a in process.env.items() if k.endswith("_ADDRESS")]
    assert set(listens) <= local
    ready = urllib.parse.urlsplit(process.ready_url)
    port_name, path = component.readiness_http()
    assert (ready.port, ready.path) == (processes.LOCAL_PORTS[name][port_name] + 1000, path)


def test_what_make_run_starts_stays_as_it_was(table):
    """The table before it came from the chart, for three processes (issue 19)."""
    got = table()
    venv = processes.VENV_BIN
    assert got["ingest"].command == (
        f"{venv}/gunicorn -c services/ingest/gunicorn.conf.py 'ingest.app:create_app()' --bind 127.0.0.1:8080"
    )
    assert "GUNICORN_CMD_ARGS" not in got["ingest"].env
    assert got["ingest"].ready_url == "http://127.0.0.1:8080/readyz"
    assert got["account-grpc"].address == "grpc://127.0.0.1:50051"
    assert got["account-grpc"].env["GRPC_ADDRESS"] == "127.0.0.1:50051"
    assert got["account-grpc"].env["METRICS_ADDRESS"] == "127.0.0.1:8103"
    # GetRetirementCertificate calls the bridge's RPC: the instance's broker, like the bridge's
    assert got["account-grpc"].env["AMQP_URI"] == got["exchange-bridge"].env["AMQP_URI"]
    assert got["exchange-bridge"].env["REGISTRY_URL"] == "http://127.0.0.1:8200"
    assert got["exchange-bridge"].env["MONGO_DATABASE"] == "carbon_unit_exchange_bridge"
    assert got["exchange-registry"].env["REGISTRY_DB"] == "carbon_unit_exchange_registry"
    assert got["exchange-registry"].env["REGISTRY_ADDRESS"] == "127.0.0.1:8200"
    assert got["calc"].command == f"{venv}/nameko run --config services/calc/config.yml calc.service"


def test_replicas_listen_ten_ports_up_and_split_the_account_shards(table):
    got = table(replicas="calc=2,account=2")
    assert list(got)[-2:] == ["calc-2", "account-2"]
    assert got["calc-2"].env["WEB_SERVER_ADDRESS"] == "127.0.0.1:8111"
    assert got["calc-2"].env["OTEL_SERVICE_NAME"] == "calc"
    assert got["account-2"].ready_url == "http://127.0.0.1:8112/health"
    first = got["account"].env["CARBON_PREFERRED_SHARDS"].split(",")
    second = got["account-2"].env["CARBON_PREFERRED_SHARDS"].split(",")
    assert first[0] == "0" and second[0] == "1" and not set(first) & set(second)


def test_a_chart_port_without_a_local_one_is_refused(monkeypatch):
    component = COMPONENTS["calc"]
    monkeypatch.setitem(processes.LOCAL_PORTS, "calc", {})
    site = processes.Site("unit", 0, "amqp://x", "mongodb://x")
    with pytest.raises(SystemExit, match="LOCAL_PORTS"):
        processes.process(site, component, {})


def test_onboarding_is_the_charts_job_against_the_local_registry(table):
    """The chart's exchangeOnboarding Job, run once the registry answers (Instance.onboard): the
    bridge's local registry URL, participant and key id, the registry's admin token and the
    bridge's public key (not its private key)."""
    got = table(offset=1000)
    secrets = {n: f"<{n}>" for n in processes.SECRET_NAMES}
    site = processes.Site("unit", 1000, "amqp://x", "mongodb://x")
    step = processes.onboarding(site, secrets, list(got.values()))
    job = chart_values.onboarding_job()
    assert step.argv == [str(processes.VENV_BIN / job.command[0]), *job.command[1:]]
    assert step.argv[1:3] == ["-m", "exchange_bridge.cli.onboard"]
    bridge = got["exchange-bridge"]
    assert step.env["REGISTRY_URL"] == bridge.env["REGISTRY_URL"] == "http://127.0.0.1:9200"
    for name in ("BRIDGE_PARTICIPANT", "BRIDGE_KEY_ID"):
        assert step.env[name] == bridge.env[name] == COMPONENTS["exchange-bridge"].env[name]
    assert step.env["REGISTRY_ADMIN_TOKEN"] == got["exchange-registry"].env["REGISTRY_ADMIN_TOKEN"]
    assert step.env["BRIDGE_SM2_PUBLIC_KEY"] == bridge.env["BRIDGE_SM2_PUBLIC_KEY"]
    assert not {"BRIDGE_SM2_PRIVATE_KEY", "REGISTRY_SM2_PRIVATE_KEY", "AMQP_URI", "MONGO_URI"} & set(step.env)


def test_every_secret_has_a_fresh_development_value():
    fresh = processes.fresh_secrets()
    assert set(fresh) == set(processes.SECRET_NAMES)
    from carbon_common import gm

    for private, public in (
        ("PLATFORM_SM2_PRIVATE_KEY", "PLATFORM_SM2_PUBLIC_KEY"),
        ("BRIDGE_SM2_PRIVATE_KEY", "BRIDGE_SM2_PUBLIC_KEY"),
        ("REGISTRY_SM2_PRIVATE_KEY", "REGISTRY_SM2_PUBLIC_KEY"),
    ):
        assert gm.public_key_of(fresh[private]).lower() == fresh[public].lower(), private


def test_devstack_still_exports_what_others_import():
    from carbon_dev import devstack

    for name in ("ROOT", "VENV_BIN", "Instance", "Process", "alive", "fresh_secrets", "main"):
        assert hasattr(devstack, name), name
    assert Path(devstack.ROOT, "charts", "carbon-platform", "values.yaml").is_file()
