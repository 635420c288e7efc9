"""The intake hot path asks FerretDB only for `_id` lookups (docs/adr/0002: any other
filter reads and decodes the whole collection, so a record would cost more as data grows).

Every find/update/delete/count/aggregate the app sends while it handles one realistic signed
batch is recorded with pymongo command monitoring (carbon_dev.testing.FilterRecorder) and
must filter on `{_id: value}` or `{_id: {$in: [...]}}` only. The batch mixes every branch of
intake: new records, a published duplicate, a pending duplicate (its first publish failed),
duplicates of receipts stored before hints (published by a legacy marker, and pending), a
content conflict, customers with several consents (index chains longer than one read), revoked
consents, no consent, an invalid record; the partner is rate limited.

Also counted: what a 100-record request writes (one document per record, no per-record marker)
and how many commands it sends.
"""

from datetime import datetime, timedelta, timezone

import pytest
from pymongo import monitoring

from ingest_testkit import FailingBus, Platform, Signer, metro, settings_for

C_ONE, C_MANY, C_TWO, C_REVOKED, C_NONE = (
    "6222000000000001",
    "6222000000000002",
    "6222000000000003",
    "6222000000000004",
    "6222000000000005",
)


@pytest.fixture
def recorded(recorded_database, platform_amqp, monkeypatch):
    """(platform on a database whose client records every filter, recorder, bus)."""
    from ingest import app as app_module
    from ingest.bus import Bus

    make_db, recorder = recorded_database
    db = make_db("ingest")
    monkeypatch.setattr(app_module, "connect_database", lambda *args, **kwargs: db)
    bus = FailingBus(Bus(platform_amqp["AMQP_URI"]))
    bus.failing = False
    app = app_module.create_app({**settings_for(db, platform_amqp["AMQP_URI"]), "BUS": bus})
    yield Platform(app, app.test_client()), recorder, bus
    bus.real.close()


def test_a_signed_batch_sends_only_id_lookups(recorded, event_listener):
    platform, recorder, bus = recorded
    partner = platform.register("metro-sz", rate=600)
    bank = platform.register("bank-app", kind="bank_app")
    platform.consent(bank, C_ONE, "metro-sz")
    for n in range(5):  # five consents: the index chain of this customer takes three reads
        platform.consent(bank, C_MANY, "metro-sz", scenarios=["bus_ride"] if n < 4 else ["metro_ride"])
    platform.consent(bank, C_TWO, "metro-sz", scenarios=["walking"])
    platform.consent(bank, C_TWO, "metro-sz")
    for scenarios in (["metro_ride"], ["bus_ride"]):
        revoked = platform.consent(bank, C_REVOKED, "metro-sz", scenarios=scenarios)
        assert bank.send("POST", f"/v1/consents/{revoked}/revoke", {}).status_code == 200

    # each built once: a replay must carry the same occurred_at (now - 30 min, in whole seconds)
    earlier = [metro("published", C_ONE), metro("conflicting", C_ONE)]
    pending = metro("pending", C_ONE)
    stored_before_hints = [metro("legacy-published", C_ONE), metro("legacy-pending", C_ONE)]
    assert partner.post_records(earlier).status_code == 200
    bus.failing = True
    assert partner.post_records([pending]).status_code == 503
    legacy = partner.post_records(stored_before_hints)
    bus.failing = False
    legacy_keys = [r["record_key"] for r in legacy.get_json()["results"]]
    repo = platform.repo  # as an earlier version stored them: no hint, a marker once published
    repo.receipts.update_many({"_id": {"$in": legacy_keys}}, {"$unset": {"hint": ""}})
    repo.published.insert_one({"_id": legacy_keys[0], "at": datetime.now(timezone.utc)})
    repo.unpublished.delete_many({"keys": legacy_keys})
    listener = event_listener("ingest", "behaviour_received")

    recorder.clear()
    response = partner.post_records(
        [
            metro("new-1", C_ONE),
            metro("new-2", C_MANY),
            metro("new-3", C_TWO),
            earlier[0],
            metro("conflicting", C_ONE, distance="3.0"),
            pending,
            *stored_before_hints,
            metro("revoked", C_REVOKED),
            metro("no-consent", C_NONE),
            metro("invalid", C_ONE, distance="-1"),
        ]
    )
    commands, offending = list(recorder.commands), recorder.not_by_id()

    assert response.status_code == 200, response.get_json()
    outcomes = {r["record_id"]: (r["outcome"], r.get("code")) for r in response.get_json()["results"]}
    assert outcomes.pop("invalid")[0] == "rejected"
    assert outcomes == {
        "new-1": ("accepted", None),
        "new-2": ("accepted", None),
        "new-3": ("accepted", None),
        "published": ("duplicate", None),
        "conflicting": ("rejected", "record_conflict"),
        "pending": ("duplicate", None),
        "legacy-published": ("duplicate", None),
        "legacy-pending": ("duplicate", None),
        "revoked": ("rejected", "consent_required"),
        "no-consent": ("rejected", "consent_required"),
    }
    assert sorted(e["data"]["partner_record_id"] for e in listener.wait(5)) == [
        "legacy-pending",
        "new-1",
        "new-2",
        "new-3",
        "pending",
    ]
    assert offending == [], f"filters FerretDB answers with a scan: {offending}"
    # every hint is gone ("pending"'s too: the batch republished its only record) and only the
    # receipts stored before hints have a marker
    assert repo.count_unpublished() == 0
    assert {d["_id"] for d in repo.published.find()} == set(legacy_keys)
    touched = {(name, coll) for name, coll, _ in commands}
    assert {
        ("find", c)
        for c in (
            "partners",
            "keys",
            "rate_slots",
            "nonces",
            "consent_index",
            "consent_revocations",
            "receipts",
            "unpublished",
            "published",
        )
    } <= touched, touched
    assert ("delete", "unpublished") in touched
    assert sum(1 for name, coll, _ in commands if coll == "consent_index") == 3  # rounds of the longest chain


