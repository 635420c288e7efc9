"""account.grpc_validation: every request field has a rule, bounds refuse without echoing, and
RFC 3339 times become the ledger's UTC text. The same rules against the real server process:
integration/test_account_grpc_bad_input.py."""

import pytest

from carbon.account.v1 import account_service_pb2 as pb

from account import grpc_validation as v
from account.ledger import ENTRY_TYPES, InvalidRequest

SERVICE = pb.DESCRIPTOR.services_by_name["AccountService"]
ACC = "acc_" + "0123456789abcdef" * 2


def refusal(request) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        v.check_request(request)
    return caught.value


def test_every_field_of_every_request_has_a_rule():
    fields = v.request_fields(SERVICE)
    assert "carbon.account.v1.AccountRef.owner_pid" in fields and "carbon.account.v1.SetStatusRequest.reason" in fields
    assert [f for f in fields if f not in v.FIELD_RULES] == [], "give each new request field a rule in FIELD_RULES"
    assert set(v.FIELD_RULES) <= set(fields), "a rule for a field no request has (renamed?)"


def test_a_field_without_a_rule_fails_closed(monkeypatch):
    rules = dict(v.FIELD_RULES)
    del rules["carbon.account.v1.RedeemRequest.reward_id"]
    monkeypatch.setattr(v, "FIELD_RULES", rules)
    with pytest.raises(v.UnboundField):
        v.check_request(pb.RedeemRequest(account=pb.AccountRef(owner_pid="p"), grams=1, request_key="k"))


@pytest.mark.parametrize(
    "request_, code",
    [
        (
            pb.RedeemRequest(account=pb.AccountRef(owner_pid="p"), grams=1, request_key="k", reward_id="r" * 65),
            "invalid_reward_id",
        ),
        (
            pb.RedeemRequest(account=pb.AccountRef(owner_pid="p"), grams=1, request_key="k", reward_id="-r"),
            "invalid_reward_id",
        ),
        (pb.RedeemRequest(account=pb.AccountRef(owner_pid="p"), grams=1, request_key="k y"), "invalid_request_key"),
        (pb.RedeemRequest(account=pb.AccountRef(owner_pid="p"), grams=1, request_key="k" * 129), "invalid_request_key"),
        (pb.RedeemRequest(account=pb.AccountRef(owner_pid="p"), grams=0, request_key="k"), "invalid_grams"),
        (pb.RedeemRequest(grams=1, request_key="k"), "missing_account"),
        (pb.AccountRef(), "missing_account"),
        (pb.AccountRef(account_id="acc_" + "0" * 31), "invalid_account_id"),
        (pb.AccountRef(account_id=ACC.upper()), "invalid_account_id"),
        (pb.AccountRef(account_id=ACC + "\n"), "invalid_account_id"),
        (pb.AccountRef(owner_pid=""), "invalid_owner_pid"),
        (pb.AccountRef(owner_pid="p" * 129), "invalid_owner_pid"),
        (pb.AccountRef(owner_pid="pid alice"), "invalid_owner_pid"),
        (pb.AccountRef(owner_pid="pïd"), "invalid_owner_pid"),
        (pb.ListAccountsRequest(page_token="acc_zz"), "invalid_page_token"),
        (pb.ListAccountsRequest(page_size=501), "invalid_page_size"),
        (pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), page_token="0"), "invalid_page_token"),
        (pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), page_token="²"), "invalid_page_token"),
        (pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), page_size=-1), "invalid_page_size"),
        (
            pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), types=["credit"] * (len(ENTRY_TYPES) + 1)),
            "invalid_type",
        ),
        (pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), types=["bonus"]), "invalid_type"),
        (pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), scenario="metro ride"), "invalid_scenario"),
        (pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), posted_from="yesterday"), "invalid_posted_from"),
        (
            pb.ListEntriesRequest(account=pb.AccountRef(account_id=ACC), posted_to="2026-13-01T00:00:00Z"),
            "invalid_posted_to",
        ),
        (pb.GetStatementRequest(account=pb.AccountRef(account_id=ACC), month="2026-1"), "invalid_month"),
        (pb.GetStatementRequest(account=pb.AccountRef(account_id=ACC), month="２０２６-01"), "invalid_month"),
        (pb.GetStatementRequest(account=pb.AccountRef(account_id=ACC)), "invalid_month"),
        (pb.GetTotalsRequest(account=pb.AccountRef()), "missing_account"),
        (pb.OpenAccountRequest(), "invalid_owner_pid"),
        (pb.OpenAccountRequest(owner_pid="bank-pool"), "invalid_owner_pid"),
        (pb.OpenAccountRequest(owner_pid="bank-pool/3"), "invalid_owner_pid"),  # a future pool shard
        (pb.OpenAccountRequest(owner_pid="p", kind="pool"), "invalid_kind"),
        (pb.OpenAccountRequest(owner_pid="p", alias=" Ann"), "invalid_alias"),
        (pb.OpenAccountRequest(owner_pid="p", alias="A\u202eB"), "invalid_alias"),
        (pb.OpenAccountRequest(owner_pid="p", alias="A\nB"), "invalid_alias"),
        (pb.OpenAccountRequest(owner_pid="p", alias="A" * 65), "invalid_alias"),
        (pb.SetStatusRequest(account=pb.AccountRef(account_id=ACC), request_key="k"), "invalid_status"),
        (
            pb.SetStatusRequest(account=pb.AccountRef(account_id=ACC), status="Frozen", request_key="k"),
            "invalid_status",
        ),
        (pb.SetStatusRequest(account=pb.AccountRef(account_id=ACC), status="frozen"), "invalid_request_key"),
        (
            pb.SetStatusRequest(
                account=pb.AccountRef(account_id=ACC), status="frozen", request_key="k", reason="why not?"
            ),
            "invalid_reason",
        ),
    ],
)
def test_bad_fields_are_refused_with_their_code_and_no_echo(request_, code):
    refused = refusal(request_)
    assert refused.code == code
    assert len(str(refused)) < 200
    for field in request_.DESCRIPTOR.fields:
        value = getattr(request_, field.name)
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(refused)


