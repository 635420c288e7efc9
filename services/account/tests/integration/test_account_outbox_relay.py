"""The outbox relay on real FerretDB and RabbitMQ: a redemption whose process died before its
transfer to the bank pool is completed by the relay (transfer written, then events published)."""

import pytest

from account import ledger
from account.outbox import Relay
from carbon_common.events import BatchPublisher


class Died(Exception):
    """The redeeming process stopped right after writing the redemption entry."""


@pytest.fixture
def publisher(platform_amqp):
    publisher = BatchPublisher(platform_amqp["AMQP_URI"], "account")
    yield publisher
    publisher.close()


def test_relay_completes_the_pool_transfer_before_announcing_the_debit(
    ops, repo, make_reduction, publisher, event_listener, monkeypatch
):
    debited = event_listener("account", "account_debited")
    credited = event_listener("account", "account_credited")
    account_id = ops.credit(make_reduction(grams=500))["account_id"]  # batch-credited: no marker

    def die(_redemption):
        raise Died()

    with monkeypatch.context() as patched:
        patched.setattr(ops, "transfer_to_pool", die)
        with pytest.raises(Died):
            ops.redeem(account_id, 200, "reward-1", "movie")
    redemption_id = ledger.redemption_entry_id(account_id, "reward-1")
    transfer_id = ledger.transfer_entry_id(redemption_id)
    assert repo.get_entry(redemption_id)["grams"] == -200 and repo.get_entry(transfer_id) is None
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
    assert transfer["account_id"] == ledger.account_id_for(ledger.POOL_OWNER) and transfer["balance_after"] == 200
    [debit] = debited.wait(1)
    assert debit["event_id"] == redemption_id and debit["data"]["reason"] == "redemption"
    assert debit["data"]["grams"] == 200 and debit["data"]["balance_after"] == 300

    # The markers the transfer's appends wrote (the pool opened lazily, then the transfer)
    # announce the pool's side on the next pass.
    pool = ledger.account_id_for(ledger.POOL_OWNER)
    assert {m["_id"] for m in repo.pending_outbox(10)} == {ledger.opened_entry_id(pool), transfer_id}
    assert relay.relay_once() == 2
    [credit] = [e for e in credited.wait(1) if e["data"]["reason"] == "redemption_transfer"]
    assert credit["event_id"] == transfer_id and credit["data"]["source_entry_id"] == redemption_id
    assert repo.pending_outbox(10) == [] and relay.relay_once() == 0
    # A repeat (the relay died before dropping the marker) writes no second transfer.
    assert ops.transfer_to_pool(repo.get_entry(redemption_id))["_id"] == transfer_id
    assert [e["type"] for e in repo.account_entries(pool)] == ["opened", "redemption_transfer"]
