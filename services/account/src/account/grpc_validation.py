"""The bounds of every field of every account gRPC request, in one place (docs/grpc.md §3,
"Bounds of the request fields").

`check_request(request)` runs before every AccountService handler (grpc_api's `_handled`): it
walks the request message and the messages it nests (AccountRef) and applies the rule that
FIELD_RULES names for each field, by the field's full proto name
("carbon.account.v1.RedeemRequest.reward_id"). A field without a rule is refused as
INTERNAL (`UnboundField`, fail closed) and a unit test lists such fields first, so a field added
to the proto cannot reach the ledger unchecked. Checks are cheap and come first: the length
before any pattern, so a megabyte string costs one `len`.

A bad field raises ledger.InvalidRequest(message, code) (INVALID_ARGUMENT with the details
"<code>: <message>"). The message names the field and its bound and NEVER contains the value
received: details stay short whatever was sent, and a refusal puts no request text in an
error, a log line or a metric label.

For a new method (a rewards catalogue, enterprise accounts, …): give each field of its request a
rule below, reusing the shared rules (ACCOUNT_ID, OWNER_PID, REQUEST_KEY, IDENTIFIER,
PAGE_SIZE, …) or building one from Text / Choice / Repeated / Int / Message; put checks that need
more than one field (a time range) or a normalised value in a function here (`time_range`)
called by the handler. Everything a handler gets past `check_request` is bounded.
"""

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from carbon_common.accounts import POOL_OWNER, POOL_OWNERS
from carbon_common.clock import iso_z

from account.ledger import ENTRY_TYPES, STATUSES, InvalidRequest

PACKAGE = "carbon.account.v1"
INT64_MAX = 2**63 - 1


class UnboundField(RuntimeError):
    """A request field that has no rule in FIELD_RULES: a programming error (INTERNAL)."""


