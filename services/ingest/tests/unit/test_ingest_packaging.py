"""The ingest package declares every third-party distribution its code imports."""

import ast
import re
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2]
OURS = {"ingest", "carbon_common", "carbon"}


def imported_modules() -> set[str]:
    """Dotted names of the third-party modules imported by src and gunicorn.conf.py."""
    modules = set()
    for path in [*(SERVICE / "src" / "ingest").rglob("*.py"), SERVICE / "gunicorn.conf.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:  # a name may be a submodule
                modules.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return {m for m in modules if m.split(".")[0] not in OURS | set(sys.stdlib_module_names)}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _distributions() -> dict:
    return metadata.packages_distributions()


@cache
def _files(dist: str) -> frozenset:
    return frozenset(str(f) for f in metadata.distribution(dist).files or [])


@cache
def providers_of(module: str) -> frozenset:
    """The distributions that install `module`; for a namespace package shared by many
    (opentelemetry), the ones holding this very module path."""
    top = module.split(".")[0]
    dists = set(_distributions().get(top, []))
    if len(dists) > 1 and "." in module:
        path = module.replace(".", "/")
        owning = {d for d in dists if {f"{path}/__init__.py", f"{path}.py"} & _files(d)}
        dists = owning or dists
    return frozenset(canonical(d) for d in dists)


def test_every_imported_third_party_package_is_declared():
    declared = {
        canonical(re.split(r"[<>=!~ ;\[]", dep, maxsplit=1)[0])
        for dep in tomllib.loads((SERVICE / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    modules = imported_modules()
    assert {"flask", "kombu", "opentelemetry", "werkzeug.exceptions", "pymongo"} <= modules  # the scan sees them
    assert providers_of("opentelemetry.trace") == {"opentelemetry-api"}
    undeclared = {module: sorted(providers_of(module)) for module in modules if not providers_of(module) & declared}
    assert not undeclared, f"imported by ingest but not in its pyproject: {undeclared}"
