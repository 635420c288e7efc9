"""The outbox relay on real FerretDB and RabbitMQ settles plain redemptions (ADR 0005 §3): the
transfer to the bank pool's shard is written by the relay's pass, the redemption's debit is
announced in that pass and the pool's credit in the next, each once, whoever crashed where."""

import pytest

from account import ledger
from account.outbox import Relay
from carbon_common.accounts import pool_owner_for
from carbon_common.events import BatchPublisher


@pytest.fixture
def publisher(platform_amqp):
    publisher = BatchPublisher(platform_amqp["AMQP_URI"], "account")
    yield publisher
    publisher.close()


def test_the_relay_settles_a_redemption_into_the_pool_and_announces_both_sides_once(
    ops, repo, make_reduction, publisher, event_listener
):
    debited = event_listener("account", "account_debited")
    credited = event_listener("account", "account_credited")
    account_id = ops.credit(make_reduction(grams=500))["account_id"]  # batch-credited: no marker
    ops.redeem(account_id, 200, "reward-1", "movie")
    redemption_id = ledger.redemption_entry_id(account_id, "reward-1")
    transfer_id = ledger.transfer_entry_id(redemption_id)
    assert repo.get_entry(transfer_id) is None  # debited now, settled by the relay
    assert [m["_id"] for m in repo.pending_outbox(10)] == [redemption_id]

    published = []

    class Recording:
        """The real publisher, noting whether the transfer existed when each batch went out."""

        def publish_many(self, items):
            published.append(([t for t, *_ in items], repo.get_entry(transfer_id) is not None))
            return publisher.publish_many(items)

    relay = Relay(repo, ops, Recording())
    assert relay.relay_once() == 1
    assert published == [(["account_debited"], True)]
    transfer = repo.get_entry(transfer_id)
    assert (transfer["type"], transfer["grams"], transfer["source_entry_id"]) == (
        "redemption_transfer",
        200,
        redemption_id,
    )
    pool = ledger.account_id_for(pool_owner_for(redemption_id))
    assert transfer["account_id"] == pool and transfer["balance_after"] == 200
    [debit] = debited.wait(1)
    assert debit["event_id"] == redemption_id and debit["data"]["reason"] == "redemption"
    assert debit["data"]["grams"] == 200 and debit["data"]["balance_after"] == 300

    # The transfer's marker (written before it) announces the pool's side on the next pass.
    assert transfer_id in {m["_id"] for m in repo.pending_outbox(10)}
    while relay.relay_once():
        pass
    [credit] = [e for e in credited.wait(1) if e["data"]["reason"] == "redemption_transfer"]
    assert credit["event_id"] == transfer_id and credit["data"]["source_entry_id"] == redemption_id
    assert repo.pending_outbox(10) == [] and relay.relay_once() == 0
    # A repeat (the relay died before dropping the marker) writes no second transfer.
    ops.settle_redemptions([repo.get_entry(redemption_id)])
    assert [e["type"] for e in repo.account_entries(pool)] == ["opened", "redemption_transfer"]
