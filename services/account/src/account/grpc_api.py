"""carbon.account.v1.AccountService: maps the ledger's queries and redemption onto protobuf."""

import grpc

from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc

from account.ledger import AccountNotOpen, InsufficientBalance, InvalidRequest, LedgerError, RequestKeyReused
from carbon_common.metrics import HANDLER_SECONDS

from account.metrics import GRPC_CALLS
from account.queries import public_entry

ENTRY_FIELDS = [f.name for f in pb.Entry.DESCRIPTOR.fields]
STATUS_OF = (
    (LookupError, grpc.StatusCode.NOT_FOUND),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (RequestKeyReused, grpc.StatusCode.ALREADY_EXISTS),
    ((InsufficientBalance, AccountNotOpen), grpc.StatusCode.FAILED_PRECONDITION),
    (LedgerError, grpc.StatusCode.FAILED_PRECONDITION),
)


def to_entry(entry: dict) -> pb.Entry:
    return pb.Entry(**{k: entry[k] for k in ENTRY_FIELDS if entry.get(k) not in (None, "")})


def _handled(method):
    def wrapper(self, request, context):
        try:
            with HANDLER_SECONDS.labels("account-grpc", method.__name__).time():
                response = method(self, request, context)
            GRPC_CALLS.labels(method.__name__, "OK").inc()
            return response
        except Exception as exc:
            for types, code in STATUS_OF:
                if isinstance(exc, types):
                    GRPC_CALLS.labels(method.__name__, code.name).inc()
                    detail = f"unknown account {exc}" if isinstance(exc, LookupError) else f"{exc.code}: {exc}"
                    context.abort(code, detail)
            GRPC_CALLS.labels(method.__name__, "INTERNAL").inc()
            raise

    wrapper.__name__ = method.__name__
    return wrapper


class AccountServicer(pb_grpc.AccountServiceServicer):
    def __init__(self, ledger):
        self.ledger = ledger  # dependencies.Ledger

    def _account_id(self, ref: pb.AccountRef) -> str:
        which = ref.WhichOneof("ref")
        if which is None:
            raise InvalidRequest("account ref needs account_id or owner_pid", "missing_account")
        return self.ledger.queries.account_id(**{which: getattr(ref, which)})

    @_handled
    def GetAccount(self, request, context):
        return pb.Account(
            **{k: v for k, v in self.ledger.queries.account(self._account_id(request)).items() if k != "as_of_seq"}
        )

    @_handled
    def ListAccounts(self, request, context):
        page = self.ledger.queries.accounts(request.page_size, request.page_token)
        return pb.ListAccountsResponse(
            accounts=[pb.Account(**{k: v for k, v in a.items() if k != "as_of_seq"}) for a in page["accounts"]],
            next_page_token=page["next_page_token"],
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
        page = self.ledger.queries.entries(
            self._account_id(request.account),
            request.page_size,
            request.page_token,
            list(request.types),
            request.scenario,
            request.posted_from,
            request.posted_to,
        )
        return pb.ListEntriesResponse(
            entries=[to_entry(e) for e in page["entries"]], next_page_token=page["next_page_token"]
        )

    @_handled
    def GetStatement(self, request, context):
        s = self.ledger.queries.statement(self._account_id(request.account), request.month)
        return pb.Statement(**{**s, "scenarios": [pb.ScenarioLine(**line) for line in s["scenarios"]]})

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