def _refuse(code: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, code)


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A string: empty (allowed unless required) or at most max_chars matching `pattern`
    (full match, ASCII classes); then `extra(value, field)`, which raises InvalidRequest."""

    code: str
    pattern: str
    max_chars: int
    bound: str  # what a valid value looks like, for the error message
    required: bool = False
    extra: Callable[[str, str], None] | None = None

    def __post_init__(self):
        object.__setattr__(self, "_regex", re.compile(self.pattern, re.ASCII))

    def with_code(self, code: str, *, required: bool | None = None, extra=None) -> "Text":
        return Text(
            code,
            self.pattern,
            self.max_chars,
            self.bound,
            self.required if required is None else required,
            extra or self.extra,
        )

    def matches(self, value: str) -> bool:
        """The bound and pattern alone (no `extra`), for values that did not come from a request."""
        return len(value) <= self.max_chars and self._regex.fullmatch(value) is not None

    def check(self, value: str, field: str) -> None:
        if not value:
            if self.required:
                raise _refuse(self.code, f"{field} is required: {self.bound}")
            return
        if not self.matches(value):
            raise _refuse(self.code, f"{field} must be {self.bound}")
        if self.extra is not None:
            self.extra(value, field)


@dataclass(frozen=True)
class Choice:
    """A string from a fixed list; empty allowed unless required (the handler's default)."""

    code: str
    values: tuple[str, ...]
    required: bool = False

    def check(self, value: str, field: str) -> None:
        if not value and not self.required:
            return
        if value not in self.values:
            raise _refuse(self.code, f"{field} must be one of {', '.join(self.values)}")


@dataclass(frozen=True)
class DisplayText:
    """Free text for people (an alias): 1..max_chars Unicode characters, no control, format,
    private-use, unassigned or separator characters other than the plain space, no space at
    either end; at most 4 UTF-8 bytes a character follows from max_chars."""

    code: str
    max_chars: int
    required: bool = False

    def check(self, value: str, field: str) -> None:
        if not value:
            if self.required:
                raise _refuse(self.code, f"{field} is required")
            return
        bound = (
            f"{field} must be 1..{self.max_chars} printable characters without control characters "
            "or spaces at either end"
        )
        if len(value) > self.max_chars or value != value.strip(" "):
            raise _refuse(self.code, bound)
        for ch in value:
            category = unicodedata.category(ch)
            if category[0] == "C" or (category[0] == "Z" and ch != " "):
                raise _refuse(self.code, bound)


@dataclass(frozen=True)
class Repeated:
    """A repeated string field: at most max_items values, each checked by `item`."""

    code: str
    item: Text | Choice
    max_items: int

    def check(self, values, field: str) -> None:
        if len(values) > self.max_items:
            raise _refuse(self.code, f"{field} holds at most {self.max_items} values")
        for value in values:
            self.item.check(value, field)


@dataclass(frozen=True)
class Int:
    code: str
    minimum: int
    maximum: int
    bound: str

    def check(self, value: int, field: str) -> None:
        if not self.minimum <= value <= self.maximum:
            raise _refuse(self.code, f"{field} must be {self.bound}")


@dataclass(frozen=True)
class Flag:
    """A bool field: either value is within bounds (a rule all the same, so no field goes unbound)."""

    def check(self, value: bool, field: str) -> None:
        return None


@dataclass(frozen=True)
class Message:
    """A nested message: required or optional; its own fields are checked by their rules."""

    code: str = ""
    required: bool = False

    def check(self, present: bool, field: str) -> None:
        if self.required and not present:
            raise _refuse(self.code, f"{field} is required")


# --- RFC 3339 ----------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)
RFC3339_MAX_CHARS = 35  # 2026-11-01T00:00:00.123456789+08:00


def rfc3339_utc(value: str, field: str, code: str) -> str:
    """An RFC 3339 date-time ("2026-11-01T00:00:00+08:00", "…T16:00:00.5Z") as the ledger's
    UTC text ("%Y-%m-%dT%H:%M:%S.%fZ", the shape of posted_at), rounded UP to the microsecond:
    posted_at values have microseconds, so `posted_at >= t` and `posted_at < t` keep their
    meaning. A leap second (":60") is the next second. Raises InvalidRequest otherwise."""
    refused = _refuse(code, f"{field} must be an RFC 3339 date-time such as 2026-11-01T00:00:00+08:00")
    found = _RFC3339.fullmatch(value) if len(value) <= RFC3339_MAX_CHARS else None
    if found is None:
        raise refused
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = found.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59))
        if int(second) > 60 or int(off_h or 0) > 23 or int(off_m or 0) > 59:
            raise ValueError
        micro = math.ceil(int((fraction or "0").ljust(9, "0")) / 1000)
        offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0)) * (-1 if sign == "-" else 1)
        moment = moment + timedelta(seconds=int(second) - moment.second, microseconds=micro) - offset
        return iso_z(moment.replace(tzinfo=timezone.utc))
    except (ValueError, OverflowError):
        raise refused from None


def _rfc3339_check(code: str) -> Callable[[str, str], None]:
    def check(value: str, field: str) -> None:
        rfc3339_utc(value, field, code)

    return check


def time_range(posted_from: str, posted_to: str) -> tuple[str, str]:
    """(from, to) as the ledger's UTC text ("" when not given); refuses a start after the end."""
    start = rfc3339_utc(posted_from, "posted_from", "invalid_posted_from") if posted_from else ""
    end = rfc3339_utc(posted_to, "posted_to", "invalid_posted_to") if posted_to else ""
    if start and end and start > end:
        raise _refuse("invalid_time_range", "posted_from must not be later than posted_to")
    return start, end


def _not_pool_owner(value: str, field: str) -> None:
    """The pool's chains (POOL_OWNERS; shards "bank-pool/<n>" per ADR 0005 §3) are the platform's."""
    if value in POOL_OWNERS or value.startswith(POOL_OWNER + "/"):
        raise _refuse("invalid_owner_pid", f"{field}: the pool account's owner is reserved")


# --- the shared rules ---------------------------------------------------------------------------

