from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccountRef(_message.Message):
    __slots__ = ("account_id", "owner_pid")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    owner_pid: str
    def __init__(self, account_id: _Optional[str] = ..., owner_pid: _Optional[str] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("account_id", "owner_pid", "kind", "status", "opened_at", "balance_grams", "tier", "trailing_12m_grams")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_GRAMS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TRAILING_12M_GRAMS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    owner_pid: str
    kind: str
    status: str
    opened_at: str
    balance_grams: int
    tier: str
    trailing_12m_grams: int
    def __init__(self, account_id: _Optional[str] = ..., owner_pid: _Optional[str] = ..., kind: _Optional[str] = ..., status: _Optional[str] = ..., opened_at: _Optional[str] = ..., balance_grams: _Optional[int] = ..., tier: _Optional[str] = ..., trailing_12m_grams: _Optional[int] = ...) -> None: ...

class ListAccountsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAccountsResponse(_message.Message):
    __slots__ = ("accounts", "next_page_token")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[Account]
    next_page_token: str
    def __init__(self, accounts: _Optional[_Iterable[_Union[Account, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("account_id", "balance_grams", "as_of_seq", "status", "tier")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_GRAMS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_SEQ_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    balance_grams: int
    as_of_seq: int
    status: str
    tier: str
    def __init__(self, account_id: _Optional[str] = ..., balance_grams: _Optional[int] = ..., as_of_seq: _Optional[int] = ..., status: _Optional[str] = ..., tier: _Optional[str] = ...) -> None: ...

class ListEntriesRequest(_message.Message):
    __slots__ = ("account", "page_size", "page_token", "types", "scenario", "posted_from", "posted_to")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    POSTED_FROM_FIELD_NUMBER: _ClassVar[int]
    POSTED_TO_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    page_size: int
    page_token: str
    types: _containers.RepeatedScalarFieldContainer[str]
    scenario: str
    posted_from: str
    posted_to: str
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., scenario: _Optional[str] = ..., posted_from: _Optional[str] = ..., posted_to: _Optional[str] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("entry_id", "seq", "type", "grams", "balance_after", "posted_at", "reduction_id", "record_key", "partner_id", "scenario", "occurred_at", "methodology_id", "methodology_version", "factor_set_version", "requested_grams", "capped_grams", "code", "request_key", "reward_id", "hash")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    POSTED_AT_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_ID_FIELD_NUMBER: _ClassVar[int]
    METHODOLOGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTOR_SET_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CAPPED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    seq: int
    type: str
    grams: int
    balance_after: int
    posted_at: str
    reduction_id: str
    record_key: str
    partner_id: str
    scenario: str
    occurred_at: str
    methodology_id: str
    methodology_version: str
    factor_set_version: str
    requested_grams: int
    capped_grams: int
    code: str
    request_key: str
    reward_id: str
    hash: str
    def __init__(self, entry_id: _Optional[str] = ..., seq: _Optional[int] = ..., type: _Optional[str] = ..., grams: _Optional[int] = ..., balance_after: _Optional[int] = ..., posted_at: _Optional[str] = ..., reduction_id: _Optional[str] = ..., record_key: _Optional[str] = ..., partner_id: _Optional[str] = ..., scenario: _Optional[str] = ..., occurred_at: _Optional[str] = ..., methodology_id: _Optional[str] = ..., methodology_version: _Optional[str] = ..., factor_set_version: _Optional[str] = ..., requested_grams: _Optional[int] = ..., capped_grams: _Optional[int] = ..., code: _Optional[str] = ..., request_key: _Optional[str] = ..., reward_id: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class ListEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetStatementRequest(_message.Message):
    __slots__ = ("account", "month")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    month: str
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., month: _Optional[str] = ...) -> None: ...

class ScenarioLine(_message.Message):
    __slots__ = ("scenario", "credited_grams", "credited_count", "capped_grams", "capped_count", "declined_count", "reversed_grams")
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    CREDITED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CREDITED_COUNT_FIELD_NUMBER: _ClassVar[int]
    CAPPED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CAPPED_COUNT_FIELD_NUMBER: _ClassVar[int]
    DECLINED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REVERSED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    scenario: str
    credited_grams: int
    credited_count: int
    capped_grams: int
    capped_count: int
    declined_count: int
    reversed_grams: int
    def __init__(self, scenario: _Optional[str] = ..., credited_grams: _Optional[int] = ..., credited_count: _Optional[int] = ..., capped_grams: _Optional[int] = ..., capped_count: _Optional[int] = ..., declined_count: _Optional[int] = ..., reversed_grams: _Optional[int] = ...) -> None: ...

class Statement(_message.Message):
    __slots__ = ("account_id", "month", "opening_balance", "closing_balance", "scenarios", "redeemed_grams", "credited_grams", "reversed_grams", "catalogue")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    OPENING_BALANCE_FIELD_NUMBER: _ClassVar[int]
    CLOSING_BALANCE_FIELD_NUMBER: _ClassVar[int]
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CREDITED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    REVERSED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    month: str
    opening_balance: int
    closing_balance: int
    scenarios: _containers.RepeatedCompositeFieldContainer[ScenarioLine]
    redeemed_grams: int
    credited_grams: int
    reversed_grams: int
    catalogue: _containers.RepeatedCompositeFieldContainer[CatalogueStatementLine]
    def __init__(self, account_id: _Optional[str] = ..., month: _Optional[str] = ..., opening_balance: _Optional[int] = ..., closing_balance: _Optional[int] = ..., scenarios: _Optional[_Iterable[_Union[ScenarioLine, _Mapping]]] = ..., redeemed_grams: _Optional[int] = ..., credited_grams: _Optional[int] = ..., reversed_grams: _Optional[int] = ..., catalogue: _Optional[_Iterable[_Union[CatalogueStatementLine, _Mapping]]] = ...) -> None: ...

class CatalogueStatementLine(_message.Message):
    __slots__ = ("item_id", "title", "redeemed_count", "redeemed_grams", "refunded_count", "refunded_grams")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    title: str
    redeemed_count: int
    redeemed_grams: int
    refunded_count: int
    refunded_grams: int
    def __init__(self, item_id: _Optional[str] = ..., title: _Optional[str] = ..., redeemed_count: _Optional[int] = ..., redeemed_grams: _Optional[int] = ..., refunded_count: _Optional[int] = ..., refunded_grams: _Optional[int] = ...) -> None: ...

class GetTotalsRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ...) -> None: ...

class Totals(_message.Message):
    __slots__ = ("accounts", "credited_grams", "reversed_grams", "redeemed_grams", "balance_grams", "pool_grams")
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    CREDITED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    REVERSED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_GRAMS_FIELD_NUMBER: _ClassVar[int]
    POOL_GRAMS_FIELD_NUMBER: _ClassVar[int]
    accounts: int
    credited_grams: int
    reversed_grams: int
    redeemed_grams: int
    balance_grams: int
    pool_grams: int
    def __init__(self, accounts: _Optional[int] = ..., credited_grams: _Optional[int] = ..., reversed_grams: _Optional[int] = ..., redeemed_grams: _Optional[int] = ..., balance_grams: _Optional[int] = ..., pool_grams: _Optional[int] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("account", "grams", "request_key", "reward_id")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    grams: int
    request_key: str
    reward_id: str
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., grams: _Optional[int] = ..., request_key: _Optional[str] = ..., reward_id: _Optional[str] = ...) -> None: ...

class RedeemResponse(_message.Message):
    __slots__ = ("entry", "replayed")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    entry: Entry
    replayed: bool
    def __init__(self, entry: _Optional[_Union[Entry, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class OpenAccountRequest(_message.Message):
    __slots__ = ("owner_pid", "kind", "alias")
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    owner_pid: str
    kind: str
    alias: str
    def __init__(self, owner_pid: _Optional[str] = ..., kind: _Optional[str] = ..., alias: _Optional[str] = ...) -> None: ...

class OpenAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class SetStatusRequest(_message.Message):
    __slots__ = ("account", "status", "request_key", "reason")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    status: str
    request_key: str
    reason: str
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., status: _Optional[str] = ..., request_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SetStatusResponse(_message.Message):
    __slots__ = ("entry", "replayed")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    entry: Entry
    replayed: bool
    def __init__(self, entry: _Optional[_Union[Entry, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class CatalogueItemSpec(_message.Message):
    __slots__ = ("item_id", "title", "kind", "price_grams", "stock", "unlimited_stock", "limit_count", "limit_period", "valid_from", "valid_until", "eligible_tiers", "fulfilment", "partner_id", "fulfilment_window_seconds", "on_expiry")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRICE_GRAMS_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    UNLIMITED_STOCK_FIELD_NUMBER: _ClassVar[int]
    LIMIT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_TIERS_FIELD_NUMBER: _ClassVar[int]
    FULFILMENT_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    FULFILMENT_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ON_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    title: str
    kind: str
    price_grams: int
    stock: int
    unlimited_stock: bool
    limit_count: int
    limit_period: str
    valid_from: str
    valid_until: str
    eligible_tiers: _containers.RepeatedScalarFieldContainer[str]
    fulfilment: str
    partner_id: str
    fulfilment_window_seconds: int
    on_expiry: str
    def __init__(self, item_id: _Optional[str] = ..., title: _Optional[str] = ..., kind: _Optional[str] = ..., price_grams: _Optional[int] = ..., stock: _Optional[int] = ..., unlimited_stock: _Optional[bool] = ..., limit_count: _Optional[int] = ..., limit_period: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_until: _Optional[str] = ..., eligible_tiers: _Optional[_Iterable[str]] = ..., fulfilment: _Optional[str] = ..., partner_id: _Optional[str] = ..., fulfilment_window_seconds: _Optional[int] = ..., on_expiry: _Optional[str] = ...) -> None: ...

class CatalogueItem(_message.Message):
    __slots__ = ("spec", "version", "status", "stock_batch", "changed_at", "request_key", "reason")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOCK_BATCH_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    spec: CatalogueItemSpec
    version: int
    status: str
    stock_batch: int
    changed_at: str
    request_key: str
    reason: str
    def __init__(self, spec: _Optional[_Union[CatalogueItemSpec, _Mapping]] = ..., version: _Optional[int] = ..., status: _Optional[str] = ..., stock_batch: _Optional[int] = ..., changed_at: _Optional[str] = ..., request_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PutCatalogueItemRequest(_message.Message):
    __slots__ = ("item", "expected_version", "restock", "request_key", "reason")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESTOCK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item: CatalogueItemSpec
    expected_version: int
    restock: bool
    request_key: str
    reason: str
    def __init__(self, item: _Optional[_Union[CatalogueItemSpec, _Mapping]] = ..., expected_version: _Optional[int] = ..., restock: _Optional[bool] = ..., request_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PutCatalogueItemResponse(_message.Message):
    __slots__ = ("item", "replayed")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    item: CatalogueItem
    replayed: bool
    def __init__(self, item: _Optional[_Union[CatalogueItem, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class RetireCatalogueItemRequest(_message.Message):
    __slots__ = ("item_id", "expected_version", "request_key", "reason")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    expected_version: int
    request_key: str
    reason: str
    def __init__(self, item_id: _Optional[str] = ..., expected_version: _Optional[int] = ..., request_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListCatalogueItemVersionsRequest(_message.Message):
    __slots__ = ("item_id", "page_size", "page_token")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    page_size: int
    page_token: str
    def __init__(self, item_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCatalogueItemVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[CatalogueItem]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[CatalogueItem, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListCatalogueRequest(_message.Message):
    __slots__ = ("account", "page_size", "page_token", "available_only")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_ONLY_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    page_size: int
    page_token: str
    available_only: bool
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., available_only: _Optional[bool] = ...) -> None: ...

class CatalogueOffer(_message.Message):
    __slots__ = ("item", "stock_left", "limit_left", "available", "unavailable_reason")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_LEFT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    item: CatalogueItem
    stock_left: int
    limit_left: int
    available: bool
    unavailable_reason: str
    def __init__(self, item: _Optional[_Union[CatalogueItem, _Mapping]] = ..., stock_left: _Optional[int] = ..., limit_left: _Optional[int] = ..., available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ...) -> None: ...

class ListCatalogueResponse(_message.Message):
    __slots__ = ("offers", "next_page_token", "balance_grams", "tier")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BALANCE_GRAMS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[CatalogueOffer]
    next_page_token: str
    balance_grams: int
    tier: str
    def __init__(self, offers: _Optional[_Iterable[_Union[CatalogueOffer, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., balance_grams: _Optional[int] = ..., tier: _Optional[str] = ...) -> None: ...

class RedeemItemRequest(_message.Message):
    __slots__ = ("account", "item_id", "request_key")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    item_id: str
    request_key: str
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., item_id: _Optional[str] = ..., request_key: _Optional[str] = ...) -> None: ...

class CatalogueRedemption(_message.Message):
    __slots__ = ("redemption_id", "account_id", "item_id", "item_version", "title", "price_grams", "request_key", "fulfilment", "partner_id", "fulfil_by", "status", "outcome_code", "redeemed_at")
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PRICE_GRAMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    FULFILMENT_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    FULFIL_BY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_CODE_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_AT_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    account_id: str
    item_id: str
    item_version: int
    title: str
    price_grams: int
    request_key: str
    fulfilment: str
    partner_id: str
    fulfil_by: str
    status: str
    outcome_code: str
    redeemed_at: str
    def __init__(self, redemption_id: _Optional[str] = ..., account_id: _Optional[str] = ..., item_id: _Optional[str] = ..., item_version: _Optional[int] = ..., title: _Optional[str] = ..., price_grams: _Optional[int] = ..., request_key: _Optional[str] = ..., fulfilment: _Optional[str] = ..., partner_id: _Optional[str] = ..., fulfil_by: _Optional[str] = ..., status: _Optional[str] = ..., outcome_code: _Optional[str] = ..., redeemed_at: _Optional[str] = ...) -> None: ...

class RedeemItemResponse(_message.Message):
    __slots__ = ("redemption", "entry", "replayed")
    REDEMPTION_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    redemption: CatalogueRedemption
    entry: Entry
    replayed: bool
    def __init__(self, redemption: _Optional[_Union[CatalogueRedemption, _Mapping]] = ..., entry: _Optional[_Union[Entry, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetCatalogueRedemptionRequest(_message.Message):
    __slots__ = ("account", "request_key")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    request_key: str
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., request_key: _Optional[str] = ...) -> None: ...

class LinkEnterpriseRequest(_message.Message):
    __slots__ = ("employee", "enterprise", "consent_ref", "consented_at", "request_key")
    EMPLOYEE_FIELD_NUMBER: _ClassVar[int]
    ENTERPRISE_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REF_FIELD_NUMBER: _ClassVar[int]
    CONSENTED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    employee: AccountRef
    enterprise: AccountRef
    consent_ref: str
    consented_at: str
    request_key: str
    def __init__(self, employee: _Optional[_Union[AccountRef, _Mapping]] = ..., enterprise: _Optional[_Union[AccountRef, _Mapping]] = ..., consent_ref: _Optional[str] = ..., consented_at: _Optional[str] = ..., request_key: _Optional[str] = ...) -> None: ...

class UnlinkEnterpriseRequest(_message.Message):
    __slots__ = ("employee", "enterprise", "request_key", "reason")
    EMPLOYEE_FIELD_NUMBER: _ClassVar[int]
    ENTERPRISE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    employee: AccountRef
    enterprise: AccountRef
    request_key: str
    reason: str
    def __init__(self, employee: _Optional[_Union[AccountRef, _Mapping]] = ..., enterprise: _Optional[_Union[AccountRef, _Mapping]] = ..., request_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EnterpriseLink(_message.Message):
    __slots__ = ("enterprise_account_id", "employee_account_id", "linked", "linked_at", "unlinked_at", "consent_ref", "consented_at", "changes")
    ENTERPRISE_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EMPLOYEE_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    LINKED_FIELD_NUMBER: _ClassVar[int]
    LINKED_AT_FIELD_NUMBER: _ClassVar[int]
    UNLINKED_AT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REF_FIELD_NUMBER: _ClassVar[int]
    CONSENTED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    enterprise_account_id: str
    employee_account_id: str
    linked: bool
    linked_at: str
    unlinked_at: str
    consent_ref: str
    consented_at: str
    changes: int
    def __init__(self, enterprise_account_id: _Optional[str] = ..., employee_account_id: _Optional[str] = ..., linked: _Optional[bool] = ..., linked_at: _Optional[str] = ..., unlinked_at: _Optional[str] = ..., consent_ref: _Optional[str] = ..., consented_at: _Optional[str] = ..., changes: _Optional[int] = ...) -> None: ...

class EnterpriseLinkResponse(_message.Message):
    __slots__ = ("link", "replayed")
    LINK_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    link: EnterpriseLink
    replayed: bool
    def __init__(self, link: _Optional[_Union[EnterpriseLink, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ListEnterpriseLinksRequest(_message.Message):
    __slots__ = ("employee",)
    EMPLOYEE_FIELD_NUMBER: _ClassVar[int]
    employee: AccountRef
    def __init__(self, employee: _Optional[_Union[AccountRef, _Mapping]] = ...) -> None: ...

class ListEnterpriseLinksResponse(_message.Message):
    __slots__ = ("links",)
    LINKS_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[EnterpriseLink]
    def __init__(self, links: _Optional[_Iterable[_Union[EnterpriseLink, _Mapping]]] = ...) -> None: ...

class GetEnterpriseAggregateRequest(_message.Message):
    __slots__ = ("enterprise", "month")
    ENTERPRISE_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    enterprise: AccountRef
    month: str
    def __init__(self, enterprise: _Optional[_Union[AccountRef, _Mapping]] = ..., month: _Optional[str] = ...) -> None: ...

class EnterpriseAggregateGroup(_message.Message):
    __slots__ = ("scenario", "withheld", "contributors", "grams", "reversed_grams")
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    GRAMS_FIELD_NUMBER: _ClassVar[int]
    REVERSED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    scenario: str
    withheld: bool
    contributors: int
    grams: int
    reversed_grams: int
    def __init__(self, scenario: _Optional[str] = ..., withheld: _Optional[bool] = ..., contributors: _Optional[int] = ..., grams: _Optional[int] = ..., reversed_grams: _Optional[int] = ...) -> None: ...

class EnterpriseAggregate(_message.Message):
    __slots__ = ("enterprise_account_id", "month", "min_group", "groups", "reported_grams", "withheld_groups")
    ENTERPRISE_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    MIN_GROUP_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_GRAMS_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_GROUPS_FIELD_NUMBER: _ClassVar[int]
    enterprise_account_id: str
    month: str
    min_group: int
    groups: _containers.RepeatedCompositeFieldContainer[EnterpriseAggregateGroup]
    reported_grams: int
    withheld_groups: int
    def __init__(self, enterprise_account_id: _Optional[str] = ..., month: _Optional[str] = ..., min_group: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[EnterpriseAggregateGroup, _Mapping]]] = ..., reported_grams: _Optional[int] = ..., withheld_groups: _Optional[int] = ...) -> None: ...

class GetRetirementCertificateRequest(_message.Message):
    __slots__ = ("account", "reduction_ids", "format")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REDUCTION_IDS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    account: AccountRef
    reduction_ids: _containers.RepeatedScalarFieldContainer[str]
    format: str
    def __init__(self, account: _Optional[_Union[AccountRef, _Mapping]] = ..., reduction_ids: _Optional[_Iterable[str]] = ..., format: _Optional[str] = ...) -> None: ...

class RetirementCertificate(_message.Message):
    __slots__ = ("account_id", "owner_pid", "certificate_json", "digest", "bank_key_fingerprint", "registry_key_fingerprint", "json_filename", "pdf_filename", "pdf", "certificate_format", "issued_at", "total_grams")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_PID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_JSON_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BANK_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    JSON_FILENAME_FIELD_NUMBER: _ClassVar[int]
    PDF_FILENAME_FIELD_NUMBER: _ClassVar[int]
    PDF_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_GRAMS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    owner_pid: str
    certificate_json: str
    digest: str
    bank_key_fingerprint: str
    registry_key_fingerprint: str
    json_filename: str
    pdf_filename: str
    pdf: bytes
    certificate_format: str
    issued_at: str
    total_grams: int
    def __init__(self, account_id: _Optional[str] = ..., owner_pid: _Optional[str] = ..., certificate_json: _Optional[str] = ..., digest: _Optional[str] = ..., bank_key_fingerprint: _Optional[str] = ..., registry_key_fingerprint: _Optional[str] = ..., json_filename: _Optional[str] = ..., pdf_filename: _Optional[str] = ..., pdf: _Optional[bytes] = ..., certificate_format: _Optional[str] = ..., issued_at: _Optional[str] = ..., total_grams: _Optional[int] = ...) -> None: ...
