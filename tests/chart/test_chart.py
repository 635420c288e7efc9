"""Offline checks of what a platform team deploys: the Helm chart, the compose file, the images.

No cluster and no Docker engine are needed. The chart is linted, every example is rendered and
compared with its committed output, every manifest is validated against the Kubernetes 1.33
API schemas, and the hardening the bank relies on (non-root, read-only root, no capabilities,
probes, resources) is asserted on every container. The chart's values are the one copy of each
process's command, environment, ports and probes: `make run` builds its processes from them
(carbon_dev.processes, tested in tools/carbon_dev/tests) and docker-compose.yml is generated
from them (`make compose`, carbon_dev.compose); the committed compose file must be what the
generator writes, and `docker-compose config` must accept it. The one Dockerfile and the runtime-only package set
(deploy/docker/runtime_deps.py) are checked without building. helm comes from `make setup`
(.deps/bin/helm); when it is missing the tests fail and say how to get it.

The committed renders (examples/*/rendered.yaml and tests/chart/golden/) are diffed by
test_golden_and_policy.py; after a deliberate chart change, review the diff and run
`make chart-golden`.
"""

import ast
import difflib
import json
import re
import shutil
import subprocess
import sys

import jsonschema
import pytest
import yaml

from chart_render import CHART, EXAMPLES, KUBE_VERSION, ROOT, by_kind, docs_of, run_helm, template, workloads

KUBERNETES_VALIDATE = ROOT / ".venv" / "bin" / "kubernetes-validate"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
# Kinds from CRDs that kubernetes-validate has no schema for: checked by CRD_SCHEMAS.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def prometheus_operator_resource(spec: dict) -> dict:
    """JSON schema of a monitoring.coreos.com/v1 resource with the given spec schema."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "metadata": {"type": "object", "required": ["name", "labels"]},
            "spec": {"type": "object", "additionalProperties": False, **spec},
        },
    }


CRD_SCHEMAS = {
    "ServiceMonitor": prometheus_operator_resource(
        {
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "required": ["matchLabels"]},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port", "path"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string"},
                            "scrapeTimeout": {"type": "string"},
                        },
                    },
                },
            },
        }
    ),
    "PrometheusRule": prometheus_operator_resource(
        {
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "interval": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["expr"],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                        "record": {"type": "string"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)$"},
                                        "labels": {"type": "object"},
                                        "annotations": {"type": "object"},
                                    },
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                },
                            },
                        },
                    },
                }
            },
        }
    ),
}


def env_values(deployment) -> dict:
    """name -> plain value (None for one taken from a Secret or field) of the first container."""
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def secret_refs(deployment) -> dict:
    """name -> secretKeyRef of the first container's variables taken from Secrets."""
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}


# --- the chart -----------------------------------------------------------------------------


def test_examples_exist():
    assert {"minimal", "production", "dev-sandbox"} <= set(EXAMPLES)


@pytest.mark.parametrize("example", [None, *EXAMPLES])
def test_helm_lint_strict(helm, example):
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    if example:
        args += ["-f", str(CHART / "examples" / example / "values.yaml")]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("example", EXAMPLES)
