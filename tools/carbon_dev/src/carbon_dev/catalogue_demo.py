"""`python -m carbon_dev.catalogue_demo --grpc 127.0.0.1:50051 --base-url http://127.0.0.1:8080`

The rewards catalogue in `make run` (docs/catalogue.md), through the platform's own interfaces:

1. the bank's operator lists a reward with the account gRPC API (`PutCatalogueItem`): a metro day
   pass that the demo MaaS partner delivers (fulfilment "partner");
2. a demo customer who can afford it finds it in `ListCatalogue` and redeems it (`RedeemItem`):
   debited at once, pending until the partner reports;
3. the partner confirms the fulfilment with its SM2-signed call to ingest
   (`POST /v1/fulfilments/{id}/confirm`, the ingest SDK), ingest publishes the report, the account
   applies it (`GetCatalogueRedemption` says confirmed) and the grams settle into the bank pool:
   the pool chain of the redemption holds its transfer entry (`ListEntries`).

Idempotent: the item's request key is fixed and the redemption's is per customer and day (the
item allows one a day), so a re-run the same day finds what it did. Environment: PSEUDONYM_KEY
(the customers' pseudonyms, as ingest computes them). Exit 1 when a step did not happen.
"""

import argparse
import datetime
import sys
import time

import grpc

from account.ledger import transfer_entry_id  # dev tooling: every service is installed
from carbon.account.v1 import account_service_pb2 as pb
from carbon.account.v1 import account_service_pb2_grpc as pb_grpc
from carbon_common import gm
from carbon_common.accounts import pool_owner_for
from carbon_common.config import require
from carbon_dev import ingest_demo
from ingest.sdk.client import IngestClient

PARTNER = "demo-maas"
ITEM = pb.CatalogueItemSpec(
    item_id="demo-metro-day-pass",
    title="Metro day pass",
    kind="metro_pass",
    price_grams=2_000,
    stock=1_000,
    limit_count=1,
    limit_period="day",
    fulfilment="partner",
    partner_id=PARTNER,
    fulfilment_window_seconds=3_600,
    on_expiry="refund",
)


def grams(n: int) -> str:
    return f"{n:,} g"


def wait_for(check, timeout: float, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(interval)


def choose_customer(stub, pseudonym_key: bytes, day: str):
    """The first demo customer who redeemed the pass today (a re-run), else the first who can now
    (a programme household when no customer of a short demo day can afford it).
    -> (customer number, AccountRef, request key, existing redemption or None, offer) or None."""
    for number in ingest_demo.customers(50) + ingest_demo.households():
        ref = pb.AccountRef(owner_pid=gm.pseudonymize(pseudonym_key, number))
        try:
            account = stub.GetAccount(ref, timeout=10)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                continue
            raise
        key = f"demo-pass-{day}-{account.account_id}"
        try:
            existing = stub.GetCatalogueRedemption(
                pb.GetCatalogueRedemptionRequest(account=ref, request_key=key), timeout=10
            )
            return number, ref, key, existing, None
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        listing = stub.ListCatalogue(pb.ListCatalogueRequest(account=ref, page_size=500), timeout=10)
        offer = next((o for o in listing.offers if o.item.spec.item_id == ITEM.item_id), None)
        if offer is not None and offer.available:
            return number, ref, key, None, (offer, listing.balance_grams)
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carbon_dev.catalogue_demo", description=__doc__.splitlines()[0])
    parser.add_argument("--grpc", default="127.0.0.1:50051")
    parser.add_argument("--base-url", default="http://127.0.0.1:8080", help="ingest, where partners report")
    args = parser.parse_args(argv)
    pseudonym_key = bytes.fromhex(require("PSEUDONYM_KEY"))
    day = datetime.datetime.now(ingest_demo.CST).strftime("%Y%m%d")
    with grpc.insecure_channel(args.grpc) as channel:
        stub = pb_grpc.AccountServiceStub(channel)
        put = stub.PutCatalogueItem(
            pb.PutCatalogueItemRequest(item=ITEM, request_key=f"demo-put-{ITEM.item_id}", reason="demo"), timeout=10
        )
        print(
            f'  the operator lists {ITEM.item_id} "{ITEM.title}" (PutCatalogueItem, version {put.item.version}'
            f"{', listed on an earlier run' if put.replayed else ''}): {grams(ITEM.price_grams)}, stock "
            f"{ITEM.stock:,}, {ITEM.limit_count} a {ITEM.limit_period} per customer, delivered by partner {PARTNER} "
            f"within {ITEM.fulfilment_window_seconds // 60} min"
        )
        chosen = choose_customer(stub, pseudonym_key, day)
        if chosen is None:
            print("  no demo customer can redeem it now (balances too low, or today's pass already taken)")
            return 1
        number, ref, key, redemption, offer = chosen
        if redemption is None:
            (offered, balance) = offer
            answer = stub.RedeemItem(
                pb.RedeemItemRequest(account=ref, item_id=ITEM.item_id, request_key=key), timeout=30
            )
            redemption = answer.redemption
            print(
                f"  customer {number} finds it available in ListCatalogue (balance {grams(balance)}, "
                f"{offered.stock_left:,} left) and redeems it (RedeemItem): redemption {redemption.redemption_id[:16]}…, "
                f"{grams(redemption.price_grams)} debited, {redemption.status}"
            )
        else:
            print(
                f"  customer {number} redeemed it earlier today (RedeemItem, key {key}): "
                f"redemption {redemption.redemption_id[:16]}…, {redemption.status}"
            )
        partner = IngestClient(args.base_url, PARTNER, f"{PARTNER}-k1", ingest_demo.demo_key(PARTNER)[0])
        if redemption.status == "awaiting_partner":
            reported = partner.confirm_fulfilment(redemption.redemption_id, reference=f"pass-{day}-{number[-4:]}")
            print(
                f"  {PARTNER} delivers the pass and confirms it with its SM2-signed call "
                f"POST /v1/fulfilments/{redemption.redemption_id[:16]}…/confirm: {reported.status_code}"
            )
            if reported.status_code != 202:
                print(f"    {reported.text[:300]}")
                return 1

        def status():
            got = stub.GetCatalogueRedemption(
                pb.GetCatalogueRedemptionRequest(account=ref, request_key=key), timeout=10
            )
            return got if got.status not in ("awaiting_partner",) else None

        closed = wait_for(status, timeout=60)
        if closed is None or closed.status != "confirmed":
            print(f"  the redemption is {closed.status if closed else 'still awaiting the partner'} after 60 s")
            return 1
        pool = pool_owner_for(redemption.redemption_id)
        transfer = transfer_entry_id(redemption.redemption_id)

        def pooled():
            page = stub.ListEntries(
                pb.ListEntriesRequest(
                    account=pb.AccountRef(owner_pid=pool), page_size=200, types=["redemption_transfer"]
                ),
                timeout=10,
            )
            return next((e for e in page.entries if e.entry_id == transfer), None)

        entry = wait_for(pooled, timeout=30)
        if entry is None:
            print(f"  confirmed, but no transfer {transfer[:16]}… in the pool chain {pool} after 30 s")
            return 1
        print(
            f"  the account applied the partner's report: GetCatalogueRedemption says {closed.status}, and "
            f"{grams(entry.grams)} reached the bank pool (chain {pool}, entry {entry.entry_id[:16]}…)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
