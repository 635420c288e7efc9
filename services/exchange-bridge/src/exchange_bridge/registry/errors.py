"""Every machine-readable error code of the registry API, with its HTTP status, in one place.

docs/registry-openapi.yaml and docs/registry-api.md list the same codes (a test keeps them in
sync). Every error body is {"code", "message"}.
"""

CODES = {
    # request envelope
    "malformed_json": 400,
    "invalid_request": 400,
    "body_too_large": 413,
    "not_found": 404,
    "method_not_allowed": 405,
    # bank authentication (headers, key, signature, replay)
    "missing_auth_header": 401,
    "malformed_auth_header": 401,
    "timestamp_out_of_window": 401,
    "unknown_participant": 401,
    "unknown_key": 401,
    "signature_invalid": 401,
    "key_revoked": 403,
    "nonce_reused": 409,
    # admin
    "admin_unauthorized": 401,
    "admin_disabled": 403,
    "participant_conflict": 409,
    "key_conflict": 409,
    "unknown_holder": 404,
    # batches: the batch itself
    "unsupported_format": 422,
    "invalid_leaf": 422,
    "duplicate_leaf": 422,
    "mixed_group": 422,
    "unknown_methodology": 422,
    "record_count_mismatch": 422,
    "quantity_mismatch": 422,
    "merkle_root_mismatch": 422,
    "consent_mismatch": 422,
    "consent_root_mismatch": 422,
    "batch_id_mismatch": 422,
    "period_mismatch": 422,
    "batch_key_not_owned": 403,
    "batch_signature_invalid": 422,
    # batches: against what the registry holds
    "batch_conflict": 409,
    "duplicate_reduction": 409,
    "carried_mismatch": 409,
    # transfers, retirements, cancellations
    "operation_conflict": 409,
    "batch_not_issued": 409,
    "insufficient_units": 409,
    "contention": 503,
    # the registry itself
    "internal_error": 500,
    "injected_fault": 503,
}


class ApiError(Exception):
    """An answer {code, message} with the status CODES gives the code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message, self.status = code, message, CODES[code]

    def body(self) -> dict:
        return {"code": self.code, "message": self.message}