class CommandLog(monitoring.CommandListener):
    """Every command a client sends: (name, collection, documents inserted)."""

    def __init__(self):
        self.commands = []

    def started(self, event):
        docs = event.command.get("documents", []) if event.command_name == "insert" else []
        self.commands.append((event.command_name, event.command.get(event.command_name), len(docs)))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@pytest.fixture
def counted(platform_amqp, monkeypatch):
    """(platform on a throwaway database whose client logs every command, the log)."""
    import uuid

    from pymongo import MongoClient

    from carbon_common.mongo import _with_defaults
    from carbon_dev.testing import TEST_MONGO_URI

    from ingest import app as app_module

    log = CommandLog()
    client = MongoClient(_with_defaults(TEST_MONGO_URI), tz_aware=True, event_listeners=[log])
    db = client[f"test_ingest_{uuid.uuid4().hex[:10]}"]
    monkeypatch.setattr(app_module, "connect_database", lambda *args, **kwargs: db)
    app = app_module.create_app(settings_for(db, platform_amqp["AMQP_URI"]))
    yield Platform(app, app.test_client()), log
    client.drop_database(db.name)
    client.close()


def test_a_100_record_request_writes_one_document_per_record(counted, event_listener):
    """Receipts, plus one nonce and one hint per request: no per-record marker of the publish."""
    platform, log = counted
    partner = platform.register("metro-sz")
    bank = platform.register("bank-app", kind="bank_app")
    customers = [f"62220000000{n:05d}" for n in range(10)]
    for customer in customers:
        platform.consent(bank, customer, "metro-sz")
    listener = event_listener("ingest", "behaviour_received")
    records = [metro(f"trip-{n}", customers[n % 10]) for n in range(100)]

    log.commands.clear()
    response = partner.post_records(records)
    commands = list(log.commands)

    assert response.status_code == 200 and response.get_json()["summary"]["accepted"] == 100
    assert len(listener.wait(100)) == 100
    written = {}
    for name, coll, docs in commands:
        if name == "insert":
            written[coll] = written.get(coll, 0) + docs
    assert written == {"nonces": 1, "unpublished": 1, "receipts": 100}, written
    # partner, key, nonce, consent slots and revocations, the receipts read before they are
    # written (insert_or_get_many), the three writes, the hint's delete
    assert len(commands) <= 10, commands
    keys = [r["record_key"] for r in response.get_json()["results"]]
    assert {platform.repo.receipt_state(k) for k in keys} == {"published"}
    assert platform.repo.published.count_documents({}) == 0 and platform.repo.count_unpublished() == 0


def test_a_revocation_counts_at_once_in_every_worker(make_app):
    """Two apps on one database stand for two gunicorn workers: revocation markers are never cached."""
    worker_a, worker_b = make_app(), make_app()
    platform = Platform(worker_a, worker_a.test_client())
    partner = platform.register("metro-sz")
    bank = platform.register("bank-app", kind="bank_app")
    bank_via_b = Signer(worker_b.test_client(), bank.partner_id, bank.key_id, bank.private_key, bank.public_key)
    consent_id = platform.consent(bank, C_ONE, "metro-sz")
    assert partner.post_records([metro("before", C_ONE)]).get_json()["results"][0]["outcome"] == "accepted"

    assert bank_via_b.send("POST", f"/v1/consents/{consent_id}/revoke", {}).status_code == 200

    after = partner.post_records([metro("after", C_ONE)]).get_json()
    assert after["results"][0]["code"] == "consent_required", after


