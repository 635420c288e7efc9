"""The enterprise part of the demo (dev only, never in an image), over the account gRPC API:

    stub = AccountServiceStub(grpc.insecure_channel("127.0.0.1:50051"))
    set_up(stub, enterprise_pid, employee_pids[:8])   # opens the enterprise and links 8 employees
    ... the day's records are sent and credited ...
    print("\\n".join(account.enterprise.view.view_lines(stub, enterprise_pid, "2026-12")))

`set_up` is idempotent (request keys derived from the pseudonyms), so a re-run changes nothing.
Only credits posted after the links count: link before the records are sent. The enterprise earns
from its own record of an enterprise-scope scenario: `green_power_record` builds one for a data
partner allowed `green_electricity_office`, under the enterprise's consent with that partner
(its `user_pid` is `enterprise_pid`).
"""

from carbon.account.v1 import account_service_pb2 as pb

DEMO_CONSENT = "demo-staff-consent"


def set_up(
    stub, enterprise_pid: str, employee_pids: list[str], alias: str = "Demo Enterprise", consented_at: str = ""
) -> str:
    """Open the enterprise's account (kind enterprise) and link each employee's account to it
    with a demo consent (each employee's account opened if need be). -> the enterprise account id."""
    from carbon_common.clock import utc_now_iso

    at = consented_at or utc_now_iso("seconds")
    account = stub.OpenAccount(
        pb.OpenAccountRequest(owner_pid=enterprise_pid, kind="enterprise", alias=alias), timeout=10
    ).account
    enterprise = pb.AccountRef(account_id=account.account_id)
    for pid in employee_pids:
        stub.OpenAccount(pb.OpenAccountRequest(owner_pid=pid), timeout=10)
        links = stub.ListEnterpriseLinks(
            pb.ListEnterpriseLinksRequest(employee=pb.AccountRef(owner_pid=pid)), timeout=10
        ).links
        if any(x.enterprise_account_id == account.account_id and x.linked for x in links):
            continue
        stub.LinkEnterprise(
            pb.LinkEnterpriseRequest(
                employee=pb.AccountRef(owner_pid=pid),
                enterprise=enterprise,
                consent_ref=DEMO_CONSENT,
                consented_at=at,
                request_key=f"demo-link-{account.account_id[-12:]}",  # keys are per employee
            ),
            timeout=10,
        )
    return account.account_id


def green_power_record(enterprise_number: str, occurred_at: str, kwh: str = "12000", region: str = "south") -> dict:
    """A green_electricity_office record for the enterprise's office (a certificate per month)."""
    return {
        "record_id": f"gec-{enterprise_number}-{occurred_at[:7]}",
        "customer_ref": enterprise_number,
        "scenario": "green_electricity_office",
        "occurred_at": occurred_at,
        "activity": {"kwh": kwh, "region": region, "certificate_id": f"GEC-{enterprise_number[-8:]}-{occurred_at[:7]}"},
    }
