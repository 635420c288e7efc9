"""The OpenAPI document matches the app: same routes, same error codes, valid responses, and
docs/ keeps an identical copy."""

import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from ingest.errors import CODES
from ingest.views.ops import openapi_text
from ingest_testkit import metro

ROOT = Path(__file__).resolve().parents[4]
DOC = yaml.safe_load(openapi_text())


def schema(name):
    return {"$ref": f"#/components/schemas/{name}", "components": DOC["components"]}


def test_docs_copy_is_identical():
    assert (ROOT / "docs" / "ingest-openapi.yaml").read_text() == openapi_text()


def test_every_route_is_documented_and_every_documented_route_exists(module_platform):
    app_routes = set()
    for rule in module_platform.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        app_routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    doc_routes = {(path, method) for path, ops in DOC["paths"].items() for method in ops if method != "parameters"}
    assert app_routes == doc_routes


def test_error_codes_match_the_document_and_the_partner_guide():
    assert set(DOC["components"]["schemas"]["ErrorCode"]["enum"]) == set(CODES)
    guide = (ROOT / "docs" / "partner-api.md").read_text()
    missing = [code for code in CODES if f"`{code}`" not in guide]
    assert not missing, f"docs/partner-api.md does not explain {missing}"


def test_served_document_is_this_document(module_platform):
    response = module_platform.http.get("/openapi.yaml")
    assert response.status_code == 200 and yaml.safe_load(response.data) == DOC


@pytest.fixture(scope="module")
def actors(module_platform):
    bank = module_platform.register("contract-bank", kind="bank_app")
    partner = module_platform.register("contract-metro")
    return module_platform, bank, partner


def test_responses_follow_the_document(actors):
    platform, bank, partner = actors
    consent = bank.send(
        "POST",
        "/v1/consents",
        {
            "consent_ref": "c-1",
            "customer_number": "6222000011112222",
            "partner_id": "contract-metro",
            "scenarios": ["metro_ride"],
            "purpose": "rewards",
            "expires_at": "2027-06-01T00:00:00Z",
        },
    )
    jsonschema.validate(consent.get_json(), schema("Consent"))
    listing = bank.send("GET", f"/v1/consents?user_pid={consent.get_json()['user_pid']}")
    assert listing.status_code == 200 and len(listing.get_json()["consents"]) == 1
    jsonschema.validate(listing.get_json(), schema("ConsentList"))
    batch = partner.post_records([metro("c-trip", "6222000011112222"), metro("c-bad", distance="900")])
    jsonschema.validate(batch.get_json(), schema("BatchResult"))
    error = partner.post_records([metro("c-bad", distance="900")])
    jsonschema.validate(error.get_json(), schema("BatchResult"))
    refused = platform.http.post("/v1/records", json={"records": []})
    jsonschema.validate(refused.get_json(), schema("Error"))
    jsonschema.validate(platform.admin("GET", "/admin/v1/partners/contract-metro").get_json(), schema("Partner"))
    record = metro("x")
    jsonschema.validate({"records": [record]}, schema("RecordBatch"))
