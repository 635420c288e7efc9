"""Partner traffic for the chaos runs, and what the partners were told about each record.

A partner that gets `unavailable`, a 5xx or a broken connection sends the record again (the
API's contract: intake is idempotent per record id) until it gets a final answer: accepted or
duplicate (the platform has committed to the record) or rejected (it never will).
"""

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import requests

from carbon_dev import ingest_demo as demo
from ingest.cli.admin import AdminClient
from ingest.domain import record_key
from ingest.sdk.client import IngestClient

RETRY_PAUSE = 0.3  # between resends while a component is down (a partner's backoff, not a wait)


@dataclass
class Traffic:
    committed: dict = field(default_factory=dict)  # record_key -> (partner_id, record) answered accepted/duplicate
    refused: dict = field(default_factory=dict)  # record_key -> rejection code at intake
    answers: dict = field(default_factory=dict)  # outcome -> count of per-record answers
    resends: int = 0  # batches sent again after unavailable/5xx/no answer
    connection_errors: int = 0
    http_errors: dict = field(default_factory=dict)  # status -> count of batches answered without results

    def note(self, key: str, value: int = 1, into: dict | None = None) -> None:
        target = self.answers if into is None else into
        target[key] = target.get(key, 0) + value


def register(instance, consenting: int, without_consent: int):
    """The demo bank app and partners; consent for the first `consenting` customers only.
    -> (partner clients, customer list). Customers beyond `consenting` have no consent."""
    base = f"http://{instance.address(8080)}"
    admin = AdminClient(base, instance.secrets()["ADMIN_TOKEN"])
    bank_private, bank_public = demo.demo_key("demo-bank-app")
    _ok(admin.register("demo-bank-app", "Demo bank app", "bank_app", [], 0, [("demo-bank-app-k1", bank_public)]))
    clients = {}
    for partner_id, (name, scenarios) in demo.PARTNERS.items():
        private, public = demo.demo_key(partner_id)
        _ok(admin.register(partner_id, name, "data_partner", scenarios, 0, [(f"{partner_id}-k1", public)]))
        clients[partner_id] = IngestClient(base, partner_id, f"{partner_id}-k1", private, timeout=20)
    bank = IngestClient(base, "demo-bank-app", "demo-bank-app-k1", bank_private)
    people = demo.customers(consenting + without_consent)
    expiry = f"{datetime.now().year + 1}-12-31T23:59:59Z"
    for customer in people[:consenting]:
        for partner_id, (_, scenarios) in demo.PARTNERS.items():
            _ok(
                bank.record_consent(
                    f"chaos-{customer}-{partner_id}",
                    customer,
                    partner_id,
                    scenarios,
                    "low-carbon rewards (chaos test)",
                    expiry,
                )
            )
    return clients, people


def plan(people: list[str], count: int) -> list[tuple[str, dict]]:
    """A realistic day of records (the demo's generator, with its 1 % of implausible activity),
    moved into the minutes after now: `register` granted the consents just before, and ingest
    refuses a record from before its consent."""
    day = (datetime.now(demo.CST) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = datetime.now(timezone.utc)
    return [
        (partner_id, record)
        for partner_id, records in demo.after_consent(demo.day_of_records(people, count, day), day, start).items()
        for record in records
    ]


def send_settled(
    clients: dict,
    records: list[tuple[str, dict]],
    traffic: Traffic,
    *,
    batch_size: int = 20,
    on_batch=None,
    deadline: float = float("inf"),
) -> None:
    """Send every record until it has a final answer; `on_batch(batches_sent)` injects faults."""
    queues = {partner_id: [] for partner_id in clients}
    for partner_id, record in records:
        queues[partner_id].append(record)
    batches = 0
    while any(queues.values()):
        for partner_id, queue in queues.items():
            if not queue:
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(map(len, queues.values()))} records still without a final answer")
            batch, queue[:] = queue[:batch_size], queue[batch_size:]
            unsettled = _send_once(clients[partner_id], partner_id, batch, traffic)
            if unsettled:
                traffic.resends += 1
                queue[:0] = unsettled
                time.sleep(RETRY_PAUSE)
            batches += 1
            if on_batch:
                on_batch(batches)


def _send_once(client: IngestClient, partner_id: str, batch: list[dict], traffic: Traffic) -> list[dict]:
    """One POST; -> the records still without a final answer."""
    try:
        response = client.request("POST", "/v1/records", {"records": batch})
        body = response.json()
    except (requests.RequestException, ValueError):
        traffic.connection_errors += 1
        return batch
    if "results" not in body:
        traffic.note(str(response.status_code), into=traffic.http_errors)
        return batch
    unsettled = []
    for result in body["results"]:
        record = batch[result["index"]]
        key = result.get("record_key") or record_key(partner_id, record["record_id"])
        traffic.note(result["outcome"])
        if result["outcome"] in ("accepted", "duplicate"):
            traffic.committed[key] = (partner_id, record)
        elif result["outcome"] == "rejected":
            traffic.refused[key] = result.get("code", "")
        else:
            unsettled.append(record)
    return unsettled


def _ok(response) -> None:
    if response.status_code not in (200, 201):
        raise RuntimeError(f"setup call failed: {response.status_code} {response.text[:300]}")
