from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CatalogueFulfilmentRequested(_message.Message):
    __slots__ = ("fulfilment_id", "partner_id", "item_id", "item_version", "item_kind", "title", "owner_pid", "account_id", "price_grams", "redeemed_at", "fulfil_by", "on_expiry")
    FULFILMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_VERSION_FIELD_NUMBER: _ClassVar[int]
    ITEM_KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_GRAMS_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_AT_FIELD_NUMBER: _ClassVar[int]
    FULFIL_BY_FIELD_NUMBER: _ClassVar[int]
    ON_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    fulfilment_id: str
    partner_id: str
    item_id: str
    item_version: int
    item_kind: str
    title: str
    owner_pid: str
    account_id: str
    price_grams: int
    redeemed_at: str
    fulfil_by: str
    on_expiry: str
    def __init__(self, fulfilment_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., item_id: _Optional[str] = ..., item_version: _Optional[int] = ..., item_kind: _Optional[str] = ..., title: _Optional[str] = ..., owner_pid: _Optional[str] = ..., account_id: _Optional[str] = ..., price_grams: _Optional[int] = ..., redeemed_at: _Optional[str] = ..., fulfil_by: _Optional[str] = ..., on_expiry: _Optional[str] = ...) -> None: ...

class CatalogueFulfilmentClosed(_message.Message):
    __slots__ = ("fulfilment_id", "partner_id", "item_id", "owner_pid", "account_id", "outcome", "code", "fate", "grams", "refund_entry_id", "closed_at")
    FULFILMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    FATE_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    REFUND_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    fulfilment_id: str
    partner_id: str
    item_id: str
    owner_pid: str
    account_id: str
    outcome: str
    code: str
    fate: str
    grams: int
    refund_entry_id: str
    closed_at: str
    def __init__(self, fulfilment_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., item_id: _Optional[str] = ..., owner_pid: _Optional[str] = ..., account_id: _Optional[str] = ..., outcome: _Optional[str] = ..., code: _Optional[str] = ..., fate: _Optional[str] = ..., grams: _Optional[int] = ..., refund_entry_id: _Optional[str] = ..., closed_at: _Optional[str] = ...) -> None: ...
