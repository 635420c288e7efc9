"""Reading every page of the account gRPC API's paged lists, as a client does.

For the callers inside this repository (account.cli.report, carbon_dev's bridge demo and chaos
audit): they read through the API like any other bank system, not from the database.
"""

from carbon.account.v1 import account_service_pb2 as pb


def all_accounts(stub, timeout: float = 10) -> list:
    accounts, token = [], ""
    while True:
        page = stub.ListAccounts(pb.ListAccountsRequest(page_size=200, page_token=token), timeout=timeout)
        accounts.extend(page.accounts)
        token = page.next_page_token
        if not token:
            return accounts
