"""Every repository path, `make` target and `python -m` module named in the docs exists.

A doc that names a file that moved is a bug the reader finds first; this keeps the docs true as
rooms move. Checked: README.md, docs/**/*.md, and every README.md under services/, libs/,
tools/ and charts/. What counts as a reference (kept strict so prose is not mistaken for one):
- a code span or markdown link target that starts with a top-level folder of this repository
  (`services/…`, `docs/…`) or is a top-level file (`Makefile`), or a relative markdown link;
- `make <target>` inside a code span or fenced block;
- `python -m <module>` inside a code span or fenced block, for our own packages.
Placeholders (`<name>`, `…`, `$VAR`, `{x}`) are not references; globs must match something.
"""

import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
OWN_PACKAGES = ("ingest", "calc", "account", "exchange_bridge", "carbon_common", "carbon_dev", "carbon")
PLACEHOLDER = re.compile(r"[<>…$*{}]|\.\.\.")

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
MAKE = re.compile(r"(?<![\w-])make ([a-z][a-z0-9-]*)")
PYTHON_M = re.compile(r"python3? -m ([A-Za-z_][\w.]*)")


def doc_files(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    docs = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    for top in ("services", "libs", "tools", "charts"):
        docs += sorted(p for p in (root / top).rglob("README.md") if "node_modules" not in p.parts)
    return [d for d in docs if d.is_file()]


def make_targets(root: pathlib.Path = ROOT) -> set[str]:
    text = (root / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))


def module_exists(module: str, root: pathlib.Path = ROOT) -> bool:
    parts = module.split(".")
    for src in [*root.glob("services/*/src"), *root.glob("libs/*/src"), *root.glob("tools/*/src")]:
        base = src.joinpath(*parts)
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file() or (base / "__main__.py").is_file():
            return True
    return False


def _path_problem(doc: pathlib.Path, ref: str, root: pathlib.Path, top: list[str], link: bool) -> str | None:
    ref = ref.strip().rstrip(".,:;")
    if not ref or PLACEHOLDER.search(ref) or "://" in ref or ref.startswith(("mailto:", "#")):
        return None
    token = ref.split()[0]
    first = token.split("/")[0]
    if first in top and ("/" in token or (root / token).is_file()):
        # a service README may name its own files relative to itself (`tests/unit/…`)
        candidates = [root / token.split(":")[0], doc.parent / token.split(":")[0]]
    elif link:
        candidates = [doc.parent / token]
    else:
        return None
    if any(c.exists() for c in candidates):
        return None
    return f"{doc.relative_to(root)}: {token} does not exist"


def problems(root: pathlib.Path = ROOT, docs: list[pathlib.Path] | None = None) -> list[str]:
    top = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    targets = make_targets(root)
    found = []
    for doc in docs if docs is not None else doc_files(root):
        text = doc.read_text()
        code = [m.group(1) for m in CODE_SPAN.finditer(FENCE.sub("", text))]
        fenced = [block for block in FENCE.findall(text)]
        for span in code:
            found.append(_path_problem(doc, span, root, top, link=False))
        for target in LINK.findall(text):
            found.append(_path_problem(doc, target, root, top, link=True))
        for chunk in code + fenced:
            for target in MAKE.findall(chunk):
                if target not in targets:
                    found.append(f"{doc.relative_to(root)}: make {target} is not a Makefile target")
            for module in PYTHON_M.findall(chunk):
                if module.split(".")[0] in OWN_PACKAGES and not module_exists(module, root):
                    found.append(f"{doc.relative_to(root)}: python -m {module} is not a module of ours")
    return sorted({p for p in found if p})


def test_every_path_target_and_module_named_in_the_docs_exists():
    assert problems() == []


def test_the_check_finds_a_made_up_path_target_and_module(tmp_path):
    for name in ("services", "docs"):
        (tmp_path / name).mkdir()
    (tmp_path / "services" / "real.py").write_text("")
    (tmp_path / "Makefile").write_text("run: ## start\n\ttrue\n")
    doc = tmp_path / "docs" / "page.md"
    doc.write_text(
        "See `services/real.py` and `services/made_up.py`, [a link](../services/gone.md),\n"
        "run `make run` then `make launch`, and `python -m ingest.nowhere`.\n"
    )
    assert problems(tmp_path, [doc]) == [
        "docs/page.md: ../services/gone.md does not exist",
        "docs/page.md: make launch is not a Makefile target",
        "docs/page.md: python -m ingest.nowhere is not a module of ours",
        "docs/page.md: services/made_up.py does not exist",
    ]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
