"""Offline policy checks of the chart, in the spirit of kube-score and Polaris: what a bank's
platform team relies on to install, secure, upgrade and operate it (docs/deploy.md).

Names stay unique for any release name Helm allows; partners reach only the partner API;
liveness never depends on a dependency; the topology Job follows the chart's settings; no
credential goes where it is not used; certificates are mounted so they can rotate; pods drain
before they stop; `helm test` covers every component; every alert has a runbook entry; and
docs/deploy.md names only resources, Secrets and commands the chart really has.
"""

import re
import shlex

import pytest
import yaml

from chart_render import CHART, EXAMPLES, NAMESPACE, RELEASE, ROOT, by_kind, docs_of, template, workloads

DOCS = ROOT / "docs" / "deploy.md"
OPENAPI = ROOT / "services" / "ingest" / "src" / "ingest" / "openapi.yaml"
NAMEKO = {"calc", "account", "exchange-bridge"}


def render(helm, tmp_path, values: str = "", example: str | None = None, release: str = RELEASE):
    files = [CHART / "examples" / example / "values.yaml"] if example else []
    if values:
        extra = tmp_path / f"values-{len(list(tmp_path.iterdir()))}.yaml"
        extra.write_text(values)
        files.append(extra)
    result = template(helm, *files, release=release)
    assert result.returncode == 0, result.stderr
    return docs_of(result.stdout)


def refused(helm, tmp_path, values: str) -> str:
    bad = tmp_path / "bad.yaml"
    bad.write_text(values)
    result = template(helm, bad)
    assert result.returncode != 0, f"accepted:\n{values}"
    return result.stderr


def container(deployment) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env_of(c) -> dict:
    return {e["name"]: e for e in c.get("env", [])}


def component(documents, name, kind="Deployment"):
    return next(
        d for d in documents if d["kind"] == kind and d["metadata"]["labels"]["app.kubernetes.io/component"] == name
    )


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [38, 39, 40, 53])
def test_long_release_names_render_no_duplicate_resource_names(helm, tmp_path, length):
    """38 characters used to give account and account-grpc one name, 39 ingest and ingest-relay."""
    release = "shenzhen-bank-carbon-accounts-production-release-abcdefghij"[: length - 1] + "z"
    assert len(release) == length and "carbon-platform" not in release  # else the chart name is not appended
    documents = render(helm, tmp_path, "adminApi: {service: {enabled: true}}\n", example="production", release=release)
    keys = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    for kind, name in keys:
        assert len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), (kind, name)
    deployments = by_kind(documents, "Deployment")
    assert len(deployments) == 6
    components = {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in deployments.values()}
    assert components == {"ingest", "ingest-relay", "calc", "account", "account-grpc", "exchange-bridge"}
    # the same release renders the same names (upgrades keep their resources)
    again = render(helm, tmp_path, "adminApi: {service: {enabled: true}}\n", example="production", release=release)
    assert keys == [(d["kind"], d["metadata"]["name"]) for d in again]


def test_short_names_are_kept_as_they_were(rendered):
    names = set(by_kind(rendered["minimal"][1], "Deployment"))
    assert "carbon-platform-account-grpc" in names and "carbon-platform-ingest-relay" in names


# --- partners reach only the partner API ---------------------------------------------------


def covers(rule: dict, path: str) -> bool:
    prefix = rule["path"]
    if rule["pathType"] == "Exact":
        return path == prefix
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def partner_paths() -> list[str]:
    spec = yaml.safe_load(OPENAPI.read_text())
    return [
        re.sub(r"\{[^}]+\}", "x", p)
        for p, item in spec["paths"].items()
        if any("security" in op for op in item.values() if isinstance(op, dict)) and not p.startswith("/admin/")
    ]


def test_the_partner_ingress_routes_every_partner_path_and_nothing_else(rendered):
    ingress = by_kind(rendered["production"][1], "Ingress")["carbon-platform-ingest"]
    rules = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert rules and all(r["backend"]["service"]["name"] == "carbon-platform-ingest" for r in rules)
    assert {r["pathType"] for r in rules} <= {"Exact", "Prefix"}
    spec = yaml.safe_load(OPENAPI.read_text())
    for path in spec["paths"]:
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        routed = any(covers(r, concrete) for r in rules)
        assert routed == (concrete in partner_paths()), f"{path} routed={routed}"
    for path in ("/", "/admin", "/admin/v1/partners", "/metrics", "/openapi.yaml", "/healthz", "/readyz"):
        assert not any(covers(r, path) for r in rules), path
    assert len(partner_paths()) >= 5


