"""Bad input to the catalogue's gRPC methods against the real `python -m account.grpc_server`
process on FerretDB (as test_account_grpc_bad_input.py does for the ledger's methods, whose
METHODS check counts these tables too): each request is refused with its status and error code
first in the details, the answer stays small whatever was sent (no echo), and NOTHING was
written — ledger and catalogue collections counted before and after each call."""

import grpc
import pytest

from carbon.account.v1 import account_service_pb2 as pb

from account import ledger
from account.catalogue.catalogue import Catalogue
from account.catalogue.store import CatalogueStore
from account.grpc_validation import catalogue_spec

import test_account_grpc
import test_account_grpc_bad_input as base

grpc_process = test_account_grpc.grpc_process  # the server-process fixture, shared
world = base.world  # the ledger accounts of the ledger methods' tables
IA, NF, FP, AE = base.IA, base.NF, base.FP, base.AE
BIG, HUGE, MARK = base.BIG, base.HUGE, base.MARK
ALICE, ENT = base.ALICE, base.ENT
ref, with_refs, attempt = base.ref, base.with_refs, base.attempt
CATALOGUE_COLLECTIONS = (
    "catalogue_items",
    "catalogue_heads",
    "catalogue_claims",
    "catalogue_redemptions",
    "catalogue_fulfilments",
    "catalogue_open",
)


def spec(**kw):
    fields = {"item_id": "mug", "title": "Bamboo mug", "kind": "coupon", "price_grams": 30, "stock": 5}
    return pb.CatalogueItemSpec(**{**fields, **kw})


def put(expected_version=0, request_key="p-new", reason="", restock=False, **spec_fields):
    return pb.PutCatalogueItemRequest(
        item=spec(**spec_fields),
        expected_version=expected_version,
        request_key=request_key,
        reason=reason,
        restock=restock,
    )


def partner(**kw):
    return put(**{"fulfilment": "partner", "partner_id": "metro-sz", "fulfilment_window_seconds": 3600, **kw})


def retire(item_id="tea", expected_version=1, request_key="r-new", reason=""):
    return pb.RetireCatalogueItemRequest(
        item_id=item_id, expected_version=expected_version, request_key=request_key, reason=reason
    )


def redeem_item(item_id="tea", request_key="ri-new", account=None):
    return pb.RedeemItemRequest(account=account or ref(owner_pid="pid-alice"), item_id=item_id, request_key=request_key)


def versions(**kw):
    return pb.ListCatalogueItemVersionsRequest(**{"item_id": "tea", **kw})


def listing(**kw):
    return pb.ListCatalogueRequest(**kw)


def redemption(request_key="k-1", account=None):
    return pb.GetCatalogueRedemptionRequest(account=account or ref(owner_pid="pid-alice"), request_key=request_key)


BAD_ITEM_IDS = [
    ("", "invalid_item_id"),
    (BIG, "invalid_item_id"),
    ("Tea", "invalid_item_id"),  # upper case
    ("tea:1", "invalid_item_id"),
    ("-tea", "invalid_item_id"),
    ("t" * 65, "invalid_item_id"),
    ("t\u00e9", "invalid_item_id"),
]

