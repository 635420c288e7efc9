from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class BehaviourReceived(_message.Message):
    __slots__ = ("record_key", "partner_id", "partner_record_id", "user_pid", "consent_id", "scenario", "occurred_at", "received_at", "activity")
    class ActivityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_PID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    record_key: str
    partner_id: str
    partner_record_id: str
    user_pid: str
    consent_id: str
    scenario: str
    occurred_at: str
    received_at: str
    activity: _containers.ScalarMap[str, str]
    def __init__(self, record_key: _Optional[str] = ..., partner_id: _Optional[str] = ..., partner_record_id: _Optional[str] = ..., user_pid: _Optional[str] = ..., consent_id: _Optional[str] = ..., scenario: _Optional[str] = ..., occurred_at: _Optional[str] = ..., received_at: _Optional[str] = ..., activity: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PersonalDataDeleted(_message.Message):
    __slots__ = ("user_pid", "requested_at")
    USER_PID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    user_pid: str
    requested_at: str
    def __init__(self, user_pid: _Optional[str] = ..., requested_at: _Optional[str] = ...) -> None: ...

class ConsentRevoked(_message.Message):
    __slots__ = ("consent_id", "user_pid", "partner_id", "scenarios", "revoked_at")
    CONSENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_PID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    consent_id: str
    user_pid: str
    partner_id: str
    scenarios: _containers.RepeatedScalarFieldContainer[str]
    revoked_at: str
    def __init__(self, consent_id: _Optional[str] = ..., user_pid: _Optional[str] = ..., partner_id: _Optional[str] = ..., scenarios: _Optional[_Iterable[str]] = ..., revoked_at: _Optional[str] = ...) -> None: ...

class FulfilmentReported(_message.Message):
    __slots__ = ("fulfilment_id", "partner_id", "outcome", "code", "reference", "reported_at")
    FULFILMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    fulfilment_id: str
    partner_id: str
    outcome: str
    code: str
    reference: str
    reported_at: str
    def __init__(self, fulfilment_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., outcome: _Optional[str] = ..., code: _Optional[str] = ..., reference: _Optional[str] = ..., reported_at: _Optional[str] = ...) -> None: ...
