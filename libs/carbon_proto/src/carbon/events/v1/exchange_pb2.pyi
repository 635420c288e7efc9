from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExchangeBatchRef(_message.Message):
    __slots__ = ("batch_id", "methodology_id", "methodology_version", "vintage", "attempt", "record_count", "quantity_grams")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_ID_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    VINTAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_GRAMS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    methodology_id: str
    methodology_version: str
    vintage: int
    attempt: int
    record_count: int
    quantity_grams: int
    def __init__(self, batch_id: _Optional[str] = ..., methodology_id: _Optional[str] = ..., methodology_version: _Optional[str] = ..., vintage: _Optional[int] = ..., attempt: _Optional[int] = ..., record_count: _Optional[int] = ..., quantity_grams: _Optional[int] = ...) -> None: ...

class ExchangeBatchRegistered(_message.Message):
    __slots__ = ("batch_id", "reduction_ids", "grams", "serial_start", "serial_end", "registered_at", "entry_ids", "merkle_root", "record_count", "period", "methodology_id", "methodology_version", "vintage", "units", "carried_in_grams", "carried_from", "carried_out_grams", "consent_root", "serial_block", "serial_first", "serial_last", "attempt")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_IDS_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    SERIAL_START_FIELD_NUMBER: _ClassVar[int]
    SERIAL_END_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_IDS_FIELD_NUMBER: _ClassVar[int]
    MERKLE_ROOT_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_ID_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    VINTAGE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_IN_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_FROM_FIELD_NUMBER: _ClassVar[int]
    CARRIED_OUT_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ROOT_FIELD_NUMBER: _ClassVar[int]
    SERIAL_BLOCK_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIRST_FIELD_NUMBER: _ClassVar[int]
    SERIAL_LAST_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    reduction_ids: _containers.RepeatedScalarFieldContainer[str]
    grams: int
    serial_start: str
    serial_end: str
    registered_at: str
    entry_ids: _containers.RepeatedScalarFieldContainer[str]
    merkle_root: str
    record_count: int
    period: str
    methodology_id: str
    methodology_version: str
    vintage: int
    units: int
    carried_in_grams: int
    carried_from: str
    carried_out_grams: int
    consent_root: str
    serial_block: str
    serial_first: int
    serial_last: int
    attempt: int
    def __init__(self, batch_id: _Optional[str] = ..., reduction_ids: _Optional[_Iterable[str]] = ..., grams: _Optional[int] = ..., serial_start: _Optional[str] = ..., serial_end: _Optional[str] = ..., registered_at: _Optional[str] = ..., entry_ids: _Optional[_Iterable[str]] = ..., merkle_root: _Optional[str] = ..., record_count: _Optional[int] = ..., period: _Optional[str] = ..., methodology_id: _Optional[str] = ..., methodology_version: _Optional[str] = ..., vintage: _Optional[int] = ..., units: _Optional[int] = ..., carried_in_grams: _Optional[int] = ..., carried_from: _Optional[str] = ..., carried_out_grams: _Optional[int] = ..., consent_root: _Optional[str] = ..., serial_block: _Optional[str] = ..., serial_first: _Optional[int] = ..., serial_last: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class ExchangeBatchFormed(_message.Message):
    __slots__ = ("batch", "carried_in_grams", "carried_from", "merkle_root", "consent_root", "period", "formed_at", "retry_of")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CARRIED_IN_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_FROM_FIELD_NUMBER: _ClassVar[int]
    MERKLE_ROOT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ROOT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FORMED_AT_FIELD_NUMBER: _ClassVar[int]
    RETRY_OF_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    carried_in_grams: int
    carried_from: str
    merkle_root: str
    consent_root: str
    period: str
    formed_at: str
    retry_of: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., carried_in_grams: _Optional[int] = ..., carried_from: _Optional[str] = ..., merkle_root: _Optional[str] = ..., consent_root: _Optional[str] = ..., period: _Optional[str] = ..., formed_at: _Optional[str] = ..., retry_of: _Optional[str] = ...) -> None: ...

class ExchangeBatchSubmitted(_message.Message):
    __slots__ = ("batch", "submitted_at")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    submitted_at: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., submitted_at: _Optional[str] = ...) -> None: ...

class ExchangeBatchVerified(_message.Message):
    __slots__ = ("batch", "verified_at")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    verified_at: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., verified_at: _Optional[str] = ...) -> None: ...

