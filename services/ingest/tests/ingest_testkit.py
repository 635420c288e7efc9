"""Test kit for the ingest tests: keys, record builders, a signing client over Flask's test client."""

import json
import secrets
from datetime import datetime, timedelta, timezone

from carbon_common import gm

from ingest import signing

ADMIN_TOKEN = "test-admin-" + secrets.token_hex(8)
PLATFORM_PRIVATE, PLATFORM_PUBLIC = gm.generate_sm2_keypair()
PSEUDONYM_KEY = secrets.token_hex(32)
CONTACT_KEY = secrets.token_hex(16)
ALL_TRAVEL = ["metro_ride", "bus_ride", "bike_ride", "walking"]


def settings_for(mongo_db, amqp_uri) -> dict:
    return {
        "MONGO_URI": "mongodb://127.0.0.1:27017/?retryWrites=false",
        "MONGO_DATABASE": mongo_db.name,
        "AMQP_URI": amqp_uri,
        "PSEUDONYM_KEY": PSEUDONYM_KEY,
        "PLATFORM_SM2_PRIVATE_KEY": PLATFORM_PRIVATE,
        "PLATFORM_SM2_PUBLIC_KEY": PLATFORM_PUBLIC,
        "CONTACT_SM4_KEY": CONTACT_KEY,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "TELEMETRY": False,
    }


def rfc3339(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def metro(record_id, customer="6222000011112222", distance="12.4", minutes_ago=0, **extra):
    occurred = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    activity = {"distance_km": distance, "city": "shenzhen", "entry_station": "S01", "exit_station": "S17"}
    activity.update(extra.pop("activity", {}))
    return {
        "record_id": record_id,
        "customer_ref": customer,
        "scenario": "metro_ride",
        "occurred_at": rfc3339(occurred),
        "activity": activity,
        **extra,
    }


class Signer:
    """Signs requests for one partner key and sends them through a Flask test client."""

    def __init__(self, http, partner_id, key_id, private_key, public_key):
        self.http, self.partner_id, self.key_id = http, partner_id, key_id
        self.private_key, self.public_key = private_key, public_key

    def headers(self, method, path, body: bytes, **kw):
        return signing.sign_request(self.private_key, self.partner_id, self.key_id, method, path, body, **kw)

    def send(self, method, path, document=None, *, raw: bytes | None = None, encrypt=False, mutate=None, **kw):
        body = raw if raw is not None else (b"" if document is None else json.dumps(document).encode())
        headers, body = self.headers(method, path, body, platform_public_hex=PLATFORM_PUBLIC if encrypt else None, **kw)
        if document is None and raw is None:
            headers.pop("Content-Type")
        if mutate:
            headers, body = mutate(headers, body)
        return self.http.open(path, method=method, data=body, headers=headers)

    def post_records(self, records, **kw):
        return self.send("POST", "/v1/records", {"records": records}, **kw)


class Platform:
    """The app under test plus the admin and bank-app conveniences tests need."""

    def __init__(self, app, http):
        self.app, self.http = app, http
        self.repo = app.extensions["ingest"].repo
        self.admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def admin(self, method, path, document=None):
        return self.http.open(path, method=method, json=document, headers=self.admin_headers)

    def register(self, partner_id, scenarios=None, kind="data_partner", rate=0, key_id=None):
        private, public = gm.generate_sm2_keypair()
        key_id = key_id or f"{partner_id}-k1"
        response = self.admin(
            "POST",
            "/admin/v1/partners",
            {
                "partner_id": partner_id,
                "name": partner_id.title(),
                "kind": kind,
                "scenarios": [] if kind == "bank_app" else (scenarios or ALL_TRAVEL),
                "rate_limit_per_minute": rate,
                "keys": [{"key_id": key_id, "public_key": public}],
            },
        )
        assert response.status_code == 201, response.get_json()
        return Signer(self.http, partner_id, key_id, private, public)

    def consent(self, bank, customer, partner_id, scenarios=None, ref=None, days=365):
        expires = rfc3339(datetime.now(timezone.utc) + timedelta(days=days))
        response = bank.send(
            "POST",
            "/v1/consents",
            {
                "consent_ref": ref or secrets.token_hex(6),
                "customer_number": customer,
                "partner_id": partner_id,
                "scenarios": scenarios or ["metro_ride"],
                "purpose": "green travel rewards",
                "expires_at": expires,
            },
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()["consent_id"]

    def counts(self):
        return {name: self.repo.db[name].count_documents({}) for name in ("receipts", "nonces", "consents")}


class FailingBus:
    """Stands in for a broker that refuses to confirm (the real one is tested elsewhere)."""

    def __init__(self, real):
        self.real, self.failing = real, True

    def publish_many(self, items):
        if self.failing:
            from carbon_common.events import PublishError

            raise PublishError("not confirmed")
        return self.real.publish_many(items)

    def publish(self, event_type, data, event_id, traceparent=None):
        return self.publish_many([(event_type, data, event_id, traceparent)])[0]

    def ping(self):
        self.real.ping()
