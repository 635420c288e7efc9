"""HTTP client of the exchange's batch API (the sandbox in dev/tests): SM2-signed submissions,
retried with backoff on 503 and network errors. Safe to repeat: the exchange is idempotent by
batch_id, so a retry after a lost answer returns the serial block already issued."""

import logging
import time

import requests

from carbon_common import gm
from carbon_common.canonical import canonical_bytes
from exchange_bridge import metrics

log = logging.getLogger(__name__)
RETRYABLE = (502, 503, 504)


class SubmissionFailed(RuntimeError):
    """The exchange did not register the batch this time (it stays pending for the next run)."""


class Signer:
    """SM2 key pair of the bank's submissions; the public key is checked against the private one."""

    def __init__(self, private_hex: str, public_hex: str):
        if gm.public_key_of(private_hex).lower() != public_hex.lower():
            raise SystemExit("BRIDGE_SM2_PUBLIC_KEY is not the public key of BRIDGE_SM2_PRIVATE_KEY")
        self.private_hex, self.public_hex = private_hex, public_hex

    def sign(self, batch: dict) -> str:
        """SM2 over the batch's canonical JSON (the exchange verifies the same bytes)."""
        return gm.sm2_sign(self.private_hex, canonical_bytes(batch)).hex()


class ExchangeClient:
    def __init__(self, base_url: str, attempts: int = 5, backoff: float = 0.2, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.attempts, self.backoff, self.timeout = max(1, attempts), backoff, timeout
        self.session = requests.Session()

    def submit(self, signed: dict) -> dict:
        """{batch, signature, public_key} -> the exchange's record {batch_id, status, serial_start, …}."""
        url = f"{self.base_url}/v1/batches"
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.post(url, json=signed, timeout=self.timeout)
            except requests.RequestException as exc:
                metrics.SUBMISSIONS.labels("error").inc()
                last = f"network error: {type(exc).__name__}"
            else:
                if response.status_code == 200:
                    metrics.SUBMISSIONS.labels("registered").inc()
                    return response.json()
                if response.status_code not in RETRYABLE:
                    metrics.SUBMISSIONS.labels("rejected").inc()
                    raise SubmissionFailed(f"exchange refused batch: {response.status_code} {response.text[:200]}")
                metrics.SUBMISSIONS.labels("retry").inc()
                last = f"exchange answered {response.status_code}"
            if attempt < self.attempts:
                log.warning("exchange submission will be retried", extra={"attempt": attempt, "reason": last})
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 5.0))
        raise SubmissionFailed(f"exchange unavailable after {self.attempts} attempts: {last}")
