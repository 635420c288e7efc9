from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntryRef(_message.Message):
    __slots__ = ("entry_id", "account_id", "owner_pid", "account_kind", "seq", "posted_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_KIND_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    POSTED_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    account_id: str
    owner_pid: str
    account_kind: str
    seq: int
    posted_at: str
    def __init__(self, entry_id: _Optional[str] = ..., account_id: _Optional[str] = ..., owner_pid: _Optional[str] = ..., account_kind: _Optional[str] = ..., seq: _Optional[int] = ..., posted_at: _Optional[str] = ...) -> None: ...

class AccountOpened(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: EntryRef
    def __init__(self, entry: _Optional[_Union[EntryRef, _Mapping]] = ...) -> None: ...

class AccountStatusChanged(_message.Message):
    __slots__ = ("entry", "status", "previous_status", "reason")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    entry: EntryRef
    status: str
    previous_status: str
    reason: str
    def __init__(self, entry: _Optional[_Union[EntryRef, _Mapping]] = ..., status: _Optional[str] = ..., previous_status: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AccountCredited(_message.Message):
    __slots__ = ("entry", "grams", "balance_after", "reason", "reduction_id", "record_key", "partner_id", "scenario", "occurred_at", "methodology_id", "methodology_version", "factor_set_id", "factor_set_version", "requested_grams", "capped_grams", "source_entry_id", "source_account_id")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_ID_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTOR_SET_ID_FIELD_NUMBER: _ClassVar[int]
    FACTOR_SET_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CAPPED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    entry: EntryRef
    grams: int
    balance_after: int
    reason: str
    reduction_id: str
    record_key: str
    partner_id: str
    scenario: str
    occurred_at: str
    methodology_id: str
    methodology_version: str
    factor_set_id: str
    factor_set_version: str
    requested_grams: int
    capped_grams: int
    source_entry_id: str
    source_account_id: str
    def __init__(self, entry: _Optional[_Union[EntryRef, _Mapping]] = ..., grams: _Optional[int] = ..., balance_after: _Optional[int] = ..., reason: _Optional[str] = ..., reduction_id: _Optional[str] = ..., record_key: _Optional[str] = ..., partner_id: _Optional[str] = ..., scenario: _Optional[str] = ..., occurred_at: _Optional[str] = ..., methodology_id: _Optional[str] = ..., methodology_version: _Optional[str] = ..., factor_set_id: _Optional[str] = ..., factor_set_version: _Optional[str] = ..., requested_grams: _Optional[int] = ..., capped_grams: _Optional[int] = ..., source_entry_id: _Optional[str] = ..., source_account_id: _Optional[str] = ...) -> None: ...

class AccountDebited(_message.Message):
    __slots__ = ("entry", "grams", "balance_after", "reason", "request_key", "reward_id", "reduction_id", "reversal_reason", "shortfall_grams")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    REVERSAL_REASON_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_GRAMS_FIELD_NUMBER: _ClassVar[int]
    entry: EntryRef
    grams: int
    balance_after: int
    reason: str
    request_key: str
    reward_id: str
    reduction_id: str
    reversal_reason: str
    shortfall_grams: int
    def __init__(self, entry: _Optional[_Union[EntryRef, _Mapping]] = ..., grams: _Optional[int] = ..., balance_after: _Optional[int] = ..., reason: _Optional[str] = ..., request_key: _Optional[str] = ..., reward_id: _Optional[str] = ..., reduction_id: _Optional[str] = ..., reversal_reason: _Optional[str] = ..., shortfall_grams: _Optional[int] = ...) -> None: ...

class ReductionCapped(_message.Message):
    __slots__ = ("entry", "reduction_id", "record_key", "scenario", "occurred_at", "requested_grams", "credited_grams", "cap_period", "cap_scope", "cap_max_grams", "cap_max_count")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CREDITED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CAP_PERIOD_FIELD_NUMBER: _ClassVar[int]
    CAP_SCOPE_FIELD_NUMBER: _ClassVar[int]
    CAP_MAX_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CAP_MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    entry: EntryRef
    reduction_id: str
    record_key: str
    scenario: str
    occurred_at: str
    requested_grams: int
    credited_grams: int
    cap_period: str
    cap_scope: str
    cap_max_grams: int
    cap_max_count: int
    def __init__(self, entry: _Optional[_Union[EntryRef, _Mapping]] = ..., reduction_id: _Optional[str] = ..., record_key: _Optional[str] = ..., scenario: _Optional[str] = ..., occurred_at: _Optional[str] = ..., requested_grams: _Optional[int] = ..., credited_grams: _Optional[int] = ..., cap_period: _Optional[str] = ..., cap_scope: _Optional[str] = ..., cap_max_grams: _Optional[int] = ..., cap_max_count: _Optional[int] = ...) -> None: ...

class ReductionDeclined(_message.Message):
    __slots__ = ("entry", "reduction_id", "record_key", "scenario", "code", "message", "duplicate_of_record_key")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_OF_RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    entry: EntryRef
    reduction_id: str
    record_key: str
    scenario: str
    code: str
    message: str
    duplicate_of_record_key: str
    def __init__(self, entry: _Optional[_Union[EntryRef, _Mapping]] = ..., reduction_id: _Optional[str] = ..., record_key: _Optional[str] = ..., scenario: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., duplicate_of_record_key: _Optional[str] = ...) -> None: ...

class TierChanged(_message.Message):
    __slots__ = ("entry", "previous_tier", "tier", "trailing_12m_grams")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_TIER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TRAILING_12M_GRAMS_FIELD_NUMBER: _ClassVar[int]
    entry: EntryRef
    previous_tier: str
    tier: str
    trailing_12m_grams: int
    def __init__(self, entry: _Optional[_Union[EntryRef, _Mapping]] = ..., previous_tier: _Optional[str] = ..., tier: _Optional[str] = ..., trailing_12m_grams: _Optional[int] = ...) -> None: ...

class PostedEntry(_message.Message):
    __slots__ = ("kind", "entry_id", "account_id", "posted_at", "grams", "scenario", "reduction_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    POSTED_AT_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    kind: str
    entry_id: str
    account_id: str
    posted_at: str
    grams: int
    scenario: str
    reduction_id: str
    def __init__(self, kind: _Optional[str] = ..., entry_id: _Optional[str] = ..., account_id: _Optional[str] = ..., posted_at: _Optional[str] = ..., grams: _Optional[int] = ..., scenario: _Optional[str] = ..., reduction_id: _Optional[str] = ...) -> None: ...

class EntriesPosted(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[PostedEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[PostedEntry, _Mapping]]] = ...) -> None: ...