def test_rendered_manifests_are_valid_kubernetes(rendered, example, tmp_path):
    text, documents = rendered[example]
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(text)
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "-k", KUBE_VERSION, str(manifest)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    unknown = set(re.findall(r"Couldn't find schema for kind (\w+)", result.stdout + result.stderr))
    assert unknown <= CRD_KINDS, f"kinds nobody validated: {unknown - CRD_KINDS}"
    passed = len(re.findall(r"^INFO .* passed for resource", result.stdout, re.M))
    crds = [d for d in documents if d["kind"] in CRD_KINDS]
    assert passed == len(documents) - len(crds), result.stdout
    for resource in crds:
        jsonschema.validate(resource, CRD_SCHEMAS[resource["kind"]])


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_container_is_hardened_and_bounded(rendered, example):
    for workload, pod in workloads(rendered[example][1]):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        containers = pod["containers"] + pod.get("initContainers", [])
        for container in containers:
            where = f"{name} container {container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
            requests, limits = container["resources"]["requests"], container["resources"]["limits"]
            assert requests.get("cpu") and requests.get("memory") and limits.get("memory"), where
            # /tmp and the logs count against ephemeral-storage: bounded, or a pod can fill the node
            assert requests.get("ephemeral-storage") and limits.get("ephemeral-storage"), where
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where
            if workload["kind"] == "Deployment":  # a run-to-completion Job has nothing to probe
                for probe in ("livenessProbe", "readinessProbe"):
                    assert {"httpGet", "grpc"} & set(container.get(probe, {})), f"{where}: no {probe}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_workloads_carry_standard_labels_and_otel_identity(rendered, example):
    for workload, pod in workloads(rendered[example][1]):
        if workload["kind"] == "Pod":  # helm test Pods: no process of the platform
            continue
        labels = workload["spec"]["template"]["metadata"]["labels"]
        for key in ("name", "instance", "component", "version", "part-of", "managed-by"):
            assert labels.get(f"app.kubernetes.io/{key}"), (workload["metadata"]["name"], key)
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert (
            env["OTEL_SERVICE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
            == "metadata.labels['app.kubernetes.io/component']"
        )
        assert "k8s.pod.name=$(K8S_POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
        # $(VAR) expansion only works for variables defined earlier in the list
        names = [e["name"] for e in pod["containers"][0]["env"]]
        assert names.index("K8S_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
        assert len(names) == len(set(names)), f"duplicate env in {workload['metadata']['name']}"
        for var in ("AMQP_URI", "MONGO_URI"):
            if var in env:  # connection strings only ever come from Secrets
                assert "secretKeyRef" in env[var]["valueFrom"], var


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_deployment_has_a_matching_service(rendered, example):
    documents = rendered[example][1]
    services = by_kind(documents, "Service")
    for name, deployment in by_kind(documents, "Deployment").items():
        service = services[name]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items(), name
        container_ports = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} == container_ports, name


def test_default_install_deploys_every_process_but_the_registry(rendered):
    documents = rendered["minimal"][1]
    deployments = by_kind(documents, "Deployment")
    components = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments.values()}
    assert components == {"ingest", "ingest-relay", "calc", "account", "account-grpc", "exchange-bridge"}
    assert not any(d["kind"] == "Secret" for d in documents), "the chart must not create Secrets"
    grpc = deployments["carbon-platform-account-grpc"]["spec"]["template"]["spec"]["containers"][0]
    # HTTP probes on the metrics port: the kubelet's gRPC probe cannot speak TLS
    assert grpc["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert grpc["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert grpc["command"] == ["python", "-m", "account.grpc_server"]
    ingest = deployments["carbon-platform-ingest"]["spec"]["template"]["spec"]["containers"][0]
    assert ingest["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert ingest["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ingest_secrets = {e["name"] for e in ingest["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert {"AMQP_URI", "MONGO_URI", "PSEUDONYM_KEY", "PLATFORM_SM2_PRIVATE_KEY", "CONTACT_SM4_KEY"} <= ingest_secrets
    assert set(by_kind(documents, "PodDisruptionBudget")) == set(deployments)
    assert not by_kind(documents, "HorizontalPodAutoscaler") and not by_kind(documents, "NetworkPolicy")


def test_topology_job_runs_as_a_hook_before_install_and_upgrade(rendered):
    jobs = by_kind(rendered["minimal"][1], "Job")
    job = jobs["carbon-platform-topology"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "carbon_common.topology", "declare"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert any(e["name"] == "AMQP_URI" for e in container["env"])


def test_production_example_uses_autoscaling_policies_and_pinned_images(rendered):
    documents = rendered["production"][1]
    deployments = by_kind(documents, "Deployment")
    hpas = by_kind(documents, "HorizontalPodAutoscaler")
    assert set(hpas) == {"carbon-platform-ingest", "carbon-platform-calc", "carbon-platform-account-grpc"}
    for name in hpas:  # the HPA owns the replica count
        assert "replicas" not in deployments[name]["spec"], name
    assert deployments["carbon-platform-account"]["spec"]["replicas"] == 3
    for name, deployment in deployments.items():
        assert re.search(r"@sha256:[0-9a-f]{64}$", deployment["spec"]["template"]["spec"]["containers"][0]["image"]), (
            name
        )
    # one per component, one for the topology Job (a hook) and one for the helm test Pods
    policies = by_kind(documents, "NetworkPolicy")
    assert set(policies) == set(deployments) | {"carbon-platform-topology", "carbon-platform-helm-test"}
    for name, policy in policies.items():  # egress restricted (examples/production lists it)
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["egress"], name
    assert policies["carbon-platform-topology"]["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    for task in ("carbon-platform-topology", "carbon-platform-helm-test"):  # they serve nothing
        assert "ingress" not in policies[task]["spec"], task
    assert set(by_kind(documents, "ServiceMonitor")) == set(deployments)
    assert by_kind(documents, "Ingress")["carbon-platform-ingest"]["spec"]["tls"]


def test_dev_example_points_the_bridge_at_the_registry_and_onboards_the_bank(rendered):
    documents = rendered["dev-sandbox"][1]
    deployments = by_kind(documents, "Deployment")
    registry = by_kind(documents, "Service")["carbon-platform-exchange-registry"]
    bridge_env = env_values(deployments["carbon-platform-exchange-bridge"])
    port = registry["spec"]["ports"][0]["port"]
    assert bridge_env["REGISTRY_URL"] == f"http://{registry['metadata']['name']}:{port}"
    registry_env = env_values(deployments["carbon-platform-exchange-registry"])
    assert "AMQP_URI" not in registry_env and "MONGO_URI" in registry_env  # its own database, no broker
    assert registry_env["REGISTRY_DB"] == "carbon_exchange_registry"
    assert {"REGISTRY_ADMIN_TOKEN", "REGISTRY_SM2_PRIVATE_KEY", "REGISTRY_SM2_PUBLIC_KEY"} <= set(registry_env)

    job = by_kind(documents, "Job")["carbon-platform-exchange-onboarding"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"][:3] == ["python", "-m", "exchange_bridge.cli.onboard"]
    assert pod["restartPolicy"] == "Never"
    env = {e["name"]: e for e in container["env"]}
    for name in ("REGISTRY_URL", "BRIDGE_PARTICIPANT", "BRIDGE_KEY_ID"):  # the bridge's own values
        assert env[name]["value"] == bridge_env[name], name
    bridge_secrets = secret_refs(deployments["carbon-platform-exchange-bridge"])
    registry_secrets = secret_refs(deployments["carbon-platform-exchange-registry"])
    assert env["BRIDGE_SM2_PUBLIC_KEY"]["valueFrom"]["secretKeyRef"] == bridge_secrets["BRIDGE_SM2_PUBLIC_KEY"]
    assert env["REGISTRY_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == registry_secrets["REGISTRY_ADMIN_TOKEN"]
    # least privilege: it registers the public key; the bank's private key stays with the bridge
    assert not {"BRIDGE_SM2_PRIVATE_KEY", "REGISTRY_SM2_PRIVATE_KEY", "AMQP_URI", "MONGO_URI"} & set(env)


def test_the_registry_and_its_onboarding_are_off_in_a_default_install(rendered):
    for example in ("minimal", "production"):
        documents = rendered[example][1]
        assert "carbon-platform-exchange-registry" not in by_kind(documents, "Deployment"), example
        assert "carbon-platform-exchange-onboarding" not in by_kind(documents, "Job"), example


def test_the_registry_catalogue_lists_calcs_methodologies():
    """The exchange-bridge image holds no calc files, so the chart lists the registry's catalogue
    (REGISTRY_METHODOLOGIES): every methodology calc can credit under must be in it, or the
    bridge's batches of that methodology are held (unknown_methodology)."""
    from exchange_bridge.registry import catalogue

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    listed = values["components"]["exchange-registry"]["env"]["REGISTRY_METHODOLOGIES"]
    calc = catalogue.from_directory(ROOT / "services" / "calc" / "src" / "calc" / "methodologies")
    assert calc, "no methodology found in services/calc"
    assert catalogue.from_text(listed) == calc, (
        "charts/carbon-platform/values.yaml components.exchange-registry.env.REGISTRY_METHODOLOGIES should be "
        + ",".join(f"{m}:{v}" for m, v in sorted(calc))
    )


def test_grafana_dashboard_ships_in_a_labelled_configmap(rendered):
    configmaps = by_kind(rendered["minimal"][1], "ConfigMap")
    dashboard_cm = configmaps["carbon-platform-dashboards"]
    assert dashboard_cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads(dashboard_cm["data"]["carbon-flow.json"])
    assert shipped == json.loads((CHART / "dashboards" / "carbon-flow.json").read_text())
    titles = {p["title"] for p in shipped["panels"] if p["type"] == "row"}
    assert titles == {"Traffic", "Errors", "Latency", "Saturation"}
    targets = [t for p in shipped["panels"] for t in p.get("targets", [])]
    assert targets and all(t["expr"] and t["datasource"]["uid"] == "${datasource}" for t in targets)
    ids = [p["id"] for p in shipped["panels"]]
    assert len(ids) == len(set(ids))


# --- the schema rejects what would deploy something broken ---------------------------------

BAD_VALUES = {
    "typo in a component name": ("components:\n  ingets:\n    replicas: 3\n", "ingets"),
    "unknown component key": ("components:\n  calc:\n    replica: 3\n", "/components/calc/replica"),
    "unknown top-level key": ("mongo:\n  uri: mongodb://mongo\n", "mongo"),
    "root user": ("default:\n  runAsUser: 0\n", "/default/runAsUser"),
    "negative replicas": ("components:\n  account:\n    replicas: -1\n", "/components/account/replicas"),
    "two probe handlers": (
        "components:\n  calc:\n    probes:\n      liveness:\n        grpc: {port: 8000}\n",
        "/components/calc/probes/liveness",
    ),
    "liveness probe removed": ("components:\n  calc:\n    probes:\n      liveness: null\n", "liveness"),
    "secret without key": ("amqp:\n  secret:\n    name: rabbit\n    key: null\n", "/amqp/secret"),
    "malformed digest": (
        "components:\n  ingest:\n    image:\n      digest: latest\n",
        "/components/ingest/image/digest",
    ),
    "ingress without hosts": ("ingress:\n  enabled: true\n", "/ingress/hosts"),
    "env with a bad name": ("components:\n  calc:\n    env:\n      bad-name: x\n", "/components/calc/env"),
    "string replicas": ("components:\n  calc:\n    replicas: two\n", "/components/calc/replicas"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_rejects_bad_values(helm, case, tmp_path):
    text, where = BAD_VALUES[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = template(helm, bad)
    assert result.returncode != 0, f"accepted: {case}"
    assert "don't meet the specifications of the schema" in result.stderr, result.stderr
    assert where in result.stderr, result.stderr


TEMPLATE_REFUSALS = {  # what the schema cannot express: the templates `fail` with a message
    "metrics port the component does not have": (
        "components:\n  calc:\n    metrics:\n      port: prometheus\n",
        "components.calc.metrics.port",
    ),
    "preStop sleep as long as the grace period": (
        "components:\n  ingest:\n    preStopSleepSeconds: 40\n",
        "components.ingest: preStopSleepSeconds (40) must be shorter",
    ),
}


@pytest.mark.parametrize("case", sorted(TEMPLATE_REFUSALS))
def test_template_refuses_values_the_schema_cannot_judge(helm, case, tmp_path):
    text, message = TEMPLATE_REFUSALS[case]
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = template(helm, bad)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_component_values_override_defaults_including_false_and_zero(helm, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(
        "default:\n  amqp: true\ncomponents:\n  calc:\n    amqp: false\n    replicas: 0\n"
        "    resources:\n      requests: {cpu: 7m}\n"
    )
    result = template(helm, values)
    assert result.returncode == 0, result.stderr
    calc = by_kind(docs_of(result.stdout), "Deployment")["carbon-platform-calc"]
    container = calc["spec"]["template"]["spec"]["containers"][0]
    assert calc["spec"]["replicas"] == 0
    assert "AMQP_URI" not in {e["name"] for e in container["env"]}
    # maps merge key by key: the default memory request survives a cpu-only override
    assert container["resources"]["requests"] == {"cpu": "7m", "memory": "192Mi", "ephemeral-storage": "64Mi"}


# --- compose, images, docs -----------------------------------------------------------------


def test_compose_file_is_generated_from_the_chart():
    """docker-compose.yml is what carbon_dev.compose writes from the chart's values."""
    from carbon_dev import compose

    committed, current = compose.COMPOSE_FILE.read_text(), compose.render()
    if committed != current:
        diff = "".join(
            difflib.unified_diff(committed.splitlines(True), current.splitlines(True), "committed", "generated")
        )
        pytest.fail(f"docker-compose.yml is stale: run `make compose` and commit it.\n{diff[:4000]}", pytrace=False)


def test_compose_file_is_valid():
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose not found: `make setup` installs Debian's docker-compose", pytrace=False)
    result = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(
        subprocess.run(
            [compose, "-f", "docker-compose.yml", "config"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    services = resolved["services"]
    assert services["mongodb"]["image"].startswith("mongo:7")
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13") and "management" in services["rabbitmq"]["image"]
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")
    ours = {name: s for name, s in services.items() if "build" in s}
    # the registry too (disabled in the chart), and the onboarding Job
    assert set(ours) == {"topology", "exchange-onboarding", *_chart_components()}
    jobs = {"topology", "exchange-onboarding"}
    for name, service in ours.items():
        assert (ROOT / service["build"]["dockerfile"]).is_file(), name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        if name not in jobs:
            assert service["healthcheck"]["test"], name
            assert "topology" in service.get("depends_on", {}), name
    assert services["exchange-onboarding"]["depends_on"]["exchange-registry"]["condition"] == "service_healthy"
    bridge = services["exchange-bridge"]
    assert bridge["depends_on"]["exchange-onboarding"]["condition"] == "service_completed_successfully"
    assert bridge["environment"]["REGISTRY_URL"] == "http://exchange-registry:8200"


def test_one_dockerfile_is_multistage_non_root_and_installs_the_pinned_set():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert stages == [("python:3.11-slim", "build"), ("python:3.11-slim", "runtime")], stages
    assert re.search(r"^ARG SERVICE$", text, re.M), "the service is a build arg"
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0")), user
    order = [
        text.index(s)
        for s in (
            "COPY requirements.in requirements.lock",
            "runtime_deps.py --prune",
            "./libs/carbon_common",
            "./libs/carbon_proto",
            "./services/${SERVICE}",
            "&& pip check",
        )
    ]
    assert order == sorted(order), "order: requirements.lock, prune, carbon_common, carbon_proto, service, pip check"
    assert "--no-deps" in text and "--from=build /opt/venv" in text
    assert not list(ROOT.glob("services/*/Dockerfile")), "per-service Dockerfiles are back: use deploy/docker"


def test_every_image_the_chart_names_is_a_buildable_service():
    """One image per services/<dir>; docker-compose builds the same ones (it is generated)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart_images = {c["image"]["name"] for c in values["components"].values()} | {values["topology"]["image"]["name"]}
    for image in chart_images:
        assert (ROOT / "services" / image / "pyproject.toml").is_file(), f"no services/{image} to build"


def test_build_context_keeps_what_the_dockerfile_copies():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!deploy/docker/runtime_deps.py" in ignored
    assert not {"requirements.in", "requirements.lock", "libs", "services"} & set(ignored)


def _shipped_third_party_modules():
    """Top-level modules imported by code that runs in the images: every package the Dockerfile
    installs (`pip install --no-deps … ./services/${SERVICE}`: each service)."""
    installed = re.search(r"pip install --no-deps .*", DOCKERFILE.read_text()).group(0).split()
    packages = [a.removeprefix("./").replace("${SERVICE}", "*") for a in installed if a.startswith("./")]
    sources = [p for package in packages for p in ROOT.glob(f"{package}/src/**/*.py")]
    ours = {p.name for package in packages for p in ROOT.glob(f"{package}/src/*")}
    modules = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules - ours - set(sys.stdlib_module_names)


def test_runtime_images_drop_dev_tools_but_keep_everything_the_code_imports():
    from importlib import metadata

    sys.path.insert(0, str(DOCKERFILE.parent))
    try:
        import runtime_deps
    finally:
        sys.path.pop(0)
    removed = set(runtime_deps.removable(ROOT / "requirements.in", ROOT / "requirements.lock"))
    assert set(runtime_deps.DEV_ONLY) <= removed
    locked = set(runtime_deps.names_in(ROOT / "requirements.lock"))
    kept = locked - removed
    assert {"nameko", "pymongo", "grpcio", "flask", "gunicorn", "setuptools"} <= kept
    providers = metadata.packages_distributions()
    missing = {}
    for module in _shipped_third_party_modules():
        dists = {runtime_deps.canonical(d) for d in providers.get(module, [])}
        assert dists, f"{module} is imported but installed by no distribution"
        if not dists & kept:
            missing[module] = sorted(dists)
    assert not missing, f"imported by shipped code but removed from the images: {missing}"


def test_values_reference_documents_every_key():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    doc = (ROOT / "docs" / "deploy.md").read_text()
    missing = []
    for key, value in values.items():
        paths = [key]
        if isinstance(value, dict) and key != "components":
            paths += [f"{key}.{sub}" for sub in value]
        if key == "components":
            paths += [f"components.{name}" for name in value]
        missing += [p for p in paths if f"`{p}`" not in doc]
    assert not missing, f"docs/deploy.md values reference lacks: {missing}"


# --- what `make run` and docker-compose take from the chart ----------------------------------


def _chart_components():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return {name: c for name, c in values["components"].items()}


@pytest.mark.parametrize("name", sorted(_chart_components()))
def test_listen_addresses_are_the_components_container_ports(name):
    """`make run` and docker-compose move a listen address 0.0.0.0:<container port> to their
    own port: an address the chart gives must be one of the component's ports."""
    component = _chart_components()[name]
    for var, value in component.get("env", {}).items():
        for port in re.findall(r"0\.0\.0\.0:(\d+)", str(value)):
            assert int(port) in component["ports"].values(), f"{name} {var}={value}: not a container port"
    assert "httpGet" in component["probes"]["readiness"], f"{name}: `make run` waits on an HTTP readiness probe"
