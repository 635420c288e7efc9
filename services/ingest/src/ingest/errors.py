"""Every machine-readable error code the HTTP API can answer, with its status, in one place.

The OpenAPI document and docs/partner-api.md list the same codes (a test keeps them in sync).
"""

CODES = {
    # request envelope (checked before any signature math)
    "body_too_large": 413,
    "batch_too_large": 413,
    "unsupported_media_type": 415,
    "malformed_json": 400,
    "invalid_utf8": 400,
    "nul_byte": 400,
    "too_deep": 400,
    "forbidden_key": 400,
    "duplicate_key": 400,
    "invalid_request": 400,
    # authentication
    "missing_auth_header": 401,
    "malformed_auth_header": 401,
    "invalid_timestamp": 401,
    "timestamp_out_of_window": 401,
    "unknown_partner": 401,
    "unknown_key": 401,
    "key_partner_mismatch": 401,
    "key_revoked": 401,
    "key_expired": 401,
    "signature_malformed": 401,
    "signature_out_of_range": 401,
    "signature_invalid": 401,
    "nonce_reused": 409,
    "unsupported_encryption": 400,
    "decryption_failed": 400,
    "partner_suspended": 403,
    "forbidden_for_partner_kind": 403,
    "rate_limited": 429,
    "overloaded": 503,
    "admin_unauthorized": 401,
    # records
    "unknown_scenario": 422,
    "unknown_field": 422,
    "missing_field": 422,
    "computed_field_not_allowed": 422,
    "invalid_value": 422,
    "out_of_range": 422,
    "future_occurred_at": 422,
    "stale_occurred_at": 422,
    "duplicate_in_batch": 422,
    "scenario_not_allowed": 403,
    "consent_required": 403,
    "outside_consent": 403,
    "record_conflict": 409,
    "records_rejected": 422,
    # consents / admin
    "consent_not_found": 404,
    "consent_conflict": 409,
    "partner_not_found": 404,
    "partner_conflict": 409,
    "key_conflict": 409,
    "key_not_found": 404,
    "not_found": 404,
    "method_not_allowed": 405,
    # availability
    "unavailable": 503,
    "internal_error": 500,
}


class ApiError(Exception):
    """An answer with a machine-readable code; `details` go into the JSON body as-is."""

    def __init__(self, code: str, message: str, **details):
        if code not in CODES:
            raise ValueError(f"unregistered error code {code}")
        super().__init__(message)
        self.code = code
        self.status = CODES[code]
        self.message = message
        self.details = details


class RecordError(Exception):
    """One record of a batch is invalid; the rest of the batch is judged on its own."""

    def __init__(self, code: str, message: str, field: str | None = None):
        if code not in CODES:
            raise ValueError(f"unregistered error code {code}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out