class ExchangeBatchRejected(_message.Message):
    __slots__ = ("batch", "code", "reason", "rejected_at")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REJECTED_AT_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    code: str
    reason: str
    rejected_at: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., code: _Optional[str] = ..., reason: _Optional[str] = ..., rejected_at: _Optional[str] = ...) -> None: ...

class ExchangeBatchIssued(_message.Message):
    __slots__ = ("batch", "units", "serial_block", "serial_first", "serial_last", "carried_in_grams", "carried_from", "carried_out_grams", "issued_at", "record_id")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    SERIAL_BLOCK_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIRST_FIELD_NUMBER: _ClassVar[int]
    SERIAL_LAST_FIELD_NUMBER: _ClassVar[int]
    CARRIED_IN_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_FROM_FIELD_NUMBER: _ClassVar[int]
    CARRIED_OUT_GRAMS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    units: int
    serial_block: str
    serial_first: int
    serial_last: int
    carried_in_grams: int
    carried_from: str
    carried_out_grams: int
    issued_at: str
    record_id: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., units: _Optional[int] = ..., serial_block: _Optional[str] = ..., serial_first: _Optional[int] = ..., serial_last: _Optional[int] = ..., carried_in_grams: _Optional[int] = ..., carried_from: _Optional[str] = ..., carried_out_grams: _Optional[int] = ..., issued_at: _Optional[str] = ..., record_id: _Optional[str] = ...) -> None: ...

class ExchangeBatchReleased(_message.Message):
    __slots__ = ("batch", "reduction_ids", "code", "released_at", "next_batch_id")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_IDS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    reduction_ids: _containers.RepeatedScalarFieldContainer[str]
    code: str
    released_at: str
    next_batch_id: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., reduction_ids: _Optional[_Iterable[str]] = ..., code: _Optional[str] = ..., released_at: _Optional[str] = ..., next_batch_id: _Optional[str] = ...) -> None: ...

class ExchangeBatchWrittenOff(_message.Message):
    __slots__ = ("batch", "reduction_ids", "grams", "code", "written_off_at", "first_batch_id")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_IDS_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_OFF_AT_FIELD_NUMBER: _ClassVar[int]
    FIRST_BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    reduction_ids: _containers.RepeatedScalarFieldContainer[str]
    grams: int
    code: str
    written_off_at: str
    first_batch_id: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., reduction_ids: _Optional[_Iterable[str]] = ..., grams: _Optional[int] = ..., code: _Optional[str] = ..., written_off_at: _Optional[str] = ..., first_batch_id: _Optional[str] = ...) -> None: ...

class ExchangeUnitsMoved(_message.Message):
    __slots__ = ("batch", "request_key", "record_id", "units", "serial_block", "serial_first", "serial_last", "from_holder", "to_holder", "at")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    SERIAL_BLOCK_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIRST_FIELD_NUMBER: _ClassVar[int]
    SERIAL_LAST_FIELD_NUMBER: _ClassVar[int]
    FROM_HOLDER_FIELD_NUMBER: _ClassVar[int]
    TO_HOLDER_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    batch: ExchangeBatchRef
    request_key: str
    record_id: str
    units: int
    serial_block: str
    serial_first: int
    serial_last: int
    from_holder: str
    to_holder: str
    at: str
    def __init__(self, batch: _Optional[_Union[ExchangeBatchRef, _Mapping]] = ..., request_key: _Optional[str] = ..., record_id: _Optional[str] = ..., units: _Optional[int] = ..., serial_block: _Optional[str] = ..., serial_first: _Optional[int] = ..., serial_last: _Optional[int] = ..., from_holder: _Optional[str] = ..., to_holder: _Optional[str] = ..., at: _Optional[str] = ...) -> None: ...

class ExchangeBatchTransferred(_message.Message):
    __slots__ = ("units",)
    UNITS_FIELD_NUMBER: _ClassVar[int]
    units: ExchangeUnitsMoved
    def __init__(self, units: _Optional[_Union[ExchangeUnitsMoved, _Mapping]] = ...) -> None: ...

class ExchangeBatchRetired(_message.Message):
    __slots__ = ("units", "beneficiary", "reason")
    UNITS_FIELD_NUMBER: _ClassVar[int]
    BENEFICIARY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    units: ExchangeUnitsMoved
    beneficiary: str
    reason: str
    def __init__(self, units: _Optional[_Union[ExchangeUnitsMoved, _Mapping]] = ..., beneficiary: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExchangeBatchCancelled(_message.Message):
    __slots__ = ("units", "reason")
    UNITS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    units: ExchangeUnitsMoved
    reason: str
    def __init__(self, units: _Optional[_Union[ExchangeUnitsMoved, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