def test_the_admin_api_has_its_own_internal_service_and_ingress(rendered):
    documents = rendered["production"][1]
    service = by_kind(documents, "Service")["carbon-platform-ingest-admin"]
    assert service["spec"]["type"] == "ClusterIP"
    ingest_pods = component(documents, "ingest")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= ingest_pods.items()
    admin = by_kind(documents, "Ingress")["carbon-platform-ingest-admin"]
    assert (
        admin["spec"]["ingressClassName"]
        != by_kind(documents, "Ingress")["carbon-platform-ingest"]["spec"]["ingressClassName"]
    )
    paths = [p for rule in admin["spec"]["rules"] for p in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/admin/v1", "Prefix", "carbon-platform-ingest-admin")
    ]
    assert "carbon-platform-ingest-admin" not in by_kind(rendered["minimal"][1], "Service")  # optional


@pytest.mark.parametrize(
    "path, path_type",
    [("/", "Prefix"), ("/admin/v1", "Prefix"), ("/metrics", "Exact"), ("/v1/records", "ImplementationSpecific")],
)
def test_schema_refuses_ingress_paths_outside_the_partner_api(helm, tmp_path, path, path_type):
    error = refused(
        helm,
        tmp_path,
        f"ingress:\n  enabled: true\n  hosts: [a.example]\n  paths:\n    - {{path: {path}, pathType: {path_type}}}\n",
    )
    assert "/ingress/paths/0" in error, error


# --- liveness is the process, readiness the dependencies -----------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_liveness_never_checks_what_readiness_checks(rendered, example):
    for name, deployment in by_kind(rendered[example][1], "Deployment").items():
        c = container(deployment)
        live, ready, startup = (
            c[k].get("httpGet", {}).get("path") for k in ("livenessProbe", "readinessProbe", "startupProbe")
        )
        if deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "exchange-registry":
            continue  # one probe endpoint (/health): the dev-only registry has nothing to tell apart
        assert live == "/healthz" and ready in ("/health", "/readyz"), (name, live, ready)
        assert startup == live, f"{name}: a startup probe on readiness would restart pods during an outage"


# --- the topology Job ------------------------------------------------------------------------


