from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ExchangeBatchRegistered(_message.Message):
    __slots__ = ("batch_id", "reduction_ids", "grams", "serial_start", "serial_end", "registered_at", "entry_ids", "merkle_root", "record_count", "period")
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
    def __init__(self, batch_id: _Optional[str] = ..., reduction_ids: _Optional[_Iterable[str]] = ..., grams: _Optional[int] = ..., serial_start: _Optional[str] = ..., serial_end: _Optional[str] = ..., registered_at: _Optional[str] = ..., entry_ids: _Optional[_Iterable[str]] = ..., merkle_root: _Optional[str] = ..., record_count: _Optional[int] = ..., period: _Optional[str] = ...) -> None: ...