ACCOUNT_ID = Text("invalid_account_id", r"acc_[0-9a-f]{32}", 36, '"acc_" and 32 lower-case hex digits', required=True)
OWNER_PID = Text(
    "invalid_owner_pid",
    r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}",
    128,
    '1..128 characters: A-Z a-z 0-9 "._:/-", starting with a letter or digit',
    required=True,
)
REQUEST_KEY = Text(
    "invalid_request_key", r"[!-~]{1,128}", 128, "1..128 printable ASCII characters, no space", required=True
)
# Ids chosen by bank systems (reward ids, reasons, future catalogue ids): RECORD_ID of ingest.
IDENTIFIER = Text(
    "invalid_identifier",
    r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}",
    64,
    '1..64 characters: A-Z a-z 0-9 "._:-", starting with a letter or digit',
)
SCENARIO = Text(
    "invalid_scenario",
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
    64,
    '1..64 characters: A-Z a-z 0-9 "._-", starting with a letter or digit',
)
MONTH = Text("invalid_month", r"[0-9]{4}-(0[1-9]|1[0-2])", 7, "YYYY-MM", required=True)
SEQ_PAGE_TOKEN = Text("invalid_page_token", r"[1-9][0-9]{0,17}", 18, "a page token this API returned")
ACCOUNT_PAGE_TOKEN = Text(
    "invalid_page_token", ACCOUNT_ID.pattern, ACCOUNT_ID.max_chars, "a page token this API returned"
)
PAGE_SIZE = Int("invalid_page_size", 0, 500, "1..500 (0: the default, 50)")
GRAMS = Int("invalid_grams", 1, INT64_MAX, "a positive number of grams")
POSTED_FROM = Text(
    "invalid_posted_from",
    r"[0-9T:.+Zzt-]+",
    RFC3339_MAX_CHARS,
    "an RFC 3339 date-time such as 2026-11-01T00:00:00+08:00",
    extra=_rfc3339_check("invalid_posted_from"),
)
POSTED_TO = POSTED_FROM.with_code("invalid_posted_to", extra=_rfc3339_check("invalid_posted_to"))
ENTRY_TYPE_FILTER = Repeated("invalid_type", Choice("invalid_type", ENTRY_TYPES, required=True), len(ENTRY_TYPES))
ACCOUNT_REF = Message("missing_account", required=True)
OPENABLE_KINDS = ("individual", "enterprise")  # the pool account is the platform's own

# The rewards catalogue (account.catalogue, docs/catalogue.md)
ITEM_ID = Text(
    "invalid_item_id",
    r"[a-z0-9][a-z0-9._-]{0,63}",
    64,
    '1..64 characters: a-z 0-9 "._-", starting with a letter or digit',
    required=True,
)
ITEM_PAGE_TOKEN = ITEM_ID.with_code("invalid_page_token", required=False)
ITEM_KINDS = ("metro_pass", "coupon", "tree_planted", "donation", "voucher", "other")
LIMIT_PERIODS = ("day", "month", "year")
FULFILMENTS = ("none", "partner")
ON_EXPIRY = ("refund", "settle")
MAX_STOCK = 1_000_000
MAX_LIMIT_COUNT = 100
MAX_PRICE_GRAMS = 10**12  # a million tonnes
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 60, 90 * 86400
PARTNER_ID = Text(  # ingest's partner ids (ingest.signing.PARTNER_ID)
    "invalid_partner_id", r"[a-z0-9][a-z0-9_-]{1,47}", 48, '2..48 characters: a-z 0-9 "_-", starting with a-z or 0-9'
)
TIER_NAME = Text(
    "invalid_eligible_tiers",
    r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}",
    32,
    'tier names of 1..32 characters: A-Z a-z 0-9 "_-"',
    required=True,
)
VALID_FROM = POSTED_FROM.with_code("invalid_valid_from", extra=_rfc3339_check("invalid_valid_from"))
VALID_UNTIL = POSTED_FROM.with_code("invalid_valid_until", extra=_rfc3339_check("invalid_valid_until"))
VERSION = Int("invalid_expected_version", 0, 10**9, "0 (create) or the item's current version")

