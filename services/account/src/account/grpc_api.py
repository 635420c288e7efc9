"""carbon.account.v1.AccountService: maps the ledger's queries and operations onto protobuf.

Every request is checked against its bounds before its handler runs
(account.grpc_validation.check_request). Errors leave as "<code>: <text>" details that never
repeat the request's values (a NOT_FOUND names the validated account id), at most MAX_DETAILS
characters; an unexpected failure is INTERNAL "internal_error", logged here with its traceback.
"""

import logging

import grpc

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account import ledger
from account.bridge_client import BridgeTimeout, BridgeUnavailable
from account.catalogue.items import SPEC_FIELDS, Busy, ItemExists, ItemNotFound, RedemptionNotFound
from account.catalogue.provider import catalogue_of
from account.certificates import CertificateTooLarge, Certificates
from account.enterprise.provider import enterprise_of
from account.grpc_validation import ACCOUNT_ID, catalogue_spec, check_request, rfc3339_utc, time_range
from account.ledger import AccountNotOpen, InsufficientBalance, InvalidRequest, LedgerError, RequestKeyReused
from carbon_common.metrics import HANDLER_SECONDS

from account.metrics import GRPC_CALLS
from account.queries import public_entry

log = logging.getLogger("account.grpc_api")
SERVICE = pb.DESCRIPTOR.services_by_name["AccountService"].full_name
ENTRY_FIELDS = [f.name for f in pb.Entry.DESCRIPTOR.fields]
MAX_DETAILS = 256
STATUS_OF = (
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (RequestKeyReused, grpc.StatusCode.ALREADY_EXISTS),
    (ItemExists, grpc.StatusCode.ALREADY_EXISTS),  # the catalogue (docs/catalogue.md)
    ((ItemNotFound, RedemptionNotFound), grpc.StatusCode.NOT_FOUND),
    (Busy, grpc.StatusCode.ABORTED),
    ((InsufficientBalance, AccountNotOpen), grpc.StatusCode.FAILED_PRECONDITION),
    (LedgerError, grpc.StatusCode.FAILED_PRECONDITION),
    # retirement certificates (account.certificates: the exchange bridge over RPC)
    (BridgeUnavailable, grpc.StatusCode.UNAVAILABLE),
    (BridgeTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (CertificateTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def to_entry(entry: dict) -> pb.Entry:
    return pb.Entry(**{k: entry[k] for k in ENTRY_FIELDS if entry.get(k) not in (None, "")})


def to_account(account: dict) -> pb.Account:
    return pb.Account(**{k: v for k, v in account.items() if k != "as_of_seq"})


def to_item(doc: dict) -> pb.CatalogueItem:
    return pb.CatalogueItem(
        spec=pb.CatalogueItemSpec(**{k: doc[k] for k in SPEC_FIELDS}),
        version=doc["version"],
        status=doc["status"],
        stock_batch=doc["stock_batch"],
        changed_at=doc["changed_at"],
        request_key=doc["request_key"],
        reason=doc["reason"],
    )


def to_link(view: dict) -> pb.EnterpriseLink:
    return pb.EnterpriseLink(
        enterprise_account_id=view["enterprise_id"],
        employee_account_id=view["employee_id"],
        linked=view["linked"],
        linked_at=view["linked_at"],
        unlinked_at=view["unlinked_at"],
        consent_ref=view["consent_ref"],
        consented_at=view["consented_at"],
        changes=view["changes"],
    )


def error_of(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status and details for an exception a handler raised."""
    if type(exc) is LookupError:  # the domain's unknown account (a KeyError is a bug: INTERNAL)
        named = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
        if ACCOUNT_ID.matches(named):
            return grpc.StatusCode.NOT_FOUND, f"account_not_found: no account {named}"
        return grpc.StatusCode.NOT_FOUND, "account_not_found: no such account"
    for types, code in STATUS_OF:
        if isinstance(exc, types):
            return code, f"{exc.code}: {exc}"[:MAX_DETAILS]
    return grpc.StatusCode.INTERNAL, "internal_error: the server logged it"


def _handled(method):
    name = method.__name__

    def wrapper(self, request, context):
        with HANDLER_SECONDS.labels("account-grpc", name).time():
            try:
                check_request(request)
                response = method(self, request, context)
            except Exception as exc:
                code, details = error_of(exc)
                if code == grpc.StatusCode.INTERNAL:
                    log.exception("account gRPC call failed", extra={"grpc_method": name})
                GRPC_CALLS.labels(name, code.name).inc()
                context.abort(code, details)
        GRPC_CALLS.labels(name, "OK").inc()
        return response

    wrapper.__name__ = name
    return wrapper


UNDECODABLE = object()  # a request whose bytes do not parse


class UndecodableRequests(grpc.ServerInterceptor):
    """A request that does not parse (a string field that is not UTF-8, a truncated message) is
    INVALID_ARGUMENT "invalid_request", not grpcio's INTERNAL "Exception deserializing request!":
    it is the caller's error. Innermost interceptor: the caller check still runs first."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if (
            handler is None
            or handler.unary_unary is None
            or handler.request_deserializer is None
            or not handler_call_details.method.startswith(f"/{SERVICE}/")
        ):
            return handler
        deserialize, behaviour = handler.request_deserializer, handler.unary_unary
        name = handler_call_details.method.rsplit("/", 1)[-1]

        def lenient(raw: bytes):
            try:
                return deserialize(raw)
            except Exception:  # noqa: BLE001 - DecodeError and whatever a parser raises
                return UNDECODABLE

        def checked(request, context):
            if request is UNDECODABLE:
                GRPC_CALLS.labels(name, grpc.StatusCode.INVALID_ARGUMENT.name).inc()
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "invalid_request: the request does not parse as its message (string fields must be UTF-8)",
                )
            return behaviour(request, context)

        return grpc.unary_unary_rpc_method_handler(
            checked, request_deserializer=lenient, response_serializer=handler.response_serializer
        )


class AccountServicer(pb_grpc.AccountServiceServicer):
    def __init__(self, ledger, bridge=None):
        self.ledger = ledger  # dependencies.Ledger
        self.certificates = Certificates(ledger, bridge)  # bridge: bridge_client.BridgeClient or None

    def _account_id(self, ref: pb.AccountRef) -> str:
        which = ref.WhichOneof("ref")
        if which is None:
            raise InvalidRequest("account needs account_id or owner_pid", "missing_account")
        return self.ledger.queries.account_id(**{which: getattr(ref, which)})

    @_handled
    def GetAccount(self, request, context):
        return to_account(self.ledger.queries.account(self._account_id(request)))

    @_handled
    def ListAccounts(self, request, context):
        page = self.ledger.queries.accounts(request.page_size, request.page_token)
        return pb.ListAccountsResponse(
            accounts=[to_account(a) for a in page["accounts"]], next_page_token=page["next_page_token"]
        )

    @_handled
    def GetBalance(self, request, context):
        a = self.ledger.queries.account(self._account_id(request))
        return pb.Balance(
            account_id=a["account_id"],
            balance_grams=a["balance_grams"],
            as_of_seq=a["as_of_seq"],
            status=a["status"],
            tier=a["tier"],
        )

    @_handled
    def ListEntries(self, request, context):
        posted_from, posted_to = time_range(request.posted_from, request.posted_to)
        page = self.ledger.queries.entries(
            self._account_id(request.account),
            request.page_size,
            request.page_token,
            list(request.types),
            request.scenario,
            posted_from,
            posted_to,
        )
        return pb.ListEntriesResponse(
            entries=[to_entry(e) for e in page["entries"]], next_page_token=page["next_page_token"]
        )

    @_handled
    def GetStatement(self, request, context):
        s = self.ledger.queries.statement(self._account_id(request.account), request.month)
        return pb.Statement(
            **{
                **s,
                "scenarios": [pb.ScenarioLine(**line) for line in s["scenarios"]],
                "catalogue": [pb.CatalogueStatementLine(**line) for line in s.get("catalogue", [])],
            }
        )

    @_handled
    def GetTotals(self, request, context):
        account_id = self._account_id(request.account) if request.HasField("account") else None
        return pb.Totals(**self.ledger.queries.totals(account_id))

    @_handled
    def Redeem(self, request, context):
        entry, replayed = self.ledger.ops.redeem(
            self._account_id(request.account), request.grams, request.request_key, request.reward_id
        )
        return pb.RedeemResponse(entry=to_entry(public_entry(entry)), replayed=replayed)

    @_handled
    def OpenAccount(self, request, context):
        doc = self.ledger.ops.open_account(request.owner_pid, request.kind or "individual", request.alias or None)
        return pb.OpenAccountResponse(account=to_account(self.ledger.queries.account(doc["_id"])))

    @_handled
    def SetStatus(self, request, context):
        account_id = self._account_id(request.account)
        if self.ledger.repo.get_account(account_id)["kind"] == "pool":
            raise InvalidRequest("the pool account's status is not changed through this API", "invalid_account")
        # Idempotent on request_key (the entry id derives from it): a repeat returns the entry
        # the first call wrote; the same key for another change is refused, as Redeem does.
        applied = self.ledger.repo.get_entry(ledger.status_entry_id(account_id, request.request_key))
        entry = applied or self.ledger.ops.set_status(account_id, request.status, request.request_key, request.reason)
        if entry.get("status") != request.status or entry.get("code") != (request.reason or request.status):
            raise RequestKeyReused("request_key was used for a different status change")
        return pb.SetStatusResponse(entry=to_entry(public_entry(entry)), replayed=applied is not None)

    # --- the rewards catalogue (account.catalogue, docs/catalogue.md) ------------------------------
    @property
    def catalogue(self):
        return catalogue_of(self.ledger)

    @_handled
    def PutCatalogueItem(self, request, context):
        doc, replayed = self.catalogue.put_item(
            catalogue_spec(request.item),
            request.expected_version,
            request.restock,
            request.request_key,
            request.reason,
        )
        return pb.PutCatalogueItemResponse(item=to_item(doc), replayed=replayed)

    @_handled
    def RetireCatalogueItem(self, request, context):
        doc, replayed = self.catalogue.retire_item(
            request.item_id, request.expected_version, request.request_key, request.reason
        )
        return pb.PutCatalogueItemResponse(item=to_item(doc), replayed=replayed)

    @_handled
    def ListCatalogueItemVersions(self, request, context):
        page = self.catalogue.versions(request.item_id, request.page_size, request.page_token)
        return pb.ListCatalogueItemVersionsResponse(
            versions=[to_item(v) for v in page["versions"]], next_page_token=page["next_page_token"]
        )

    @_handled
    def ListCatalogue(self, request, context):
        account_id = self._account_id(request.account) if request.HasField("account") else None
        page = self.catalogue.offers(account_id, request.page_size, request.page_token, request.available_only)
        return pb.ListCatalogueResponse(
            offers=[
                pb.CatalogueOffer(
                    item=to_item(o["item"]),
                    stock_left=o["stock_left"],
                    limit_left=o["limit_left"],
                    available=o["available"],
                    unavailable_reason=o["reason"],
                )
                for o in page["offers"]
            ],
            next_page_token=page["next_page_token"],
            balance_grams=page.get("balance_grams", 0),
            tier=page.get("tier", ""),
        )

    @_handled
    def RedeemItem(self, request, context):
        view, entry, replayed = self.catalogue.redeem(
            self._account_id(request.account), request.item_id, request.request_key
        )
        return pb.RedeemItemResponse(
            redemption=pb.CatalogueRedemption(**view), entry=to_entry(public_entry(entry)), replayed=replayed
        )

    @_handled
    def GetCatalogueRedemption(self, request, context):
        return pb.CatalogueRedemption(
            **self.catalogue.redemption(self._account_id(request.account), request.request_key)
        )

    # --- enterprise accounts (account.enterprise, docs/enterprise.md) -------------------------------
    @property
    def enterprises(self):
        return enterprise_of(self.ledger).enterprises

    @_handled
    def LinkEnterprise(self, request, context):
        view, _, replayed = self.enterprises.link(
            self._account_id(request.employee),
            self._account_id(request.enterprise),
            request.request_key,
            request.consent_ref,
            rfc3339_utc(request.consented_at, "consented_at", "invalid_consented_at"),
        )
        return pb.EnterpriseLinkResponse(link=to_link(view), replayed=replayed)

    @_handled
    def UnlinkEnterprise(self, request, context):
        view, _, replayed = self.enterprises.unlink(
            self._account_id(request.employee),
            self._account_id(request.enterprise),
            request.request_key,
            request.reason,
        )
        return pb.EnterpriseLinkResponse(link=to_link(view), replayed=replayed)

    @_handled
    def ListEnterpriseLinks(self, request, context):
        views = self.enterprises.links_of(self._account_id(request.employee))
        return pb.ListEnterpriseLinksResponse(links=[to_link(v) for v in views])

    @_handled
    def GetEnterpriseAggregate(self, request, context):
        view = self.enterprises.aggregate(self._account_id(request.enterprise), request.month)
        return pb.EnterpriseAggregate(
            enterprise_account_id=view["enterprise_id"],
            month=view["period"],
            min_group=view["min_group"],
            groups=[pb.EnterpriseAggregateGroup(**g) for g in view["groups"]],
            reported_grams=view["reported_grams"],
            withheld_groups=view["withheld_groups"],
        )

    # --- retirement certificates (account.certificates, docs/certificate.md §8) --------------------
    @_handled
    def GetRetirementCertificate(self, request, context):
        return pb.RetirementCertificate(
            **self.certificates.of(
                self._account_id(request.account),
                list(request.reduction_ids),
                request.format or "json",
                context.time_remaining(),
            )
        )