METHODS = {
    "PutCatalogueItem": [
        (pb.PutCatalogueItemRequest(request_key="p-x"), IA, "missing_item"),
        *[(put(item_id=item_id), IA, code) for item_id, code in BAD_ITEM_IDS],
        (put(title=""), IA, "invalid_title"),
        (put(title=HUGE), IA, "invalid_title"),
        (put(title="Mug\n"), IA, "invalid_title"),
        (put(title=" Mug"), IA, "invalid_title"),
        (put(title="\u202eguM"), IA, "invalid_title"),
        (put(kind=""), IA, "invalid_item_kind"),
        (put(kind="car"), IA, "invalid_item_kind"),
        (put(kind=BIG), IA, "invalid_item_kind"),
        (put(price_grams=0), IA, "invalid_price_grams"),
        (put(price_grams=-5), IA, "invalid_price_grams"),
        (put(price_grams=10**12 + 1), IA, "invalid_price_grams"),
        (put(stock=-1), IA, "invalid_stock"),
        (put(stock=1_000_001), IA, "invalid_stock"),
        (put(stock=5, unlimited_stock=True), IA, "invalid_stock"),
        (put(limit_count=-1), IA, "invalid_limit_count"),
        (put(limit_count=101, limit_period="day"), IA, "invalid_limit_count"),
        (put(limit_count=2), IA, "invalid_limit_period"),
        (put(limit_period="day"), IA, "invalid_limit_period"),
        (put(limit_count=2, limit_period="week"), IA, "invalid_limit_period"),
        (put(valid_from="tomorrow"), IA, "invalid_valid_from"),
        (put(valid_from=BIG), IA, "invalid_valid_from"),
        (put(valid_until="2026-13-01T00:00:00Z"), IA, "invalid_valid_until"),
        (put(valid_from="2027-01-01T00:00:00Z", valid_until="2026-01-01T00:00:00Z"), IA, "invalid_validity"),
        (put(valid_from="2027-01-01T08:00:00+08:00", valid_until="2027-01-01T00:00:00Z"), IA, "invalid_validity"),
        (put(eligible_tiers=["platinum"]), IA, "invalid_eligible_tiers"),  # not a configured tier
        (put(eligible_tiers=[BIG]), IA, "invalid_eligible_tiers"),
        (put(eligible_tiers=["tree", "tree"]), IA, "invalid_eligible_tiers"),
        (put(eligible_tiers=[f"t{i}" for i in range(17)]), IA, "invalid_eligible_tiers"),
        (put(eligible_tiers=["tree tops"]), IA, "invalid_eligible_tiers"),
        (put(fulfilment="courier"), IA, "invalid_fulfilment"),
        (put(partner_id="metro-sz"), IA, "invalid_fulfilment"),  # partner fields without "partner"
        (put(on_expiry="refund"), IA, "invalid_fulfilment"),
        (put(fulfilment_window_seconds=60), IA, "invalid_fulfilment"),
        (partner(partner_id=""), IA, "invalid_partner_id"),
        (partner(partner_id="Metro"), IA, "invalid_partner_id"),
        (partner(partner_id=BIG), IA, "invalid_partner_id"),
        (partner(fulfilment_window_seconds=0), IA, "invalid_fulfilment_window"),
        (partner(fulfilment_window_seconds=59), IA, "invalid_fulfilment_window"),
        (partner(fulfilment_window_seconds=90 * 86400 + 1), IA, "invalid_fulfilment_window"),
        (partner(on_expiry="keep"), IA, "invalid_on_expiry"),
        (put(expected_version=-1), IA, "invalid_expected_version"),
        (put(expected_version=10**9 + 1), IA, "invalid_expected_version"),
        (put(request_key=""), IA, "invalid_request_key"),
        (put(request_key=BIG), IA, "invalid_request_key"),
        (put(reason="new price"), IA, "invalid_reason"),
        (put(reason=HUGE), IA, "invalid_reason"),
        (put(item_id="tea"), AE, "item_exists"),
        (put(item_id="tea", expected_version=2, request_key="p-2"), FP, "version_conflict"),
        (put(item_id="nothing", expected_version=1), NF, "item_not_found"),
        (put(item_id="tea", expected_version=1, stock=99), IA, "invalid_stock"),  # a new stock needs restock
        (put(item_id="tea", price_grams=10, request_key="p-used"), AE, "request_key_reused"),
    ],
    "RetireCatalogueItem": [
        *[(retire(item_id=item_id), IA, code) for item_id, code in BAD_ITEM_IDS],
        (retire(expected_version=0), IA, "invalid_expected_version"),
        (retire(expected_version=-3), IA, "invalid_expected_version"),
        (retire(request_key=""), IA, "invalid_request_key"),
        (retire(request_key="k" * 129), IA, "invalid_request_key"),
        (retire(reason="end of season"), IA, "invalid_reason"),
        (retire(item_id="nothing"), NF, "item_not_found"),
        (retire(expected_version=7), FP, "version_conflict"),
        (retire(item_id="gone", expected_version=2), FP, "item_retired"),
    ],
    "ListCatalogueItemVersions": [
        *[(versions(item_id=item_id), IA, code) for item_id, code in BAD_ITEM_IDS],
        (versions(page_size=501), IA, "invalid_page_size"),
        (versions(page_size=-1), IA, "invalid_page_size"),
        (versions(page_token="0"), IA, "invalid_page_token"),
        (versions(page_token="abc"), IA, "invalid_page_token"),
        (versions(page_token=BIG), IA, "invalid_page_token"),
        (versions(item_id="nothing"), NF, "item_not_found"),
    ],
    "ListCatalogue": [
        *[(listing(account=r), code, error) for r, code, error in base.BAD_REFS],
        (listing(page_size=501), IA, "invalid_page_size"),
        (listing(page_token="Tea"), IA, "invalid_page_token"),
        (listing(page_token=BIG), IA, "invalid_page_token"),
    ],
    "RedeemItem": [
        *with_refs(lambda r: redeem_item(account=r)),
        (pb.RedeemItemRequest(item_id="tea", request_key="k"), IA, "missing_account"),
        *[(redeem_item(item_id=item_id), IA, code) for item_id, code in BAD_ITEM_IDS],
        (redeem_item(request_key=""), IA, "invalid_request_key"),
        (redeem_item(request_key=HUGE), IA, "invalid_request_key"),
        (redeem_item(request_key="order 42"), IA, "invalid_request_key"),
        (redeem_item(item_id="nothing"), NF, "item_not_found"),
        (redeem_item(item_id="gone"), FP, "item_retired"),
        (redeem_item(item_id="soon"), FP, "not_yet_valid"),
        (redeem_item(item_id="gold"), FP, "not_eligible"),
        (redeem_item(item_id="sold"), FP, "out_of_stock"),
        (redeem_item(item_id="once"), FP, "limit_reached"),
        (redeem_item(item_id="dear"), FP, "insufficient_balance"),
        (redeem_item(account=ref(owner_pid="pid-ent")), FP, "account_not_open"),  # frozen
        (redeem_item(account=ref(owner_pid="pid-closed")), FP, "account_not_open"),
        (redeem_item(account=ref(owner_pid=ledger.POOL_OWNER)), IA, "invalid_account"),
        (redeem_item(request_key="r-used"), AE, "request_key_reused"),  # a plain Redeem's key
        (redeem_item(item_id="once", request_key="sold-1"), AE, "request_key_reused"),  # used for "sold"
    ],
    "GetCatalogueRedemption": [
        *with_refs(lambda r: redemption(account=r)),
        (pb.GetCatalogueRedemptionRequest(request_key="k"), IA, "missing_account"),
        (redemption(request_key=""), IA, "invalid_request_key"),
        (redemption(request_key=BIG), IA, "invalid_request_key"),
        (redemption(request_key="nothing"), NF, "redemption_not_found"),
        (redemption(request_key="r-used"), NF, "redemption_not_found"),  # a plain Redeem
    ],
}


