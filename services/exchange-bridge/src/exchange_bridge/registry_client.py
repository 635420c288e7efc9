"""The bridge's client of the registry API (docs/registry-api.md), signing as the bank.

Errors are typed so the caller knows what it may do next:
  Rejected(code, reason)  the registry refused (any 4xx), or stored the batch as rejected:
                          retrying the same request cannot succeed.
  Unknown                 no answer after every attempt (network errors, timeouts, 5xx): the
                          request may or may not have been done. For a batch, ask `status`
                          before re-submitting; every other operation is idempotent by its id.
`submit` itself asks the status before each retry whose first try's outcome is unknown, so a
batch whose answer was lost is found rather than sent again (sending again would be harmless:
the registry is idempotent by batch id).
"""

import logging
import time
from urllib.parse import urlencode

import requests

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge.registry.signing import sign_headers

log = logging.getLogger(__name__)


class RegistryError(Exception):
    pass


class Rejected(RegistryError):
    def __init__(self, code: str, reason: str, status: int = 0):
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.status = code, reason, status


class Unknown(RegistryError):
    """The outcome is unknown (no answer or 5xx after every attempt)."""


class RegistryClient:
    def __init__(
        self,
        base_url: str,
        participant: str,
        key_id: str,
        private_key: str,
        attempts: int = 5,
        backoff: float = 0.2,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.participant, self.key_id, self.private_key = participant, key_id, private_key
        self.attempts, self.backoff, self.timeout = max(1, attempts), backoff, timeout
        self.session = session or requests.Session()

    # -- transport ---------------------------------------------------------------------
    def _send(self, method: str, path: str, body=None, query: dict | None = None) -> requests.Response:
        """One signed request, freshly signed (new nonce and timestamp) on every attempt."""
        target = path + (f"?{urlencode(query)}" if query else "")
        raw = canonical_bytes(body) if body is not None else b""
        headers = sign_headers(self.participant, self.key_id, self.private_key, method, target, raw)
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.session.request(method, self.base_url + target, data=raw, headers=headers, timeout=self.timeout)

    def _pause(self, attempt: int) -> None:
        time.sleep(min(self.backoff * 2 ** (attempt - 1), 5.0))

    @staticmethod
    def _refusal(response: requests.Response) -> Rejected:
        try:
            body = response.json()
            return Rejected(body.get("code", "http_error"), body.get("message", ""), response.status_code)
        except ValueError:
            return Rejected("http_error", response.text[:200], response.status_code)

    def _call(self, method: str, path: str, body=None, query=None, missing_ok=False, attempts=None):
        last = ""
        attempts = attempts or self.attempts
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(method, path, body, query)
            except requests.RequestException as error:
                last = f"network error: {type(error).__name__}"
            else:
                if response.status_code < 300:
                    return response.json()
                if response.status_code == 404 and missing_ok:
                    return None
                if response.status_code < 500:
                    raise self._refusal(response)
                last = f"registry answered {response.status_code}"
            if attempt < attempts:
                log.warning("registry call will be retried", extra={"path": path, "attempt": attempt, "reason": last})
                self._pause(attempt)
        raise Unknown(f"{method} {path}: no outcome after {attempts} attempts ({last})")

    # -- batches -------------------------------------------------------------------------
    def submit(self, submission: dict) -> dict:
        """{batch, leaves, consents|consent_leaves, signature, key_id} -> the batch's record
        (status issued). Rejected when refused or rejected; Unknown when no outcome is known."""
        batch_id = submission["batch"]["batch_id"]
        last = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:  # the previous try's outcome is unknown: look before sending again
                try:
                    found = self._call("GET", f"/v1/batches/{batch_id}", missing_ok=True, attempts=1)
                except Unknown as error:
                    last = str(error)
                    self._pause(attempt)
                    continue
                if found is not None:
                    return self._outcome(found)
            try:
                response = self._send("POST", "/v1/batches", submission)
            except requests.RequestException as error:
                last = f"network error: {type(error).__name__}"
            else:
                if response.status_code < 300:
                    return self._outcome(response.json())
                if response.status_code < 500:
                    raise self._refusal(response)
                last = f"registry answered {response.status_code}"
            if attempt < self.attempts:
                self._pause(attempt)
        raise Unknown(f"batch {batch_id}: outcome unknown after {self.attempts} attempts ({last})")

    @staticmethod
    def _outcome(record: dict) -> dict:
        if record["status"] == "rejected":
            raise Rejected("rejected", record.get("reason", ""))
        return record

    def status(self, batch_id: str) -> dict | None:
        """The batch's record (any state, rejected included), None when the registry has none."""
        return self._call("GET", f"/v1/batches/{batch_id}", missing_ok=True)

    # -- units ---------------------------------------------------------------------------
    def transfer(self, transfer_id: str, batch_id: str, units: int, to_holder: str) -> dict:
        body = {"transfer_id": transfer_id, "batch_id": batch_id, "units": units, "to_holder": to_holder}
        return self._call("POST", "/v1/transfers", body)

    def retire(self, retirement_id: str, batch_id: str, units: int, beneficiary: str, reason: str) -> dict:
        body = {"retirement_id": retirement_id, "batch_id": batch_id, "units": units}
        return self._call("POST", "/v1/retirements", dict(body, beneficiary=beneficiary, reason=reason))

    def cancel(self, cancellation_id: str, batch_id: str, units: int, reason: str) -> dict:
        body = {"cancellation_id": cancellation_id, "batch_id": batch_id, "units": units, "reason": reason}
        return self._call("POST", "/v1/cancellations", body)

    def record(self, op_id: str) -> dict | None:
        return self._call("GET", f"/v1/records/{op_id}", missing_ok=True)

    def holdings(self, holder: str | None = None) -> dict:
        return self._call("GET", f"/v1/holdings/{holder or self.participant}")

    def transactions(self, after: int = 0, limit: int = 100) -> dict:
        """{transactions: [...], after: <pass back for the next page>}."""
        return self._call("GET", "/v1/transactions", query={"after": after, "limit": limit})

    # -- keys ----------------------------------------------------------------------------
    def register_key(self, key_id: str, public_key: str) -> dict:
        """Add a key (rotation), signed with the current one; switch with `use_key` afterwards."""
        return self._call("POST", "/v1/keys", {"key_id": key_id, "public_key": public_key})

    def revoke_key(self, key_id: str, reason: str = "") -> dict:
        return self._call("POST", f"/v1/keys/{key_id}/revoke", {"reason": reason})

    def use_key(self, key_id: str, private_key: str) -> None:
        self.key_id, self.private_key = key_id, private_key

    def public_key(self) -> dict:
        return self.session.get(f"{self.base_url}/v1/public-key", timeout=self.timeout).json()


def signed_submission(batch: dict, leaves: list[dict], consents, key_id: str, private_key: str) -> dict:
    """The POST /v1/batches body: `consents` is [{reduction_id, consent_id}] or, to keep consent
    ids private, the list of consent leaf hashes. The batch is signed over its canonical JSON."""
    key = "consents" if consents and isinstance(consents[0], dict) else "consent_leaves"
    signature = gm.sm2_sign(private_key, canonical_bytes(batch)).hex()
    return {"batch": batch, "leaves": leaves, key: consents, "signature": signature, "key_id": key_id}
