"""The registry's catalogue of methodologies it accepts batches under: (id, version) pairs.

An exchange registers methodologies before it issues units under them. Here the catalogue is
configured at start: REGISTRY_METHODOLOGIES="bike_ride:1,metro_ride:1" names the pairs, else
REGISTRY_METHODOLOGIES_DIR is read (every `kind: methodology` YAML document's id and
version), else the platform's own methodologies (services/calc/src/calc/methodologies, found
through the installed `calc` package or this checkout).
"""

import importlib.util
from pathlib import Path

import yaml

from carbon_common.config import setting

_CHECKOUT_DIR = Path(__file__).resolve().parents[4] / "calc" / "src" / "calc" / "methodologies"


def from_text(text: str) -> set[tuple[str, str]]:
    """ "id:version,id:version" -> {(id, version)}; ValueError for a malformed item."""
    pairs = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        methodology_id, sep, version = item.partition(":")
        if not sep or not methodology_id or not version:
            raise ValueError(f"methodology {item!r} is not id:version")
        pairs.add((methodology_id, version))
    return pairs


def from_directory(directory: Path) -> set[tuple[str, str]]:
    pairs = set()
    for path in sorted(directory.glob("*.yml")) + sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("kind") == "methodology":
            pairs.add((str(doc["id"]), str(doc["version"])))
    return pairs


def platform_directory() -> Path | None:
    spec = importlib.util.find_spec("calc")
    for root in list(spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / "methodologies").is_dir():
            return Path(root) / "methodologies"
    return _CHECKOUT_DIR if _CHECKOUT_DIR.is_dir() else None


def configured() -> set[tuple[str, str]]:
    """The catalogue from the environment (see the module doc); SystemExit when none is found."""
    text = setting("REGISTRY_METHODOLOGIES", "")
    if text:
        return from_text(text)
    directory = setting("REGISTRY_METHODOLOGIES_DIR", "")
    path = Path(directory) if directory else platform_directory()
    pairs = from_directory(path) if path and path.is_dir() else set()
    if not pairs:
        raise SystemExit("no methodologies: set REGISTRY_METHODOLOGIES or REGISTRY_METHODOLOGIES_DIR")
    return pairs