# Enterprise accounts (account.enterprise, docs/enterprise.md)
EMPLOYEE_REF = Message("missing_employee", required=True)
ENTERPRISE_REF = Message("missing_enterprise", required=True)
CONSENTED_AT = POSTED_FROM.with_code(
    "invalid_consented_at", required=True, extra=_rfc3339_check("invalid_consented_at")
)

# Retirement certificates (account.certificates, docs/certificate.md §8). Reduction ids are
# calc's (64 lower-case hex digits); the bound leaves room for other issuers' ids.
REDUCTION_ID = Text(
    "invalid_reduction_id",
    r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}",
    128,
    '1..128 characters: A-Z a-z 0-9 "._:-", starting with a letter or digit',
    required=True,
)
MAX_CERTIFICATE_REDUCTIONS = 1_000
CERTIFICATE_FORMATS = ("json", "json_pdf")  # the certificate alone; with its PDF


def catalogue_spec(spec) -> dict:
    """A CatalogueItemSpec (its fields already within their bounds) as the catalogue's item
    fields, with the checks across fields: stock xor unlimited, limit count with its period,
    valid_from before valid_until (both as the ledger's UTC text), and a partner's fulfilment
    fields exactly when fulfilment is "partner". Tier names are checked against the configured
    tiers by the catalogue. Raises InvalidRequest."""
    if spec.unlimited_stock and spec.stock:
        raise _refuse("invalid_stock", "stock must be 0 when unlimited_stock is set")
    if bool(spec.limit_count) != bool(spec.limit_period):
        raise _refuse("invalid_limit_period", "limit_period is required exactly when limit_count is 1 or more")
    valid_from = rfc3339_utc(spec.valid_from, "valid_from", "invalid_valid_from") if spec.valid_from else ""
    valid_until = rfc3339_utc(spec.valid_until, "valid_until", "invalid_valid_until") if spec.valid_until else ""
    if valid_from and valid_until and valid_from >= valid_until:
        raise _refuse("invalid_validity", "valid_from must be earlier than valid_until")
    if len(set(spec.eligible_tiers)) != len(spec.eligible_tiers):
        raise _refuse("invalid_eligible_tiers", "eligible_tiers must not repeat a tier")
    fulfilment = spec.fulfilment or "none"
    if fulfilment == "partner":
        if not spec.partner_id:
            raise _refuse("invalid_partner_id", "partner_id is required for fulfilment partner")
        if not MIN_WINDOW_SECONDS <= spec.fulfilment_window_seconds <= MAX_WINDOW_SECONDS:
            raise _refuse(
                "invalid_fulfilment_window",
                f"fulfilment_window_seconds must be {MIN_WINDOW_SECONDS}..{MAX_WINDOW_SECONDS} for fulfilment partner",
            )
    elif spec.partner_id or spec.fulfilment_window_seconds or spec.on_expiry:
        raise _refuse(
            "invalid_fulfilment", "partner_id, fulfilment_window_seconds and on_expiry need fulfilment partner"
        )
    return {
        "item_id": spec.item_id,
        "title": spec.title,
        "kind": spec.kind,
        "price_grams": spec.price_grams,
        "stock": spec.stock,
        "unlimited_stock": spec.unlimited_stock,
        "limit_count": spec.limit_count,
        "limit_period": spec.limit_period,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "eligible_tiers": sorted(spec.eligible_tiers),
        "fulfilment": fulfilment,
        "partner_id": spec.partner_id,
        "fulfilment_window_seconds": spec.fulfilment_window_seconds,
        "on_expiry": (spec.on_expiry or "refund") if fulfilment == "partner" else "",
    }


# Oneofs of which one member must be set.
REQUIRED_ONEOFS = {f"{PACKAGE}.AccountRef.ref": ("missing_account", "account needs account_id or owner_pid")}