def test_good_requests_pass():
    for request_ in (
        pb.AccountRef(owner_pid="pid-alice"),
        pb.AccountRef(owner_pid="f" * 64),
        pb.AccountRef(owner_pid="bank-pool/0"),  # a pool shard (ADR 0005 §3) can be read
        pb.AccountRef(account_id=ACC),
        pb.ListAccountsRequest(page_size=500, page_token=ACC),
        pb.ListEntriesRequest(
            account=pb.AccountRef(owner_pid="bank-pool"),
            page_token="42",
            types=["credit", "redemption"],
            scenario="metro_ride",
            posted_from="2026-11-01T00:00:00+08:00",
            posted_to="2026-12-01T00:00:00Z",
        ),
        pb.GetTotalsRequest(),
        pb.RedeemRequest(
            account=pb.AccountRef(owner_pid="p"), grams=2**63 - 1, request_key="order#42/a", reward_id="tea:L.1"
        ),
        pb.OpenAccountRequest(owner_pid="ent-1", kind="enterprise", alias="Zhang San 张三"),
        pb.SetStatusRequest(account=pb.AccountRef(owner_pid="p"), status="open", request_key="k", reason="fraud_check"),
    ):
        v.check_request(request_)


@pytest.mark.parametrize(
    "text, utc",
    [
        ("2026-11-01T00:00:00+08:00", "2026-10-31T16:00:00.000000Z"),
        ("2026-11-01T00:00:00Z", "2026-11-01T00:00:00.000000Z"),
        ("2026-11-01t00:00:00.5z", "2026-11-01T00:00:00.500000Z"),
        ("2026-11-01T00:00:00.0000001Z", "2026-11-01T00:00:00.000001Z"),  # rounded up: >= / < keep their meaning
        ("2026-11-01T00:00:00.999999999-00:30", "2026-11-01T00:30:01.000000Z"),
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000000Z"),  # a leap second
    ],
)
def test_rfc3339_becomes_the_ledgers_utc_text(text, utc):
    assert v.rfc3339_utc(text, "posted_from", "invalid_posted_from") == utc


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-11-01",
        "2026-11-01T00:00:00",  # no offset
        "2026-11-01 00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-01T24:00:00Z",
        "2026-11-01T00:00:61Z",
        "2026-11-01T00:00:00+24:00",
        "2026-11-01T00:00:00.1234567890Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",  # beyond year 9999 in UTC
        "２０２６-11-01T00:00:00Z",
        "2026-11-01T00:00:00Z" + "0" * 20000,
    ],
)
def test_anything_else_is_refused(text):
    with pytest.raises(InvalidRequest) as caught:
        v.rfc3339_utc(text, "posted_from", "invalid_posted_from")
    assert caught.value.code == "invalid_posted_from"
    assert str(caught.value) == "posted_from must be an RFC 3339 date-time such as 2026-11-01T00:00:00+08:00"


def test_time_range():
    assert v.time_range("", "") == ("", "")
    assert v.time_range("2026-11-01T08:00:00+08:00", "2026-11-01T00:00:00Z") == (
        "2026-11-01T00:00:00.000000Z",
        "2026-11-01T00:00:00.000000Z",
    )
    with pytest.raises(InvalidRequest) as caught:
        v.time_range("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z")
    assert caught.value.code == "invalid_time_range"