def test_consents_stored_before_the_index_are_found_and_backfilled_by_the_relay(
    platform, metro_partner, bank, platform_amqp
):
    from ingest.bus import Bus
    from ingest.relay import Relay
    from ingest.repository import CONSENT_INDEX_READY

    repo = platform.repo
    platform.consent(bank, C_ONE, "metro-sz")
    revoked = platform.consent(bank, C_REVOKED, "metro-sz")
    assert bank.send("POST", f"/v1/consents/{revoked}/revoke", {}).status_code == 200
    for name in ("consent_index", "consent_revocations"):  # as stored by a version without them
        repo.db[name].delete_many({})
    repo.meta.delete_one({"_id": CONSENT_INDEX_READY})
    repo._consent_index_ready = False

    def outcomes(*records):
        return [r.get("code") or r["outcome"] for r in metro_partner.post_records(list(records)).get_json()["results"]]

    # meanwhile found by the old query (a scan)
    assert outcomes(metro("legacy", C_ONE), metro("legacy-revoked", C_REVOKED)) == ["accepted", "consent_required"]

    bus = Bus(platform_amqp["AMQP_URI"])
    try:
        Relay(repo, bus, timedelta(seconds=90)).housekeeping(datetime.now(timezone.utc))
    finally:
        bus.close()
    assert repo.consent_index_ready()
    assert (repo.consent_index.count_documents({}), repo.consent_revocations.count_documents({})) == (2, 1)
    assert outcomes(metro("indexed", C_ONE), metro("indexed-revoked", C_REVOKED)) == ["accepted", "consent_required"]


def test_concurrent_consents_of_one_customer_all_get_a_slot(platform):
    """Slots are taken by unique inserts: racing consents never overwrite one another."""
    import threading

    repo, pid = platform.repo, "f" * 64
    now = datetime.now(timezone.utc)
    consents = [
        {
            "_id": f"cns_race_{n}",
            "partner_id": "metro-sz",
            "user_pid": pid,
            "scenarios": ["metro_ride"],
            "granted_at": now,
            "expires_at": now + timedelta(days=1),
        }
        for n in range(8)
    ]
    threads = [threading.Thread(target=repo.index_consent, args=(c,)) for c in consents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(c["_id"] for c in repo.consents_for("metro-sz", [pid])) == sorted(c["_id"] for c in consents)
    repo.note_revoked("cns_race_3", now)
    assert "cns_race_3" not in {c["_id"] for c in repo.consents_for("metro-sz", [pid])}


def test_a_retried_consent_request_repairs_a_missing_slot(platform, metro_partner, bank):
    consent_id = platform.consent(bank, C_ONE, "metro-sz", ref="ref-1")
    platform.repo.consent_index.delete_many({})  # the first request died between its two inserts
    refused = metro_partner.post_records([metro("before-retry", C_ONE)]).get_json()
    assert refused["results"][0]["code"] == "consent_required"

    retried = bank.send(
        "POST",
        "/v1/consents",
        {
            **{
                k: v
                for k, v in bank.send("GET", f"/v1/consents/{consent_id}").get_json().items()
                if k in ("consent_ref", "partner_id", "scenarios", "purpose", "expires_at")
            },
            "customer_number": C_ONE,
        },
    )

    assert retried.status_code == 200, retried.get_json()
    accepted = metro_partner.post_records([metro("after-retry", C_ONE)]).get_json()
    assert accepted["results"][0]["outcome"] == "accepted"


def test_a_consent_added_later_is_seen_by_a_worker_that_already_read_the_customer(make_app):
    """Workers keep the (immutable) slots they read, never the end of a chain: each request
    reads the positions after them, so a new consent counts at once everywhere."""
    worker_a, worker_b = make_app(), make_app()
    platform = Platform(worker_a, worker_a.test_client())
    partner = platform.register("metro-sz")
    bank = platform.register("bank-app", kind="bank_app")
    platform.consent(bank, C_ONE, "metro-sz")
    bus_ride = {**metro("bus-1", C_ONE), "scenario": "bus_ride", "activity": {"distance_km": "5.0", "city": "shenzhen"}}
    outcomes = [
        r.get("code") or r["outcome"]
        for r in partner.post_records([metro("metro-1", C_ONE), bus_ride]).get_json()["results"]
    ]
    assert outcomes == ["accepted", "consent_required"]

    Platform(worker_b, worker_b.test_client()).consent(
        Signer(worker_b.test_client(), bank.partner_id, bank.key_id, bank.private_key, bank.public_key),
        C_ONE,
        "metro-sz",
        scenarios=["bus_ride"],
    )

    again = partner.post_records([{**bus_ride, "record_id": "bus-2"}]).get_json()
    assert again["results"][0]["outcome"] == "accepted", again