@pytest.fixture
def catalogue_world(world, ops, repo):
    """base.world, and the items: tea (1 unit left of 3), gone (retired at version 2), soon
    (valid from 2099), gold (tier "tree" only), sold (sold out), once (limit 1 a day, used by
    alice with key "once-1"), dear (more than alice's balance)."""
    catalogue = Catalogue(ops, CatalogueStore(repo.db))

    def create(item_id, request_key="p-used", **kw):
        fields = {"item_id": item_id, "title": item_id.title(), "kind": "coupon", "price_grams": 20, "stock": 3}
        catalogue.put_item(catalogue_spec(pb.CatalogueItemSpec(**{**fields, **kw})), 0, False, request_key)

    create("tea")
    for name in ("gone", "soon", "gold", "sold", "once", "dear"):
        create(
            name,
            request_key=f"c-{name}",
            **{
                "soon": {"valid_from": "2099-01-01T00:00:00Z"},
                "gold": {"eligible_tiers": ["tree"]},
                "sold": {"stock": 1},
                "once": {"limit_count": 1, "limit_period": "day"},
                "dear": {"price_grams": 10_000},
            }.get(name, {}),
        )
    catalogue.retire_item("gone", 1, "r-gone")
    catalogue.redeem(ALICE, "sold", "sold-1")
    catalogue.redeem(ALICE, "once", "once-1")
    return catalogue


def written(repo) -> dict:
    counts = base.written(repo)
    counts.update({name: repo.db[name].count_documents({}) for name in CATALOGUE_COLLECTIONS})
    return counts


@pytest.mark.parametrize("method", sorted(METHODS))
def test_bad_catalogue_input_is_refused_small_and_writes_nothing(method, grpc_process, repo, catalogue_world):
    server = grpc_process()
    assert base.refusals(server, method, METHODS[method], lambda: written(repo)) == []


def test_every_catalogue_method_has_a_table():
    catalogue = {m for m in pb.DESCRIPTOR.services_by_name["AccountService"].methods_by_name if "Catalogue" in m}
    assert catalogue | {"RedeemItem"} == set(METHODS)


def test_a_refused_redemption_leaves_stock_and_limits_as_they_were(grpc_process, repo, catalogue_world):
    """The refusals above wrote nothing, and the units they could not have are still there."""
    server = grpc_process()
    code, _, _ = attempt(server["grpc"], "RedeemItem", redeem_item(item_id="dear"))
    assert code == FP
    code, _, _ = attempt(server["grpc"], "RedeemItem", redeem_item(item_id="tea", request_key="tea-ok"))
    assert code == grpc.StatusCode.OK
    offers = {o["item"]["item_id"]: o for o in catalogue_world.offers(ALICE)["offers"]}
    assert (offers["tea"]["stock_left"], offers["dear"]["stock_left"], offers["sold"]["stock_left"]) == (2, 3, 0)
