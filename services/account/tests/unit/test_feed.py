"""account.feed: every publishing batch carries one `entries_posted` event listing exactly the
individual credits and reversals among its events, valid against its proto contract, with an
id a redelivered batch repeats; a batch without any carries none."""

from account import feed, ledger
from account.operations import LedgerOperations
from account.outbox import Relay, event_items
from account.tiers import Tiers
from carbon_common.schemas import check_payload
from carbon_dev import payloads

from account_fakes import FakePublisher, FakeRepository


def posted_batch(ops, users_grams):
    entries, openings = ops.credit_many(
        [payloads.reduction(user, n, grams) for n, (user, grams) in enumerate(users_grams, 1)]
    )
    items = [i for e in openings for i in event_items(e)] + [i for e in entries for i in event_items(e)]
    return entries, feed.with_entries_posted(items)


def test_a_credit_batch_lists_its_individual_credits_once_in_one_event():
    ops = LedgerOperations(FakeRepository(), Tiers())
    entries, items = posted_batch(ops, [("alice", 120), ("bob", 80)])
    summaries = [i for i in items if i[0] == feed.EVENT_TYPE]
    assert len(summaries) == 1 and items[-1] is summaries[0]
    _, payload, event_id, _ = summaries[0]
    check_payload(feed.EVENT_TYPE, payload)  # the proto contract (EntriesPosted)
    assert [(p["kind"], p["entry_id"], p["account_id"], p["grams"], p["scenario"]) for p in payload["entries"]] == [
        ("credit", e["_id"], e["account_id"], e["grams"], e["scenario"]) for e in entries
    ]
    again = feed.with_entries_posted([i for i in items if i[0] != feed.EVENT_TYPE])
    assert again[-1][2] == event_id  # a redelivered batch repeats the id


def test_a_reversal_relayed_through_the_outbox_is_listed_and_a_redemption_is_not():
    repo, publisher = FakeRepository(), FakePublisher()
    ops = LedgerOperations(repo, Tiers())
    ops.pool_account()
    posted_batch(ops, [("carol", 500), ("carol", 300)])
    ops.redeem(ledger.account_id_for("carol"), 100, "order-1")  # from the 500 g credit
    Relay(repo, ops, publisher).relay_once()
    assert not [e for e in publisher.published if e[0] == feed.EVENT_TYPE]  # a redemption: nothing to list
    second = payloads.reduction("carol", 2, 300)
    ops.reverse({"reduction_id": second["reduction_id"], "user_pid": "carol", "reason": "factor_correction"})
    Relay(repo, ops, publisher).relay_once()
    (summary,) = [e for e in publisher.published if e[0] == feed.EVENT_TYPE]
    (only,) = summary[1]["entries"]
    assert (only["kind"], only["reduction_id"], only["grams"]) == ("reversal", second["reduction_id"], 300)
