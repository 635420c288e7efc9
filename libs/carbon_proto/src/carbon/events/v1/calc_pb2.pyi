from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Cap(_message.Message):
    __slots__ = ("period", "max_grams", "max_count", "scope", "scope_key")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAMS_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_KEY_FIELD_NUMBER: _ClassVar[int]
    period: str
    max_grams: int
    max_count: int
    scope: str
    scope_key: str
    def __init__(self, period: _Optional[str] = ..., max_grams: _Optional[int] = ..., max_count: _Optional[int] = ..., scope: _Optional[str] = ..., scope_key: _Optional[str] = ...) -> None: ...

class ReductionCalculated(_message.Message):
    __slots__ = ("reduction_id", "record_key", "revision", "supersedes", "partner_id", "partner_record_id", "user_pid", "consent_id", "scenario", "occurred_at", "grams", "methodology_id", "methodology_version", "factor_set_id", "factor_set_version", "factors", "inputs", "baseline_g", "project_g", "caps", "dedup_key")
    class FactorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class InputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_PID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_ID_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTOR_SET_ID_FIELD_NUMBER: _ClassVar[int]
    FACTOR_SET_VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_G_FIELD_NUMBER: _ClassVar[int]
    PROJECT_G_FIELD_NUMBER: _ClassVar[int]
    CAPS_FIELD_NUMBER: _ClassVar[int]
    DEDUP_KEY_FIELD_NUMBER: _ClassVar[int]
    reduction_id: str
    record_key: str
    revision: int
    supersedes: str
    partner_id: str
    partner_record_id: str
    user_pid: str
    consent_id: str
    scenario: str
    occurred_at: str
    grams: int
    methodology_id: str
    methodology_version: str
    factor_set_id: str
    factor_set_version: str
    factors: _containers.ScalarMap[str, str]
    inputs: _containers.ScalarMap[str, str]
    baseline_g: str
    project_g: str
    caps: _containers.RepeatedCompositeFieldContainer[Cap]
    dedup_key: str
    def __init__(self, reduction_id: _Optional[str] = ..., record_key: _Optional[str] = ..., revision: _Optional[int] = ..., supersedes: _Optional[str] = ..., partner_id: _Optional[str] = ..., partner_record_id: _Optional[str] = ..., user_pid: _Optional[str] = ..., consent_id: _Optional[str] = ..., scenario: _Optional[str] = ..., occurred_at: _Optional[str] = ..., grams: _Optional[int] = ..., methodology_id: _Optional[str] = ..., methodology_version: _Optional[str] = ..., factor_set_id: _Optional[str] = ..., factor_set_version: _Optional[str] = ..., factors: _Optional[_Mapping[str, str]] = ..., inputs: _Optional[_Mapping[str, str]] = ..., baseline_g: _Optional[str] = ..., project_g: _Optional[str] = ..., caps: _Optional[_Iterable[_Union[Cap, _Mapping]]] = ..., dedup_key: _Optional[str] = ...) -> None: ...

class ReductionReversed(_message.Message):
    __slots__ = ("reduction_id", "record_key", "user_pid", "scenario", "reason", "corrected_by_version", "corrected_grams")
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_PID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    reduction_id: str
    record_key: str
    user_pid: str
    scenario: str
    reason: str
    corrected_by_version: str
    corrected_grams: int
    def __init__(self, reduction_id: _Optional[str] = ..., record_key: _Optional[str] = ..., user_pid: _Optional[str] = ..., scenario: _Optional[str] = ..., reason: _Optional[str] = ..., corrected_by_version: _Optional[str] = ..., corrected_grams: _Optional[int] = ...) -> None: ...

class ReductionReversalRefused(_message.Message):
    __slots__ = ("reduction_id", "record_key", "user_pid", "scenario", "code", "batch_id", "corrected_by_version", "original_grams", "corrected_grams")
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    USER_PID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    reduction_id: str
    record_key: str
    user_pid: str
    scenario: str
    code: str
    batch_id: str
    corrected_by_version: str
    original_grams: int
    corrected_grams: int
    def __init__(self, reduction_id: _Optional[str] = ..., record_key: _Optional[str] = ..., user_pid: _Optional[str] = ..., scenario: _Optional[str] = ..., code: _Optional[str] = ..., batch_id: _Optional[str] = ..., corrected_by_version: _Optional[str] = ..., original_grams: _Optional[int] = ..., corrected_grams: _Optional[int] = ...) -> None: ...

class BehaviourRejected(_message.Message):
    __slots__ = ("record_key", "partner_id", "partner_record_id", "user_pid", "scenario", "code", "message", "methodology_id", "methodology_version")
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_PID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_ID_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    record_key: str
    partner_id: str
    partner_record_id: str
    user_pid: str
    scenario: str
    code: str
    message: str
    methodology_id: str
    methodology_version: str
    def __init__(self, record_key: _Optional[str] = ..., partner_id: _Optional[str] = ..., partner_record_id: _Optional[str] = ..., user_pid: _Optional[str] = ..., scenario: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., methodology_id: _Optional[str] = ..., methodology_version: _Optional[str] = ...) -> None: ...
