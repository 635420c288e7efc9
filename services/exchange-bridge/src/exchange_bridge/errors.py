"""Errors the bridge's RPCs raise on purpose (nameko `expected_exceptions`: no error log)."""


class BridgeError(Exception):
    code = "bridge_error"


class InvalidRequest(BridgeError, ValueError):
    code = "invalid_request"


class NotIssued(BridgeError, LookupError):
    """The batch is unknown to the bridge or has no issued units yet."""

    code = "batch_not_issued"


class RequestKeyReused(BridgeError):
    """The request key was used for another operation: keys are never reused."""

    code = "request_key_reused"


class OperationRefused(BridgeError):
    """The registry refused the operation (its code and message); retrying cannot succeed."""

    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code, self.reason = code, reason


class OutcomeUnknown(BridgeError):
    """No answer from the registry: call again with the same request key (it is idempotent)."""

    code = "outcome_unknown"


EXPECTED = (InvalidRequest, NotIssued, RequestKeyReused, OperationRefused, OutcomeUnknown)
