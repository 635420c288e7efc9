"""docs/registry-openapi.yaml and docs/registry-api.md describe exactly the app's routes and codes."""

import re
from pathlib import Path
from unittest.mock import MagicMock

import yaml

from exchange_bridge.registry import create_app
from exchange_bridge.registry.errors import CODES

DOCS = Path(__file__).resolve().parents[4] / "docs"
SPEC = yaml.safe_load((DOCS / "registry-openapi.yaml").read_text(encoding="utf-8"))


def app_routes() -> set[tuple[str, str]]:
    app = create_app(MagicMock(), methodologies={("metro_ride", "1")})  # routes only: no database used
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes.update((path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def test_the_document_is_openapi_3_yaml():
    assert SPEC["openapi"].startswith("3.") and SPEC["info"]["title"]


def test_every_route_is_documented_and_every_documented_route_exists():
    documented = {(path, method) for path, item in SPEC["paths"].items() for method in item if method != "parameters"}
    assert app_routes() == documented


def test_error_codes_match_the_code_table():
    assert set(SPEC["components"]["schemas"]["ErrorCode"]["enum"]) == set(CODES)
    guide = (DOCS / "registry-api.md").read_text(encoding="utf-8")
    missing = [code for code in CODES if f"`{code}`" not in guide]
    assert not missing, f"docs/registry-api.md does not list {missing}"
