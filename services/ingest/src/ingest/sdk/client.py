"""A small, dependency-light client for the partner and bank-app API.

Every attempt is signed afresh (new timestamp and nonce); record batches are retried on 503 and
connection errors because intake is idempotent per record id.
"""

import json
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests

from ingest import signing

RETRYABLE = {429, 502, 503, 504}


@dataclass
class SendTotals:
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    unavailable: int = 0
    codes: dict = field(default_factory=dict)

    def add(self, results) -> None:
        for result in results:
            setattr(self, result["outcome"], getattr(self, result["outcome"]) + 1)
            if result.get("code") and result["outcome"] == "rejected":
                self.codes[result["code"]] = self.codes.get(result["code"], 0) + 1

    @property
    def total(self) -> int:
        return self.accepted + self.duplicate + self.rejected + self.unavailable


class IngestClient:
    def __init__(
        self,
        base_url: str,
        partner_id: str,
        key_id: str,
        private_key_hex: str,
        *,
        platform_public_key: str | None = None,
        timeout: float = 30,
        session=None,
    ):
        self.base_url = base_url.rstrip("/")
        self.partner_id, self.key_id, self.private_key = partner_id, key_id, private_key_hex
        self.platform_public_key = platform_public_key
        self.timeout = timeout
        self.session = session or requests.Session()

    @staticmethod
    def encode(document) -> bytes:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    def request(self, method: str, path: str, document=None) -> requests.Response:
        body = b"" if document is None else self.encode(document)
        # Only a body is encrypted: a GET has none, and ingest refuses a GET that carries one.
        encrypt_to = self.platform_public_key if document is not None else None
        headers, body = signing.sign_request(
            self.private_key, self.partner_id, self.key_id, method, path, body, platform_public_hex=encrypt_to
        )
        if document is None:
            headers.pop("Content-Type")
        return self.session.request(method, self.base_url + path, data=body, headers=headers, timeout=self.timeout)

    def send_batch(self, records: list, attempts: int = 5) -> requests.Response:
        delay, response = 0.2, None
        for attempt in range(attempts):
            try:
                response = self.request("POST", "/v1/records", {"records": records})
                if response.status_code not in RETRYABLE or attempt == attempts - 1:
                    return response
            except requests.ConnectionError:
                response = None
                if attempt == attempts - 1:
                    raise
            retry_after = response.headers.get("Retry-After") if response is not None else None
            time.sleep(float(retry_after) if retry_after and retry_after.isdigit() else delay)
            delay = min(delay * 2, 5)
        raise AssertionError("unreachable")

    def send_records(self, records, batch_size: int = 100, progress=None) -> SendTotals:
        """Send an iterable of records in batches; `progress(totals)` after each batch."""
        totals, batch = SendTotals(), []
        for record in records:
            batch.append(record)
            if len(batch) == batch_size:
                self._send_counted(batch, totals, progress)
                batch = []
        if batch:
            self._send_counted(batch, totals, progress)
        return totals

    def _send_counted(self, batch, totals, progress) -> None:
        response = self.send_batch(batch)
        body = response.json()
        if "results" not in body:  # the whole request was refused
            raise RuntimeError(f"batch refused: {response.status_code} {body.get('code')}: {body.get('message')}")
        totals.add(body["results"])
        if progress:
            progress(totals)

    # ---- bank app calls ---------------------------------------------------------------------
    def record_consent(self, consent_ref, customer_number, partner_id, scenarios, purpose, expires_at):
        return self.request(
            "POST",
            "/v1/consents",
            {
                "consent_ref": consent_ref,
                "customer_number": customer_number,
                "partner_id": partner_id,
                "scenarios": scenarios,
                "purpose": purpose,
                "expires_at": expires_at,
            },
        )

    def get_consent(self, consent_id):
        return self.request("GET", f"/v1/consents/{consent_id}")

    def list_consents(self, user_pid, page_size=None, page_token=None):
        """One page of a customer's consents (the query string is signed with the path)."""
        query = {"user_pid": user_pid, "page_size": page_size, "page_token": page_token}
        return self.request("GET", "/v1/consents?" + urlencode({k: v for k, v in query.items() if v is not None}))

    def revoke_consent(self, consent_id):
        return self.request("POST", f"/v1/consents/{consent_id}/revoke", {})

    def request_deletion(self, customer_number):
        return self.request("POST", "/v1/deletion-requests", {"customer_number": customer_number})

    # a fulfilling partner's reports on catalogue fulfilments (docs/partner-api.md §5b)
    def confirm_fulfilment(self, fulfilment_id, reference=None):
        body = {} if reference is None else {"reference": reference}
        return self.request("POST", f"/v1/fulfilments/{fulfilment_id}/confirm", body)

    def fail_fulfilment(self, fulfilment_id, code, reference=None):
        body = {"code": code, **({} if reference is None else {"reference": reference})}
        return self.request("POST", f"/v1/fulfilments/{fulfilment_id}/fail", body)


def progress_line(total_expected: int | None = None, stream=sys.stderr):
    started = time.monotonic()

    def show(totals: SendTotals) -> None:
        rate = totals.total / max(time.monotonic() - started, 1e-6)
        of = f"/{total_expected}" if total_expected else ""
        stream.write(
            f"\r  sent {totals.total}{of}  accepted {totals.accepted}  duplicate {totals.duplicate}  "
            f"rejected {totals.rejected}  unavailable {totals.unavailable}  ({rate:.0f} records/s)"
        )
        stream.flush()

    return show