# Every field of every request message (and of the messages they nest), by full name.
FIELD_RULES = {
    f"{PACKAGE}.{name}": rule
    for name, rule in {
        "AccountRef.account_id": ACCOUNT_ID,
        "AccountRef.owner_pid": OWNER_PID,
        "ListAccountsRequest.page_size": PAGE_SIZE,
        "ListAccountsRequest.page_token": ACCOUNT_PAGE_TOKEN,
        "ListEntriesRequest.account": ACCOUNT_REF,
        "ListEntriesRequest.page_size": PAGE_SIZE,
        "ListEntriesRequest.page_token": SEQ_PAGE_TOKEN,
        "ListEntriesRequest.types": ENTRY_TYPE_FILTER,
        "ListEntriesRequest.scenario": SCENARIO,
        "ListEntriesRequest.posted_from": POSTED_FROM,
        "ListEntriesRequest.posted_to": POSTED_TO,
        "GetStatementRequest.account": ACCOUNT_REF,
        "GetStatementRequest.month": MONTH,
        "GetTotalsRequest.account": Message(required=False),
        "RedeemRequest.account": ACCOUNT_REF,
        "RedeemRequest.grams": GRAMS,
        "RedeemRequest.request_key": REQUEST_KEY,
        "RedeemRequest.reward_id": IDENTIFIER.with_code("invalid_reward_id"),
        "OpenAccountRequest.owner_pid": OWNER_PID.with_code("invalid_owner_pid", extra=_not_pool_owner),
        "OpenAccountRequest.kind": Choice("invalid_kind", OPENABLE_KINDS),
        "OpenAccountRequest.alias": DisplayText("invalid_alias", 64),
        "SetStatusRequest.account": ACCOUNT_REF,
        "SetStatusRequest.status": Choice("invalid_status", STATUSES, required=True),
        "SetStatusRequest.request_key": REQUEST_KEY,
        "SetStatusRequest.reason": IDENTIFIER.with_code("invalid_reason"),
        # the rewards catalogue
        "CatalogueItemSpec.item_id": ITEM_ID,
        "CatalogueItemSpec.title": DisplayText("invalid_title", 120, required=True),
        "CatalogueItemSpec.kind": Choice("invalid_item_kind", ITEM_KINDS, required=True),
        "CatalogueItemSpec.price_grams": Int("invalid_price_grams", 1, MAX_PRICE_GRAMS, "1..10^12 grams"),
        "CatalogueItemSpec.stock": Int("invalid_stock", 0, MAX_STOCK, f"0..{MAX_STOCK}"),
        "CatalogueItemSpec.unlimited_stock": Flag(),
        "CatalogueItemSpec.limit_count": Int("invalid_limit_count", 0, MAX_LIMIT_COUNT, f"0..{MAX_LIMIT_COUNT}"),
        "CatalogueItemSpec.limit_period": Choice("invalid_limit_period", LIMIT_PERIODS),
        "CatalogueItemSpec.valid_from": VALID_FROM,
        "CatalogueItemSpec.valid_until": VALID_UNTIL,
        "CatalogueItemSpec.eligible_tiers": Repeated("invalid_eligible_tiers", TIER_NAME, 16),
        "CatalogueItemSpec.fulfilment": Choice("invalid_fulfilment", FULFILMENTS),
        "CatalogueItemSpec.partner_id": PARTNER_ID,
        "CatalogueItemSpec.fulfilment_window_seconds": Int(
            "invalid_fulfilment_window", 0, MAX_WINDOW_SECONDS, f"0..{MAX_WINDOW_SECONDS} seconds"
        ),
        "CatalogueItemSpec.on_expiry": Choice("invalid_on_expiry", ON_EXPIRY),
        "PutCatalogueItemRequest.item": Message("missing_item", required=True),
        "PutCatalogueItemRequest.expected_version": VERSION,
        "PutCatalogueItemRequest.restock": Flag(),
        "PutCatalogueItemRequest.request_key": REQUEST_KEY,
        "PutCatalogueItemRequest.reason": IDENTIFIER.with_code("invalid_reason"),
        "RetireCatalogueItemRequest.item_id": ITEM_ID,
        "RetireCatalogueItemRequest.expected_version": Int(
            "invalid_expected_version", 1, 10**9, "the item's current version (1 or more)"
        ),
        "RetireCatalogueItemRequest.request_key": REQUEST_KEY,
        "RetireCatalogueItemRequest.reason": IDENTIFIER.with_code("invalid_reason"),
        "ListCatalogueItemVersionsRequest.item_id": ITEM_ID,
        "ListCatalogueItemVersionsRequest.page_size": PAGE_SIZE,
        "ListCatalogueItemVersionsRequest.page_token": SEQ_PAGE_TOKEN,
        "ListCatalogueRequest.account": Message(required=False),
        "ListCatalogueRequest.page_size": PAGE_SIZE,
        "ListCatalogueRequest.page_token": ITEM_PAGE_TOKEN,
        "ListCatalogueRequest.available_only": Flag(),
        "RedeemItemRequest.account": ACCOUNT_REF,
        "RedeemItemRequest.item_id": ITEM_ID,
        "RedeemItemRequest.request_key": REQUEST_KEY,
        "GetCatalogueRedemptionRequest.account": ACCOUNT_REF,
        "GetCatalogueRedemptionRequest.request_key": REQUEST_KEY,
        # enterprise accounts
        "LinkEnterpriseRequest.employee": EMPLOYEE_REF,
        "LinkEnterpriseRequest.enterprise": ENTERPRISE_REF,
        "LinkEnterpriseRequest.consent_ref": IDENTIFIER.with_code("invalid_consent_ref", required=True),
        "LinkEnterpriseRequest.consented_at": CONSENTED_AT,
        "LinkEnterpriseRequest.request_key": REQUEST_KEY,
        "UnlinkEnterpriseRequest.employee": EMPLOYEE_REF,
        "UnlinkEnterpriseRequest.enterprise": ENTERPRISE_REF,
        "UnlinkEnterpriseRequest.request_key": REQUEST_KEY,
        "UnlinkEnterpriseRequest.reason": IDENTIFIER.with_code("invalid_reason"),
        "ListEnterpriseLinksRequest.employee": EMPLOYEE_REF,
        "GetEnterpriseAggregateRequest.enterprise": ENTERPRISE_REF,
        "GetEnterpriseAggregateRequest.month": MONTH,
        # retirement certificates
        "GetRetirementCertificateRequest.account": ACCOUNT_REF,
        "GetRetirementCertificateRequest.reduction_ids": Repeated(
            "invalid_reduction_id", REDUCTION_ID, MAX_CERTIFICATE_REDUCTIONS
        ),
        "GetRetirementCertificateRequest.format": Choice("invalid_format", CERTIFICATE_FORMATS),
    }.items()
}


