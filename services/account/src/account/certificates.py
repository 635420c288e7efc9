"""Retirement certificates for the gRPC API (GetRetirementCertificate, docs/certificate.md §8).

The exchange bridge builds a certificate and its PDF (its RPC `certificate_pdf(owner_pid,
reduction_ids)`); this module decides which reductions to ask about, calls the bridge through
account.bridge_client, checks what came back, and turns the bridge's refusals into the API's
error codes. It reads the ledger and writes nothing.

Which reductions: those the request names, else every reduction of the account that
redemptions have consumed. Redemptions consume credits oldest first (account.provenance: the
state's cursor `fifo`), and only a credit a redemption consumed whole reaches the bank pool and
so the exchange: the credits below the cursor. They are read by `_id` (Queries.entries_after),
oldest first, at most MAX_GATHERED (the bridge takes 10,000 ids a call).

The certificate leaves as the UTF-8 text of its canonical JSON (carbon_common.canonical), the
bytes its digest is computed over; the bridge's digest is checked against that text here.
"""

import base64

from carbon_common import gm
from carbon_common.canonical import canonical_json

from account import provenance
from account.bridge_client import BridgeUnavailable, RemoteError
from account.grpc_validation import MAX_CERTIFICATE_REDUCTIONS
from account.ledger import CREDIT, InvalidRequest, LedgerError

RPC_METHOD = "certificate_pdf"
MAX_GATHERED = 10_000  # the bridge's bound of one call
PAGE = 1_000  # entries read per round trip (Queries.entries_after's bound)
MAX_ANSWER_BYTES = 4 * 1024 * 1024 - 64 * 1024  # under gRPC's default 4 MB a client receives
RESPONSE_MARGIN_SECONDS = 0.25  # of the caller's deadline, kept for sending the answer
# The bridge's InvalidRequest texts (exchange_bridge.certificate_pdf.answer): they are the only
# InvalidRequests left once this module sent an owner and 1..10,000 ids.
NO_BATCH_TEXT = "none of these reductions of the owner is in a batch with retired units"
UNVERIFIABLE_TEXT = "the certificate's signatures do not verify"


class NoRetiredUnits(LedgerError):
    code = "no_retired_units"


class TooManyReductions(LedgerError):
    code = "too_many_reductions"


class CertificateUnverifiable(LedgerError):
    code = "certificate_unverifiable"


class CertificateTooLarge(Exception):
    code = "certificate_too_large"


class Certificates:
    def __init__(self, ledger, bridge):
        self.ledger = ledger  # dependencies.Ledger
        self.bridge = bridge  # bridge_client.BridgeClient, or None when AMQP_URI is not set

    def consumed_reduction_ids(self, account_id: str) -> list[str]:
        """The reduction ids of the account's credits that redemptions consumed whole, oldest
        first; TooManyReductions beyond MAX_GATHERED."""
        state = self.ledger.ops.appender.head(account_id)
        reader = provenance.ChainReader(self.ledger.repo, account_id, state["seq"])
        frontier = provenance.cursor_of(state, reader)[0]  # credits below it were consumed whole
        ids, after = [], 0
        while after < frontier - 1:
            page = self.ledger.queries.entries_after(
                account_id, after, min(PAGE, frontier - 1 - after), types=(CREDIT,)
            )
            if page["last_seq"] <= after:
                break  # a gap below the head: nothing more to read
            ids.extend(e["reduction_id"] for e in page["entries"] if e.get("reduction_id"))
            if len(ids) > MAX_GATHERED:
                raise TooManyReductions(
                    f"the account has more than {MAX_GATHERED} redeemed reductions: "
                    f"name at most {MAX_CERTIFICATE_REDUCTIONS} in reduction_ids per call"
                )
            after = page["last_seq"]
        return ids

    def of(self, account_id: str, reduction_ids: list[str], fmt: str, timeout: float | None) -> dict:
        """The fields of a RetirementCertificate for the account, or an error with its code."""
        account = self.ledger.repo.get_account(account_id)
        if account is None:
            raise LookupError(account_id)
        if account["kind"] == "pool":
            raise InvalidRequest("a certificate is an owner's, not the pool account's", "invalid_account")
        ids = list(dict.fromkeys(reduction_ids)) or self.consumed_reduction_ids(account_id)
        if not ids:
            raise NoRetiredUnits("no reduction of the account has been redeemed, so none is in a retired unit")
        if self.bridge is None:
            raise BridgeUnavailable(
                "AMQP_URI is not set: the exchange bridge cannot be called", "bridge_not_configured"
            )
        owner_pid = account["owner_pid"]
        wait = None if timeout is None else timeout - RESPONSE_MARGIN_SECONDS
        try:
            answer = self.bridge.call(RPC_METHOD, owner_pid, ids, fmt == "json_pdf", timeout=wait)
        except RemoteError as error:
            raise refusal_of(error) from None
        certificate = answer["certificate"]
        text = canonical_json(certificate)
        if gm.sm3_hex(text.encode("utf-8")) != answer["digest"] or certificate.get("owner_pid") != owner_pid:
            raise RuntimeError("the exchange bridge's certificate does not match its digest or its owner")
        pdf = base64.b64decode(answer["pdf_base64"]) if fmt == "json_pdf" else b""
        if len(text.encode("utf-8")) + len(pdf) > MAX_ANSWER_BYTES:
            raise CertificateTooLarge(
                "the certificate is larger than 4 MB: name fewer reduction_ids, or ask for format json"
            )
        return {
            "account_id": account_id,
            "owner_pid": owner_pid,
            "certificate_json": text,
            "digest": answer["digest"],
            "bank_key_fingerprint": answer["bank_key_fingerprint"],
            "registry_key_fingerprint": answer["registry_key_fingerprint"],
            "json_filename": answer["json_filename"],
            "pdf_filename": answer["pdf_filename"],
            "pdf": pdf,
            "certificate_format": certificate["format"],
            "issued_at": certificate["issued_at"],
            "total_grams": certificate["total_grams"],
        }


def refusal_of(error: RemoteError) -> Exception:
    """The API's error for an error the bridge raised (its EXPECTED exceptions,
    exchange_bridge.errors); anything else is a fault (INTERNAL, logged without the text)."""
    if error.exc_type == "InvalidRequest" and error.text.startswith(NO_BATCH_TEXT):
        return NoRetiredUnits("none of these reductions of the owner is in a batch with retired units")
    if error.exc_type == "InvalidRequest" and error.text.startswith(UNVERIFIABLE_TEXT):
        return CertificateUnverifiable(
            "the certificate's signatures do not verify with the bank's keys of its batches and the registry's published keys"
        )
    if error.exc_type == "OutcomeUnknown":
        return BridgeUnavailable("the exchange registry did not answer the bridge: retry", "registry_unavailable")
    if error.exc_type in ("MethodNotFound", "UnknownService", "IncorrectSignature"):
        return BridgeUnavailable("the exchange bridge does not offer certificate_pdf (an older version?)")
    return error
