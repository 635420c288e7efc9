"""scripts/install-deps.sh installs what the goals need and nothing more: `make run` builds
FerretDB and Jaeger, `make test` adds helm and kube-score, only `make k8s-check` builds kind.
`--plan` says what it would do without doing it; `make -n` shows what each goal passes."""

import os
import re
import subprocess

import pytest

from carbon_dev.processes import ROOT

SCRIPT = ROOT / "scripts" / "install-deps.sh"


def plan(*sets: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), "--plan", *sets], capture_output=True, text=True, cwd=ROOT, timeout=60, env=env
    )


@pytest.mark.parametrize(
    "sets, tools",
    [
        (["python"], "none"),
        (["run"], "ferretdb jaeger"),
        (["chart"], "helm kube-score"),
        (["test"], "ferretdb jaeger helm kube-score"),
        (["run", "helm"], "ferretdb jaeger helm"),
        (["k8s"], "helm kube-score kind"),
        (["all"], "ferretdb jaeger helm kube-score kind"),
        ([], "ferretdb jaeger helm kube-score kind"),
    ],
)
def test_each_set_names_only_the_tools_it_needs(sets, tools):
    result = plan(*sets)
    assert result.returncode == 0, result.stderr
    assert f"tools: {tools}\n" in result.stdout, result.stdout
    for line in result.stdout.splitlines():  # what is missing is built, with its cold build time
        if line.startswith("build: ") and line != "build: nothing":
            assert re.match(r"build: [a-z-]+ v[\d.]+\S* \(~[\d.]+ (s|min) on a cold 2-core machine\)$", line), line


def test_on_a_fresh_machine_make_run_builds_ferretdb_and_jaeger_only(tmp_path):
    result = plan("run", env={**os.environ, "CARBON_DEPS_BIN": str(tmp_path)})
    built = [line for line in result.stdout.splitlines() if line.startswith("build: ")]
    assert [line.split()[1] for line in built] == ["ferretdb", "jaeger"], result.stdout
    for line in built:
        assert re.match(r"build: [a-z-]+ v[\d.]+\S* \(~[\d.]+ (s|min) on a cold 2-core machine\)$", line), line
    assert not list(tmp_path.iterdir()), "--plan changed nothing"


def test_an_unknown_set_is_refused():
    result = plan("everything")
    assert result.returncode == 2 and "usage:" in result.stderr


@pytest.mark.parametrize(
    "goals, passed",
    [
        (["run"], "run"),
        (["test"], "test"),
        (["test-unit"], "chart"),
        (["test-int"], "helm run"),
        (["chart-lint"], "chart"),
        (["k8s-check"], "k8s"),
        (["lint"], "python"),
        (["setup"], "all"),
        (["lint", "run"], "run"),
    ],
)
def test_make_passes_what_its_goals_need_once(goals, passed):
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *goals], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    calls = [line for line in result.stdout.splitlines() if "install-deps.sh" in line]
    assert calls == [f"bash scripts/install-deps.sh {passed}"], result.stdout


def test_make_test_installs_chromium_for_the_certificate_page_and_nothing_else_does(tmp_path):
    """tests/certificate drives the verifier's page in headless Chromium (skipped without it):
    the `test` and `all` sets ask Debian for `chromium`; `run` and `chart` do not."""
    path = tmp_path / "bin"  # this machine's PATH, without any Chromium
    path.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = os.path.join(directory, name)
            if "chrom" not in name and not (path / name).exists() and os.access(target, os.X_OK):
                (path / name).symlink_to(target)
    env = {**os.environ, "PATH": str(path)}
    for sets, wanted in ((["test"], True), (["all"], True), (["run"], False), (["chart"], False)):
        result = plan(*sets, env=env)
        assert result.returncode == 0, result.stderr
        apt = next(line for line in result.stdout.splitlines() if line.startswith("apt: "))
        assert ("chromium" in apt.split()) == wanted, (sets, apt)
