"""Golden renders and policy checks of the chart (offline, no cluster).

- Golden: every example and every tests/chart/golden case renders exactly as committed
  (golden.py; `make chart-golden` regenerates after a deliberate change).
- Policy: kube-score (built by `make setup` into .deps/bin) passes on every one of those
  renders and on the chart's default values, through `scripts/k8s-check.sh kube-score`, the
  one place that lists the checks deliberately ignored and why. The last test shows the check
  bites: a values file that drops a PodDisruptionBudget is refused.
"""

import difflib
import subprocess

import pytest
import yaml

from chart_render import CHART, ROOT, docs_of, template
from golden import GOLDEN, UPDATE_HINT, golden_render, golden_values, render, targets

KUBE_SCORE = ROOT / ".deps" / "bin" / "kube-score"
SCRIPT = ROOT / "scripts" / "k8s-check.sh"


def committed_name(path):
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("committed,values,release", targets(), ids=lambda v: getattr(v, "name", v))
def test_render_matches_the_committed_golden_file(helm, committed, values, release):
    assert committed.exists(), f"{committed_name(committed)} is missing: {UPDATE_HINT}"
    current = render(helm, values, release)
    old = committed.read_text()
    if current != old:
        diff = "".join(
            difflib.unified_diff(
                old.splitlines(True),
                current.splitlines(True),
                f"committed {committed_name(committed)}",
                "helm template now",
                n=2,
            )
        )
        pytest.fail(
            f"{committed_name(committed)} differs from the chart's render; {UPDATE_HINT}.\n"
            f"First lines of the diff:\n{diff[:4000]}",
            pytrace=False,
        )


def test_golden_cases_cover_what_no_example_does():
    cases = {case: yaml.safe_load(golden_values(case).read_text()) for case in GOLDEN}
    assert len(GOLDEN["edge-cases"]) == 53  # Helm's maximum: every name is truncated with a hash
    edge = cases["edge-cases"]
    assert edge["rabbitmq"]["queueType"] == "quorum" and edge["caBundle"]["secretName"]
    assert edge["components"]["exchange-registry"]["enabled"] is True
    tier = cases["grpc-tier"]
    assert tier["otel"]["protocol"] == "grpc" and tier["networkPolicy"]["egress"]
    rendered = docs_of(golden_render("grpc-tier").read_text())
    assert [d["metadata"]["name"] for d in rendered if d["kind"] == "Deployment"] == ["carbon-platform-account-grpc"]


def kube_score(manifest):
    if not KUBE_SCORE.is_file():
        pytest.fail(
            "kube-score not found in .deps/bin: run `make setup` (scripts/install-deps.sh "
            "builds it from the Go module proxy)",
            pytrace=False,
        )
    return subprocess.run(
        ["bash", str(SCRIPT), "kube-score", str(manifest)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.mark.parametrize(
    "committed", [None] + [t[0] for t in targets()], ids=lambda p: "default-values" if p is None else committed_name(p)
)
def test_kube_score_passes(helm, tmp_path, committed):
    if committed is None:  # the chart's own defaults, as `helm install` without -f
        result = template(helm)
        assert result.returncode == 0, result.stderr
        committed = tmp_path / "default.yaml"
        committed.write_text(result.stdout)
    result = kube_score(committed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kube-score: passed" in result.stdout, result.stdout


def test_kube_score_refuses_a_deployment_without_a_disruption_budget(helm, tmp_path):
    values = tmp_path / "no-pdb.yaml"
    values.write_text("components:\n  calc:\n    podDisruptionBudget:\n      enabled: false\n")
    result = template(helm, CHART / "values.yaml", values)
    assert result.returncode == 0, result.stderr
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(result.stdout)
    refused = kube_score(manifest)
    assert refused.returncode != 0, refused.stdout
    assert "carbon-platform-calc" in refused.stdout and "PodDisruptionBudget" in refused.stdout, refused.stdout
