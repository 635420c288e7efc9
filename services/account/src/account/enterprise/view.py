"""What an enterprise sees of a month, over the account gRPC API (docs/enterprise.md): one line per
scenario (employees and grams, or withheld below the minimum group size) and a total line.
`python -m account.cli.enterprise` prints it."""

from carbon.account.v1 import account_service_pb2 as pb


def view_lines(stub, enterprise_pid: str, month: str) -> list[str]:
    """What the enterprise sees of a month, as lines to print."""
    account = stub.GetAccount(pb.AccountRef(owner_pid=enterprise_pid), timeout=10)
    view = stub.GetEnterpriseAggregate(
        pb.GetEnterpriseAggregateRequest(enterprise=pb.AccountRef(account_id=account.account_id), month=month),
        timeout=10,
    )
    lines = [
        f"[enterprise] {account.account_id} ({account.kind}), {month}: its linked employees' reductions "
        f"(groups of fewer than {view.min_group} employees withheld; no employee's grams move)"
    ]
    for g in view.groups:
        if g.withheld:
            lines.append(f"[enterprise]   {g.scenario:<24} withheld (fewer than {view.min_group} employees)")
        else:
            reversed_ = f", {g.reversed_grams:,} g reversed" if g.reversed_grams else ""
            lines.append(f"[enterprise]   {g.scenario:<24} {g.contributors:>4} employees {g.grams:>12,} g{reversed_}")
    if not view.groups:
        lines.append("[enterprise]   nothing yet (no linked employee earned this month)")
    lines.append(
        f"[enterprise]   reported {view.reported_grams:,} g, {view.withheld_groups} group(s) withheld; "
        f"the enterprise's own balance {account.balance_grams:,} g"
    )
    return lines
