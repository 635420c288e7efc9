"""What an image does not need at run time: computed from the pinned set, never listed by hand.

requirements.lock stays the one pinned set (development and run time). An image installs all
of it, then removes what only development tools pull in. The rule, in full:

    keep   = every root of requirements.in except DEV_ONLY, plus everything those roots
             require, transitively (read from the installed packages' metadata; extras only
             when requested; environment markers evaluated here, i.e. in the image)
    remove = every name in requirements.lock that is not in keep

So a new runtime dependency needs nothing here (it is in requirements.in, hence kept); a new
development tool is added to DEV_ONLY. `pip check` after the removal proves that nothing kept
depends on anything removed; tests/chart checks that every third-party module imported by
the shipped code is kept.

    python deploy/docker/runtime_deps.py             # print the names it would remove
    python deploy/docker/runtime_deps.py --prune     # pip uninstall them (image build only)
"""

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
# Direct dependencies in requirements.in that only development needs, and what needs them.
DEV_ONLY = {
    "grpcio-tools": "make proto (code generation)",
    "supervisor": "make run (the local process supervisor)",
    "pytest": "tests",
    "pytest-timeout": "tests",
    "hypothesis": "property tests",
    "schemathesis": "API contract tests",
    "kubernetes-validate": "make chart-lint",
    "ruff": "make lint",
    "matplotlib": "make bench (the load chart)",
}
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def names_in(path: Path) -> list[str]:
    """Project names of a requirements file (comments, options and blank lines skipped)."""
    found = (NAME.match(line.split("#", 1)[0]) for line in path.read_text().splitlines())
    return [canonical(m.group(1)) for m in found if m]


def runtime_closure(roots: list[str]) -> set[str]:
    """The roots and everything they require, transitively, as installed here."""
    keep, queue = set(), [(root, frozenset()) for root in roots]
    seen = set()
    while queue:
        name, extras = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        keep.add(name)
        for spec in metadata.distribution(name).requires or []:
            requirement = Requirement(spec)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": extra}) for extra in {"", *extras}):
                continue
            queue.append((canonical(requirement.name), frozenset(requirement.extras)))
    return keep


def removable(requirements_in: Path, lock: Path) -> list[str]:
    roots = names_in(requirements_in)
    unknown = set(DEV_ONLY) - set(roots)
    if unknown:  # a renamed or dropped tool would silently stay in every image
        raise SystemExit(f"DEV_ONLY names not in {requirements_in.name}: {sorted(unknown)}")
    keep = runtime_closure([r for r in roots if r not in DEV_ONLY])
    return sorted(name for name in names_in(lock) if name not in keep)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requirements-in", type=Path, default=ROOT / "requirements.in")
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--prune", action="store_true", help="pip uninstall the removable packages")
    args = parser.parse_args(argv)
    names = removable(args.requirements_in, args.lock)
    print("\n".join(names))
    if args.prune and names:
        return subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *names]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
