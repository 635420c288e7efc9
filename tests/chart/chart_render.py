"""Rendering the chart for the offline tests: paths, `helm template`, and picking resources."""

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "carbon-platform"
EXAMPLES = sorted(p.parent.name for p in (CHART / "examples").glob("*/values.yaml"))
KUBE_VERSION = "1.33.0"
RELEASE, NAMESPACE = "carbon-platform", "carbon"


def find_helm() -> str | None:
    candidates = [ROOT / ".deps" / "bin" / "helm", shutil.which("helm")]
    found = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    return str(found) if found else None


def run_helm(helm, *args):
    return subprocess.run([helm, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def template(helm, *values_files, extra=(), release=RELEASE):
    args = ["template", release, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    for values in values_files:
        args += ["-f", str(values)]
    return run_helm(helm, *args, *extra)


def docs_of(text):
    return [d for d in yaml.safe_load_all(text) if d]


def workloads(documents):
    """(document, pod spec) of every Deployment, Job and (helm test) Pod."""
    return [
        (d, d["spec"] if d["kind"] == "Pod" else d["spec"]["template"]["spec"])
        for d in documents
        if d["kind"] in ("Deployment", "Job", "Pod")
    ]


def by_kind(documents, kind):
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}
