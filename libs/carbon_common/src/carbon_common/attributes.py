"""The platform's own span attribute names, registered here before use (docs/telemetry.md).

Never put personal data in attributes: record keys and pseudonyms only.
"""

EVENT_TYPE = "carbon.event.type"
EVENT_ID = "carbon.event.id"
RECORD_KEY = "carbon.record.key"
PARTNER_ID = "carbon.partner.id"
SCENARIO = "carbon.scenario"
REDUCTION_ID = "carbon.reduction.id"
GRAMS = "carbon.grams"
METHODOLOGY = "carbon.methodology.id"
METHODOLOGY_VERSION = "carbon.methodology.version"
ACCOUNT_ID = "carbon.account.id"
LEDGER_ENTRY_ID = "carbon.ledger.entry_id"
OUTCOME = "carbon.outcome"
BATCH_ID = "carbon.exchange.batch_id"
DELIVERY_ATTEMPT = "carbon.delivery.attempt"
REJECTION_CODE = "carbon.rejection.code"

ALL = {v for k, v in dict(globals()).items() if k.isupper()}

# Payload fields that identify a record's journey (never personal data) -> span attribute.
_FROM_PAYLOAD = {
    "record_key": RECORD_KEY,
    "partner_id": PARTNER_ID,
    "scenario": SCENARIO,
    "reduction_id": REDUCTION_ID,
    "methodology_id": METHODOLOGY,
    "methodology_version": METHODOLOGY_VERSION,
    "batch_id": BATCH_ID,
}


def from_payload(data) -> dict:
    """Span attributes for an event payload, so an SRE can search Jaeger by record key."""
    if not isinstance(data, dict):
        return {}
    return {attr: str(data[field]) for field, attr in _FROM_PAYLOAD.items() if data.get(field) not in (None, "")}
