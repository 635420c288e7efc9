"""Settlement (ADR 0005 §1, §3) on the fake repository: a redemption's grams reach the bank pool
only once it is settled, a refund gives them back by a compensating entry and never after a
settlement, and the pool is spread over its shards. What a bank's product team and its auditors
care about: a gram is refunded or in the pool, never both; nothing is edited; the reductions
behind a refunded redemption still reach the exchange exactly once, with whoever spends them."""

from account import ledger
from account.outbox import Relay
from account.queries import Queries
from account.verifier import verify_chain
from carbon_common.accounts import POOL_OWNERS, pool_owner_for
from carbon_dev import payloads

from account_fakes import FakePublisher


def acc(user: str) -> str:
    return ledger.account_id_for(user)


def pool_transfers(repo) -> dict[str, dict]:
    out = {}
    for owner in POOL_OWNERS:
        for e in repo.account_entries(ledger.account_id_for(owner)):
            if e["type"] == "redemption_transfer":
                out[e["source_entry_id"]] = e
    return out


def relay(repo, ops) -> FakePublisher:
    publisher = FakePublisher()
    r = Relay(repo, ops, publisher)
    while r.relay_once() or r.settle_due_once():
        pass
    return publisher


def test_a_plain_redemption_reaches_the_pool_with_the_relays_next_pass_once(repo, ops):
    ops.credit_many([payloads.reduction("ann", 1, 800)])
    entry, _ = ops.redeem(acc("ann"), 500, "order-1")
    assert pool_transfers(repo) == {}  # debited at once, settled by the relay
    published = relay(repo, ops)
    transfer = pool_transfers(repo)[entry["_id"]]
    assert transfer["grams"] == 500 and transfer["owner_pid"] == pool_owner_for(entry["_id"])
    assert [(t, d["reason"]) for t, d, _, _ in published.published if t == "account_credited"] == [
        ("account_credited", "redemption_transfer")
    ]
    relay(repo, ops)
    assert len(pool_transfers(repo)) == 1 and repo.pending_outbox(100) == []


def test_a_pending_redemption_waits_for_its_confirmation_then_settles_once(repo, ops):
    ops.credit_many([payloads.reduction("bea", 1, 800)])
    entry, _ = ops.redeem(acc("bea"), 300, "order-1", item_id="metro-pass", settle="pending")
    relay(repo, ops)
    assert pool_transfers(repo) == {} and [m["_id"] for m in repo.pending_settlements(10)] == [entry["_id"]]
    assert ops.settle(entry["_id"]) == "settled"
    assert ops.settle(entry["_id"]) == "settled"
    assert pool_transfers(repo)[entry["_id"]]["item_id"] == "metro-pass"
    assert ops.refund(entry["_id"], "fulfilment_failed") == ("settled", None)  # too late: in the pool
    assert repo.pending_settlements(10) == []


def test_a_failed_fulfilment_is_refunded_by_a_new_entry_and_never_reaches_the_pool(repo, ops):
    ops.credit_many([payloads.reduction("cy", 1, 800)])
    entry, _ = ops.redeem(acc("cy"), 300, "order-1", settle="pending")
    fate, refund = ops.refund(entry["_id"], "fulfilment_failed")
    assert fate == "refunded" and (refund["type"], refund["grams"], refund["balance_after"]) == ("refund", 300, 800)
    assert ops.refund(entry["_id"], "fulfilment_failed")[1]["_id"] == refund["_id"]  # once
    assert ops.settle(entry["_id"]) == "refunded"
    relay(repo, ops)
    assert pool_transfers(repo) == {}
    chain = repo.account_entries(acc("cy"))
    assert [e["type"] for e in chain] == ["opened", "credit", "redemption", "refund"]  # nothing edited
    assert verify_chain(acc("cy"), chain)[0] == []


def test_a_pending_redemption_settles_when_its_window_has_passed(repo, ops):
    ops.credit_many([payloads.reduction("dee", 1, 800)])
    past, _ = ops.redeem(acc("dee"), 100, "order-1", settle="pending", settle_by="2020-01-01T00:00:00Z")
    future, _ = ops.redeem(acc("dee"), 100, "order-2", settle="pending", settle_by="2999-01-01T00:00:00Z")
    confirm_only, _ = ops.redeem(acc("dee"), 100, "order-3", settle="pending")
    relay(repo, ops)
    assert set(pool_transfers(repo)) == {past["_id"]}
    assert {m["_id"] for m in repo.pending_settlements(10)} == {future["_id"], confirm_only["_id"]}


def test_the_reductions_behind_a_refund_reach_the_pool_with_the_redemption_that_spends_them(repo, ops):
    ops.credit_many([payloads.reduction("eve", n, g) for n, g in ((1, 100), (2, 200))])
    failed, _ = ops.redeem(acc("eve"), 150, "order-1", settle="pending")
    ops.refund(failed["_id"], "fulfilment_failed")
    spent, _ = ops.redeem(acc("eve"), 300, "order-2")
    relay(repo, ops)
    transfer_id = ledger.transfer_entry_id(spent["_id"])
    carried = Queries(repo, ops.appender).contributions([transfer_id])[transfer_id]
    # the refunded redemption completed red-eve-1; the second one completed red-eve-2 and the refund
    assert sorted((c["reduction_id"], c["grams"]) for c in carried) == [("red-eve-1", 100), ("red-eve-2", 200)]


def test_settled_redemptions_spread_over_the_pool_shards(repo, ops):
    ops.credit_many([payloads.reduction("fin", 1, 10_000)])
    for n in range(40):
        ops.redeem(acc("fin"), 10, f"order-{n}")
    relay(repo, ops)
    used = {t["owner_pid"] for t in pool_transfers(repo).values()}
    assert used == set(POOL_OWNERS) and len(pool_transfers(repo)) == 40
    for owner in POOL_OWNERS:
        chain = repo.account_entries(ledger.account_id_for(owner))
        assert verify_chain(ledger.account_id_for(owner), chain)[0] == []
