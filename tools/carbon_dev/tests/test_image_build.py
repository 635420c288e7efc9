"""An image build of each service, simulated the way deploy/docker/Dockerfile does it, and what
it must not contain: development tooling (devstack, the pytest plugin and helpers, stress and
demo drivers, this carbon_dev package) or another service's package.

The packages installed are read from the Dockerfile's `pip install --no-deps …` line; their
directories are copied without what .dockerignore keeps out (tests, caches, build output), built
into wheels with the pinned build backend (setuptools from requirements.lock) and installed with
--no-deps into a clean virtualenv per service, `python -m venv --without-pip`: nothing of the
development venv is in the tree that is checked. No server, no network (~10 s).
"""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from carbon_dev.processes import ROOT

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
SERVICES = sorted(p.parent.name for p in ROOT.glob("services/*/pyproject.toml"))
DEV_MODULES = {"devstack", "testing", "stress", "demo"}
# Where each dev module that used to ship now lives (issue 12): carbon_dev, which no image installs.
MOVED = {
    "carbon_common/devstack.py": "carbon_dev/devstack.py",
    "carbon_common/testing.py": "carbon_dev/testing.py",
    "carbon_common/gm/testing.py": "carbon_dev/gm_testing.py",
    "calc/testing.py": "carbon_dev/calc_fixtures.py",
    "account/stress.py": "carbon_dev/ledger_stress.py",
    "exchange_bridge/demo.py": "carbon_dev/bridge_demo.py",
    "ingest/demo.py": "carbon_dev/ingest_demo.py",
}


def dockerfile_packages() -> list[str]:
    """The directories the image's `pip install --no-deps` installs (${SERVICE}: one service)."""
    line = re.search(r"pip install --no-deps .*", DOCKERFILE.read_text()).group(0)
    return [arg.removeprefix("./") for arg in line.split() if arg.startswith("./")]


def project_name(package_dir: Path) -> str:
    return re.search(r'^name = "(.+)"', (package_dir / "pyproject.toml").read_text(), re.M).group(1)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """{service: site-packages of its simulated image}."""
    work = tmp_path_factory.mktemp("image")
    packages = dockerfile_packages()
    assert packages and any("${SERVICE}" in p for p in packages), f"Dockerfile installs {packages}?"
    dirs = sorted({p.replace("${SERVICE}", service) for p in packages for service in SERVICES})
    ignore = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    copies = {d: shutil.copytree(ROOT / d, work / "context" / d, ignore=ignore) for d in dirs}
    wheels = work / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(wheels),
            *map(str, copies.values()),
        ],
        check=True,
    )
    wheel_of = {}
    for d, copy in copies.items():
        stem = re.sub(r"[-_.]+", "_", project_name(copy))
        wheel_of[d] = next(wheels.glob(f"{stem}-*.whl"))
    built = {}
    for service in SERVICES:
        venv = work / f"venv-{service}"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        chosen = [wheel_of[p.replace("${SERVICE}", service)] for p in packages]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv / "bin" / "python"),
                "install",
                "-q",
                "--no-deps",
                "--no-index",
                *map(str, chosen),
            ],
            check=True,
        )
        built[service] = next(venv.glob("lib/python*/site-packages"))
    return built


def python_files(site: Path) -> list[str]:
    return sorted(
        str(p.relative_to(site))
        for p in site.rglob("*.py")
        if not p.relative_to(site).parts[0].startswith(("_distutils", "__editable__"))
    )


def dev_modules(site: Path) -> set[str]:
    files = python_files(site)
    return (
        {f for f in files if Path(f).stem in DEV_MODULES}
        | {f for f in files if f.split("/")[0] == "carbon_dev"}
        | {d.name for d in site.iterdir() if d.name.startswith("carbon_dev")}
    )


@pytest.mark.parametrize("service", SERVICES)
def test_image_holds_the_service_and_the_shared_libraries(service, images):
    top = {p.name for p in images[service].iterdir()}
    package = next(
        p.name
        for p in (ROOT / "services" / service / "src").iterdir()
        if p.is_dir() and not p.name.endswith(".egg-info")
    )
    assert {package, "carbon_common", "carbon"} <= top, top
    assert f"{package}/__init__.py" in python_files(images[service])


@pytest.mark.parametrize("service", SERVICES)
def test_image_ships_no_dev_tooling(service, images):
    found = dev_modules(images[service])
    assert not found, f"development tooling in the {service} image: {sorted(found)}"
    assert not set(MOVED) & set(python_files(images[service]))


def test_no_image_ships_any_dev_module(images):
    assert not set().union(*(dev_modules(site) for site in images.values()))


def test_the_moved_dev_modules_live_in_the_dev_package():
    for old, new in MOVED.items():
        assert not list(ROOT.glob(f"*/*/src/{old}")), old
        assert (ROOT / "tools" / "carbon_dev" / "src" / new).is_file(), new


@pytest.mark.parametrize("service", SERVICES)
def test_image_code_imports_no_other_service_nor_dev_tooling(service, images):
    """A service package imports only itself, the shared libraries and third-party packages."""
    site = images[service]
    services = {
        p.name
        for s in SERVICES
        for p in (ROOT / "services" / s / "src").iterdir()
        if p.is_dir() and not p.name.endswith(".egg-info") and p.name != "__pycache__"
    }
    forbidden = {"carbon_dev"} | {s for s in services if not (site / s).is_dir()}
    offenders = []
    for relative in python_files(site):
        for node in ast.walk(ast.parse((site / relative).read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            offenders += [f"{relative}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert not offenders, offenders