def test_topology_job_uses_the_charts_service_account_and_scheduling(rendered):
    documents = rendered["production"][1]
    job = by_kind(documents, "Job")["carbon-platform-topology"]
    pod = job["spec"]["template"]["spec"]
    hook_account = by_kind(documents, "ServiceAccount")[pod["serviceAccountName"]]
    assert pod["serviceAccountName"] != "default"
    annotations = hook_account["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == job["metadata"]["annotations"]["helm.sh/hook"]
    assert int(annotations["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert hook_account["automountServiceAccountToken"] is False and pod["automountServiceAccountToken"] is False
    values = yaml.safe_load((CHART / "examples" / "production" / "values.yaml").read_text())
    assert pod["priorityClassName"] == values["default"]["priorityClassName"]
    assert pod["affinity"] == values["default"]["affinity"]
    env = env_of(pod["containers"][0])
    assert env["CARBON_QUEUE_TYPE"]["value"] == "quorum"
    assert env["CARBON_UNROUTED_MAX_LENGTH"]["value"] == str(values["topology"]["unrouted"]["maxLength"])
    assert env["CARBON_UNROUTED_TTL_MS"]["value"] == str(values["topology"]["unrouted"]["messageTtlMs"])


def test_topology_job_runs_as_an_existing_service_account_when_the_chart_creates_none(helm, tmp_path):
    documents = render(
        helm,
        tmp_path,
        "serviceAccount: {create: false, name: carbon-workloads}\n"
        "topology: {tolerations: [{key: batch, operator: Exists}], "
        "nodeSelector: {pool: batch}}\n",
    )
    pod = by_kind(documents, "Job")["carbon-platform-topology"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "carbon-workloads" and not by_kind(documents, "ServiceAccount")
    assert pod["tolerations"] == [{"key": "batch", "operator": "Exists"}] and pod["nodeSelector"] == {"pool": "batch"}
    calc = container(by_kind(documents, "Deployment")["carbon-platform-calc"])
    assert calc  # the components keep their own (default) scheduling
    assert "nodeSelector" not in by_kind(documents, "Deployment")["carbon-platform-calc"]["spec"]["template"]["spec"]


def test_topology_job_ttl_is_what_the_docs_say(rendered):
    job = by_kind(rendered["minimal"][1], "Job")["carbon-platform-topology"]
    ttl = job["spec"]["ttlSecondsAfterFinished"]
    assert job["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert f"`topology.ttlSecondsAfterFinished` (default {ttl} s" in DOCS.read_text()


# --- credentials only where used; queue type everywhere AMQP is --------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_amqp_credentials_and_queue_type_go_only_to_amqp_processes(rendered, example):
    values = yaml.safe_load((CHART / "examples" / example / "values.yaml").read_text())
    queue_type = values.get("rabbitmq", {}).get("queueType", "classic")
    for workload, pod in workloads(rendered[example][1]):
        env = env_of(pod["containers"][0])
        name = workload["metadata"]["name"]
        no_broker = ("exchange-registry", "exchange-onboarding")
        if name.endswith(no_broker) or workload["kind"] == "Pod":
            assert "AMQP_URI" not in env, name
        if name.endswith("account-grpc") and workload["kind"] == "Deployment":  # the bridge's RPC
            assert env["AMQP_URI"]["valueFrom"]["secretKeyRef"] == values.get("amqp", {}).get(
                "secret", {"name": "carbon-rabbitmq", "key": "amqp-uri"}
            ), name
        if "AMQP_URI" in env:
            assert env["CARBON_QUEUE_TYPE"]["value"] == queue_type, name
        else:
            assert "CARBON_QUEUE_TYPE" not in env, name


# --- mounted certificates and files ----------------------------------------------------------


def mounts_of(pod) -> dict:
    """mountPath -> volume of the first container."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return {m["mountPath"]: volumes[m["name"]] for m in pod["containers"][0]["volumeMounts"]}


def file_source(pod, path: str):
    """The volume (and key) a file path of the container comes from, or None."""
    for mount_path, volume in mounts_of(pod).items():
        if path.startswith(mount_path.rstrip("/") + "/"):
            return volume, path[len(mount_path.rstrip("/")) + 1 :]
    return None


@pytest.mark.parametrize("example", EXAMPLES)
def test_no_mount_uses_sub_path_so_secret_updates_reach_running_pods(rendered, example):
    for workload, pod in workloads(rendered[example][1]):
        for c in pod["containers"]:
            assert all("subPath" not in m for m in c["volumeMounts"]), workload["metadata"]["name"]


def test_grpc_tls_client_ca_and_callers_come_from_the_named_secrets(rendered):
    documents = rendered["production"][1]
    pod = component(documents, "account-grpc")["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    expected = {
        "GRPC_TLS_CERT_FILE": ("carbon-account-grpc-tls", "tls.crt"),
        "GRPC_TLS_KEY_FILE": ("carbon-account-grpc-tls", "tls.key"),
        "GRPC_TLS_CLIENT_CA_FILE": ("bank-systems-client-ca", "ca.crt"),
        "GRPC_CALLERS_FILE": ("carbon-account-grpc-callers", "callers.json"),
    }
    for var, (secret, key) in expected.items():
        volume, relative = file_source(pod, env[var]["value"])
        assert volume["secret"]["secretName"] == secret and relative == key, var
        assert volume["secret"]["defaultMode"] & 0o040, "readable by the pod's group (fsGroup)"
    assert "GRPC_ALLOW_INSECURE" not in env
    for name, deployment in by_kind(documents, "Deployment").items():  # only the gRPC server gets them
        if not name.endswith("account-grpc"):
            assert not {v for v in env_of(container(deployment)) if v.startswith("GRPC_TLS")}, name


def test_grpc_without_tls_or_callers_needs_allow_insecure(helm, tmp_path, rendered):
    for values in (
        "grpc: {tls: {secretName: ''}}\n",
        "grpc: {callers: {secretName: ''}}\n",
        "grpc: {tls: {secretName: '', clientCaSecretName: ca}, allowInsecure: true}\n",
    ):
        assert "/grpc" in refused(helm, tmp_path, values)
    env = env_of(container(component(rendered["dev-sandbox"][1], "account-grpc")))
    assert env["GRPC_ALLOW_INSECURE"]["value"] == "true"
    assert not {"GRPC_TLS_CERT_FILE", "GRPC_CALLERS_FILE"} & set(env)


def test_ca_bundle_is_mounted_and_trusted_by_every_process(rendered, helm, tmp_path):
    for workload, pod in workloads(rendered["production"][1]):
        if workload["kind"] == "Pod":
            continue
        env = env_of(pod["containers"][0])
        name = workload["metadata"]["name"]
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "OTEL_EXPORTER_OTLP_CERTIFICATE"):
            volume, key = file_source(pod, env[var]["value"])
            assert volume["configMap"]["name"] == "bank-ca-bundle" and key == "ca-bundle.pem", (name, var)
    assert "/caBundle" in refused(helm, tmp_path, "caBundle: {secretName: a, configMapName: b}\n")
    plain = env_of(container(component(rendered["minimal"][1], "calc")))
    assert "SSL_CERT_FILE" not in plain


def test_extra_volumes_reach_every_pod_and_component_volumes_only_theirs(helm, tmp_path):
    documents = render(
        helm,
        tmp_path,
        """
extraVolumes: [{name: mongo-client, secret: {secretName: mongo-client-cert}}]
extraVolumeMounts: [{name: mongo-client, mountPath: /etc/carbon/mongo-client, readOnly: true}]
components:
  exchange-bridge:
    extraVolumes: [{name: exchange-client, secret: {secretName: exchange-client-cert}}]
    extraVolumeMounts: [{name: exchange-client, mountPath: /etc/carbon/exchange-client, readOnly: true}]
""",
    )
    for workload, pod in workloads(documents):
        if workload["kind"] == "Pod":
            continue
        mounts = mounts_of(pod)
        name = workload["metadata"]["name"]
        assert mounts["/etc/carbon/mongo-client"]["secret"]["secretName"] == "mongo-client-cert", name
        assert ("/etc/carbon/exchange-client" in mounts) == name.endswith("exchange-bridge"), name


# --- secretEnv null, headless Service, preStop ------------------------------------------------


def test_secret_env_null_drops_an_inherited_entry(helm, tmp_path):
    documents = render(
        helm,
        tmp_path,
        """
default:
  secretEnv:
    SHARED_TOKEN: {name: shared, key: token}
components:
  calc:
    secretEnv:
      SHARED_TOKEN: null
  ingest:
    secretEnv:
      ADMIN_TOKEN: null
  account:
    secretEnv: null
""",
    )
    deployments = by_kind(documents, "Deployment")
    assert "SHARED_TOKEN" not in env_of(container(deployments["carbon-platform-calc"]))
    assert "SHARED_TOKEN" in env_of(container(deployments["carbon-platform-exchange-bridge"]))
    ingest = env_of(container(deployments["carbon-platform-ingest"]))
    assert "ADMIN_TOKEN" not in ingest and "PSEUDONYM_KEY" in ingest


def test_a_headless_service_can_be_added_for_grpc_client_side_balancing(rendered):
    services = by_kind(rendered["production"][1], "Service")
    headless, normal = services["carbon-platform-account-grpc-headless"], services["carbon-platform-account-grpc"]
    assert headless["spec"]["clusterIP"] == "None" and "clusterIP" not in normal["spec"]
    assert headless["spec"]["selector"] == normal["spec"]["selector"]
    assert headless["spec"]["ports"] == normal["spec"]["ports"]
    assert not [n for n in by_kind(rendered["minimal"][1], "Service") if n.endswith("-headless")]


@pytest.mark.parametrize("example", EXAMPLES)
def test_client_facing_pods_drain_before_they_stop(rendered, example):
    for name, deployment in by_kind(rendered[example][1], "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        hook = pod["containers"][0].get("lifecycle", {}).get("preStop")
        if name.endswith(("-ingest", "-account-grpc")):
            assert hook and hook["exec"]["command"][0] == "sleep", name
        if hook:
            assert int(hook["exec"]["command"][1]) < pod["terminationGracePeriodSeconds"], name


# --- OpenTelemetry -------------------------------------------------------------------------


def test_otel_grpc_is_refused_while_eventlet_components_run(helm, tmp_path):
    error = refused(helm, tmp_path, "otel: {protocol: grpc}\n")
    assert all(f"/components/{n}/enabled" in error for n in NAMEKO), error
    assert "/otel/protocol" in refused(helm, tmp_path, "otel: {protocol: http/json}\n")
    documents = render(
        helm,
        tmp_path,
        "otel: {protocol: grpc, endpoint: 'http://collector:4317', "
        "sampler: parentbased_traceidratio, samplerArg: '0.25'}\n"
        "components: {calc: {enabled: false}, account: {enabled: false}, "
        "exchange-bridge: {enabled: false}}\n",
    )
    env = env_of(container(component(documents, "ingest")))
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "grpc"
    assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.25"


# --- helm test ---------------------------------------------------------------------------------


def test_helm_test_pods_call_the_probe_endpoints_of_every_component(rendered):
    documents = rendered["minimal"][1]
    pods = {p["metadata"]["name"]: p for p in documents if p["kind"] == "Pod"}
    services = by_kind(documents, "Service")
    deployments = by_kind(documents, "Deployment")
    assert len(pods) == len(deployments)
    for name, deployment in deployments.items():
        pod = pods[name.replace(RELEASE + "-", RELEASE + "-test-", 1)]
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        labels = pod["metadata"]["labels"]
        assert not any(s["spec"]["selector"].items() <= labels.items() for s in services.values()), (
            "a Service would route traffic to a test Pod"
        )
        c = container(deployment)
        port = {p["name"]: p["containerPort"] for p in c["ports"]}
        expected = [
            f"http://{name}:{port[c[k]['httpGet']['port']]}{c[k]['httpGet']['path']}"
            for k in ("livenessProbe", "readinessProbe")
        ]
        assert env_of(pod["spec"]["containers"][0])["TEST_URLS"]["value"].split() == expected
        assert pod["spec"]["restartPolicy"] == "Never"


def test_helm_test_signed_request_uses_the_partner_sdk_and_a_secret_key(rendered, helm, tmp_path):
    pod = next(
        p
        for p in rendered["production"][1]
        if p["kind"] == "Pod" and p["metadata"]["name"].endswith("test-signed-request")
    )
    c = pod["spec"]["containers"][0]
    env = env_of(c)
    assert env["INGEST_URL"]["value"] == "http://carbon-platform-ingest:8080"
    assert env["PARTNER_SM2_PRIVATE_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "carbon-helm-test-partner",
        "key": "sm2-private-key",
    }
    assert "from ingest.sdk.__main__ import main" in c["command"][-1] and c["image"].split("/")[-1].startswith("ingest")
    assert "/tests/signedRequest" in refused(helm, tmp_path, "tests: {signedRequest: {enabled: true}}\n")


# --- alerts and dashboard ------------------------------------------------------------------


def anchors(markdown: str) -> set[str]:
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def test_every_alert_links_to_its_runbook_entry(rendered):
    rule = by_kind(rendered["production"][1], "PrometheusRule")["carbon-platform"]
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "CarbonUnroutedQueueFilling",
        "CarbonDeadLetters",
        "CarbonQueueBacklog",
        "CarbonIngestRelayStuck",
    }
    docs = DOCS.read_text()
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("docs/deploy.md") and url.split("#")[1] in anchors(docs), url
        assert f'namespace="{NAMESPACE}"' in alert["expr"] or "absent(" in alert["expr"], alert
    unrouted = next(a for a in alerts if a["alert"] == "CarbonUnroutedQueueFilling")
    assert unrouted["expr"].endswith("> 400000")  # 0.8 of the production example's maxLength 500000


def test_exchange_reconciliation_alerts(rendered, helm, tmp_path):
    """The bridge's reconciliation of the registry against the ledger: differences for 5 min,
    or no run for 3 of the bridge's intervals (BRIDGE_RECONCILE_SECONDS), warn."""
    rule = by_kind(rendered["production"][1], "PrometheusRule")["carbon-platform"]
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r}
    differences = alerts["CarbonExchangeReconciliationDifferences"]
    assert differences["expr"].startswith("max by (check) (carbon_exchange_reconciliation_differences{")
    assert differences["expr"].endswith("> 0") and differences["for"] == "5m"
    assert differences["labels"]["severity"] == "warning"
    assert differences["annotations"]["summary"] == "exchange registry and ledger disagree"
    stale = alerts["CarbonExchangeReconciliationStale"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    interval = int(values["components"]["exchange-bridge"]["env"]["BRIDGE_RECONCILE_SECONDS"])
    assert "carbon_exchange_reconciliation_last_run_timestamp_seconds{" in stale["expr"]
    assert stale["expr"].startswith("time() - max(") and stale["expr"].endswith(f"> {3 * interval}")
    assert stale["labels"]["severity"] == "warning"
    documents = render(
        helm,
        tmp_path,
        "prometheusRule: {enabled: true}\ncomponents: {exchange-bridge: {env: {BRIDGE_RECONCILE_SECONDS: '600'}}}\n",
    )
    stale = next(
        r
        for d in documents
        if d["kind"] == "PrometheusRule"
        for g in d["spec"]["groups"]
        for r in g["rules"]
        if r.get("alert") == "CarbonExchangeReconciliationStale"
    )
    assert stale["expr"].endswith("> 1800")
    without_bridge = render(
        helm, tmp_path, "prometheusRule: {enabled: true}\ncomponents: {exchange-bridge: {enabled: false}}\n"
    )
    names = {
        r.get("alert")
        for d in without_bridge
        if d["kind"] == "PrometheusRule"
        for g in d["spec"]["groups"]
        for r in g["rules"]
    }
    assert not {a for a in names if a and a.startswith("CarbonExchange")}


def test_dashboard_shows_carbon_unrouted(rendered):
    import json

    dashboard = json.loads(
        by_kind(rendered["minimal"][1], "ConfigMap")["carbon-platform-dashboards"]["data"]["carbon-flow.json"]
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert any('kind="unrouted"' in e for e in exprs)
    assert not any('kind!="dlq"' in e for e in exprs), "the backlog panel would mix unrouted events in"


# --- docs/deploy.md agrees with the chart ---------------------------------------------------


def helm_commands(path) -> list[str]:
    """`helm template`/`helm lint` command lines (in a Markdown file: inside code blocks only)."""
    text = path.read_text()
    if path.suffix == ".md":
        text = "\n".join(re.findall(r"```\w*\n(.*?)```", text, re.S))
    joined = text.replace("\\\n", " ")
    return [
        line.strip()
        for line in joined.splitlines()
        if re.search(r"\bhelm (template|lint)\b.*charts/carbon-platform", line)
    ]


def test_every_documented_render_command_names_the_kube_version():
    sources = [
        DOCS,
        CHART / "README.md",
        *(CHART / "examples").glob("*/values.yaml"),
        ROOT / "tests" / "chart" / "test_chart.py",
    ]
    commands = [(s.name, c) for s in sources for c in helm_commands(s)]
    assert commands
    for source, command in commands:
        assert "--kube-version" in command, f"{source}: {command}"


def test_resources_named_in_the_docs_exist(helm, tmp_path, rendered):
    documents = rendered["production"][1] + rendered["minimal"][1]
    names = {(d["kind"], d["metadata"]["name"]) for d in documents}
    kinds = {"deploy": "Deployment", "deployment": "Deployment", "job": "Job", "svc": "Service"}
    text = DOCS.read_text()
    mentioned = set(re.findall(r"\b(deploy|deployment|job|svc)/(carbon-platform[-a-z0-9]*)", text))
    assert len(mentioned) >= 8
    for short, name in mentioned:
        assert (kinds[short], name) in names, f"docs/deploy.md names {short}/{name}, the chart has no such resource"


def test_every_secret_the_chart_references_is_in_the_docs(rendered):
    text = DOCS.read_text().replace("\\\n", " ")
    created = set(re.findall(r"kubectl -n \$NS create (?:secret (?:generic|tls)|configmap) ([-a-z0-9.]+)", text))
    for example in ("minimal", "production"):
        for workload, pod in workloads(rendered[example][1]):
            refs = {
                e["valueFrom"]["secretKeyRef"]["name"]
                for c in pod["containers"]
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            refs |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
            refs |= {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
            if example == "minimal":
                refs -= {"rabbitmq-carbon", "mongodb-carbon"}  # the example renames these two
            assert refs <= created, (workload["metadata"]["name"], refs - created)


def test_backup_section_names_every_service_database():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    databases = {
        c["env"]["MONGO_DATABASE"] for c in values["components"].values() if "MONGO_DATABASE" in c.get("env", {})
    }
    section = DOCS.read_text().split("## Back up and restore")[1].split("\n## ")[0]
    assert databases == {"carbon_ingest", "carbon_calc", "carbon_account", "carbon_exchange_bridge"}
    for database in databases:
        assert f"`{database}`" in section, database
    for word in ("mongodump", "mongorestore", "export_definitions", "transient"):
        assert word in section, word


def test_documented_commands_parse():
    """Shell snippets in docs/deploy.md are at least well-formed (quotes, continuations)."""
    text = DOCS.read_text()
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                shlex.split(command, comments=True)