# --- the walk ----------------------------------------------------------------------------------


def check_request(message, path: str = "") -> None:
    """Applies FIELD_RULES to every field of `message` and of the messages it holds, in field
    order; the first bad field raises InvalidRequest. Of a oneof, only the member set is checked."""
    descriptor = message.DESCRIPTOR
    for oneof in descriptor.oneofs:
        if oneof.full_name in REQUIRED_ONEOFS and message.WhichOneof(oneof.name) is None:
            code, text = REQUIRED_ONEOFS[oneof.full_name]
            raise _refuse(code, text)
    for field in descriptor.fields:
        rule = FIELD_RULES.get(field.full_name)
        if rule is None:
            raise UnboundField(f"no rule for request field {field.full_name} (account.grpc_validation)")
        name = path + field.name
        if field.containing_oneof is not None and message.WhichOneof(field.containing_oneof.name) != field.name:
            continue
        if field.message_type is not None and not field.is_repeated:
            present = message.HasField(field.name)
            rule.check(present, name)
            if present:
                check_request(getattr(message, field.name), name + ".")
            continue
        rule.check(getattr(message, field.name), name)


def request_fields(service_descriptor) -> list[str]:
    """Full names of every field of every request of a service, nested messages included."""
    out, seen = [], set()

    def walk(descriptor):
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            out.append(field.full_name)
            if field.message_type is not None:
                walk(field.message_type)

    for method in service_descriptor.methods:
        walk(method.input_type)
    return out
