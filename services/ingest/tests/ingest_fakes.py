"""In-memory stand-ins for what lies outside intake's bounded context: the store and the broker.

`FakeRepository` keeps the semantics the service layer relies on from `ingest.repository`,
aggregate by aggregate: unique inserts of partners, keys and consents (Duplicate, the first
one stays), a used nonce stays used until it expires, rate-limit slots, consents found by
(partner, user_pid) once listed in the index and until revoked, receipts stored once (an
existing one with the same record key wins), relay hints (a receipt is pending while the hint
it was stored under exists) and legacy published markers.
tests/integration/test_ingest_repository_contract.py runs the same assertions against this
fake and the real repository on FerretDB, so the two cannot drift apart unnoticed.
Test-only code: nothing under src/ imports it.
"""

from datetime import datetime, timedelta

from carbon_common.events import PublishError

from ingest.repository import Duplicate


class FakeRepository:
    def __init__(self):
        self.partners, self.keys = {}, {}
        self.nonces = {}  # "partner:nonce" -> expires_at
        self.rate_slots = set()  # (partner_id, window, n)
        self.consents = {}  # consent id -> consent (with partner_id, user_pid)
        self.consent_index = {}  # (partner_id, user_pid) -> [consent id], in the order listed
        self.consent_revocations = {}  # consent id -> revoked_at
        self.receipts = {}  # record key -> receipt
        self.published = {}  # record key -> at (legacy markers: receipts stored without a hint)
        self.unpublished = {}  # hint id -> {"keys", "created_at", "traceparent"}
        self.hints_written = 0

    # ---- set-up helpers for tests ---------------------------------------------------------------
    def add_partner(self, partner_id, kind="data_partner", scenarios=("metro_ride",), rate=0, status="active"):
        self.insert_partner(
            {
                "_id": partner_id,
                "kind": kind,
                "scenarios": list(scenarios),
                "rate_limit_per_minute": rate,
                "status": status,
            }
        )
        return self.partners[partner_id]

    def add_key(self, key_id, partner_id, public_key, not_after=None, revoked_at=None):
        self.insert_key(
            {
                "_id": key_id,
                "partner_id": partner_id,
                "public_key": public_key,
                "not_after": not_after,
                "revoked_at": revoked_at,
            }
        )
        return self.keys[key_id]

    def add_consent(
        self, consent_id, partner_id, user_pid, scenarios, granted_at: datetime, expires_at: datetime, revoked_at=None
    ):
        """As the consents service records (and revokes) one: the consent, then its index slot."""
        consent = {
            "_id": consent_id,
            "partner_id": partner_id,
            "user_pid": user_pid,
            "scenarios": list(scenarios),
            "granted_at": granted_at,
            "expires_at": expires_at,
            "revoked_at": revoked_at,
        }
        self.insert_consent(consent)
        self.index_consent(consent)
        if revoked_at is not None:
            self.note_revoked(consent_id, revoked_at)
        return self.consents[consent_id]

    def written(self) -> dict:
        """How many of each thing a request can leave behind."""
        return {
            "receipts": len(self.receipts),
            "published": len(self.published),
            "unpublished": len(self.unpublished),
            "nonces": len(self.nonces),
        }

    @staticmethod
    def _insert(collection: dict, doc: dict) -> None:
        if doc["_id"] in collection:
            raise Duplicate(doc["_id"])
        collection[doc["_id"]] = dict(doc)

    # ---- partners and keys ----------------------------------------------------------------------
    def insert_partner(self, doc) -> None:
        self._insert(self.partners, doc)

    def get_partner(self, partner_id):
        return self.partners.get(partner_id)

    def insert_key(self, doc) -> None:
        self._insert(self.keys, doc)

    def get_key(self, key_id):
        return self.keys.get(key_id)

    def partner_ids(self) -> list:
        return sorted(self.partners)

    # ---- request guards: nonces and rate limits -------------------------------------------------
    def nonce_seen(self, partner_id, nonce, now: datetime) -> bool:
        expires = self.nonces.get(f"{partner_id}:{nonce}")
        return expires is not None and expires > now

    def consume_nonce(self, partner_id, nonce, now: datetime, ttl: timedelta) -> bool:
        if self.nonce_seen(partner_id, nonce, now):
            return False
        self.nonces[f"{partner_id}:{nonce}"] = now + ttl
        return True

    def take_rate_slot(self, partner_id, window: int, limit: int, expires_at: datetime) -> bool:
        for n in range(limit):
            if (partner_id, window, n) not in self.rate_slots:
                self.rate_slots.add((partner_id, window, n))
                return True
        return False

    # ---- consents -------------------------------------------------------------------------------
    def insert_consent(self, doc) -> None:
        self._insert(self.consents, doc)

    def get_consent(self, consent_id):
        return self.consents.get(consent_id)

    def index_consent(self, consent: dict) -> None:
        chain = self.consent_index.setdefault((consent["partner_id"], consent["user_pid"]), [])
        if consent["_id"] not in chain:
            chain.append(consent["_id"])

    def note_revoked(self, consent_id: str, at: datetime) -> None:
        self.consent_revocations.setdefault(consent_id, at)

    def consents_for(self, partner_id, user_pids) -> list:
        """What the real one reads from the index slots: each listed, unrevoked consent's terms."""
        return [
            {
                "_id": consent_id,
                "consent_id": consent_id,
                "user_pid": user_pid,
                **{name: self.consents[consent_id][name] for name in ("scenarios", "granted_at", "expires_at")},
                "revoked_at": None,
            }
            for user_pid in set(user_pids)
            for consent_id in self.consent_index.get((partner_id, user_pid), [])
            if consent_id not in self.consent_revocations
        ]

    def customer_consents(self, user_pid: str, partner_ids) -> list:
        """What the real one reads through the index: every listed consent of the customer
        with these partners, revoked or not, as stored."""
        return [
            dict(self.consents[consent_id])
            for partner_id in dict.fromkeys(partner_ids)
            for consent_id in self.consent_index.get((partner_id, user_pid), [])
        ]

    # ---- receipts and relay hints ---------------------------------------------------------------
    def note_unpublished(self, record_keys, at: datetime, traceparent: str = "") -> str:
        self.hints_written += 1
        hint_id = f"h_{self.hints_written}"
        self.unpublished[hint_id] = {"keys": list(record_keys), "created_at": at, "traceparent": traceparent}
        return hint_id

    def clear_unpublished(self, hint_ids) -> None:
        for hint_id in hint_ids:
            self.unpublished.pop(hint_id, None)

    def store_receipts(self, docs, hint_id: str) -> list:
        out = []
        for doc in docs:
            if doc["_id"] in self.receipts:
                out.append((self.receipts[doc["_id"]], False))
            else:
                self.receipts[doc["_id"]] = {**doc, "hint": hint_id}
                out.append((self.receipts[doc["_id"]], True))
        return out

    def pending_among(self, receipts) -> tuple[set, dict]:
        live = {r["hint"]: self.unpublished[r["hint"]]["keys"] for r in receipts if r.get("hint") in self.unpublished}
        pending = {r["_id"] for r in receipts if (r["hint"] in live if "hint" in r else r["_id"] not in self.published)}
        return pending, live

    def mark_published(self, receipts, at: datetime) -> None:
        for receipt in receipts:
            if "hint" not in receipt:  # legacy markers only
                self.published.setdefault(receipt["_id"], at)

    def receipt_state(self, record_key):
        if record_key not in self.receipts:
            return None
        return "pending" if self.pending_among([self.receipts[record_key]])[0] else "published"


class FakeBus:
    """The broker: records what was published and confirmed; `failing` refuses to confirm."""

    def __init__(self, failing=False):
        self.failing = failing
        self.events = []  # (event_type, data, event_id, traceparent), confirmed only

    def publish_many(self, items) -> list:
        items = list(items)
        if self.failing:
            raise PublishError("not confirmed")
        self.events.extend(items)
        return [{"event_type": t, "event_id": i} for t, _, i, _ in items]

    def publish(self, event_type, data, event_id, traceparent=None):
        return self.publish_many([(event_type, data, event_id, traceparent)])[0]

    def event_ids(self) -> list:
        return [event_id for _, _, event_id, _ in self.events]
