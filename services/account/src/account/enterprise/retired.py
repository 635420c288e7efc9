"""What the enterprise read model's retired queues still hold after an upgrade.

Before `entries_posted` (account.feed) the read model consumed `account_credited` and
`account_debited` on queues of its own (carbon_common.topology.RETIRED_ROUTES). The topology Job
of a later release unbinds them, so nothing new arrives, but events that reached them before the
upgrade and that the old release did not consume would be missing from the aggregate. The account
service drains them now and then (`AccountService.drain_retired_queues`): each message is applied
to the read model like the events it always was (the read model counts an entry id once, so a
message the old release also handled changes nothing) and acked; one that is not a valid event is
parked in the queue's DLQ, as its old consumer would have done after its retries. A queue found empty and
unconsumed is deleted (topology.retire), after which a drain costs one passive declare per queue.
"""

import logging

import orjson
from amqp.exceptions import NotFound
from kombu import Connection, Queue

from carbon_common import topology
from carbon_common.handlers import park_message

from account.enterprise.readmodel import item_of

log = logging.getLogger(__name__)
BATCH = 500  # messages applied per read-model batch


def drain(amqp_uri: str, apply, routes=topology.RETIRED_ROUTES, batch: int = BATCH) -> dict:
    """Apply what each retired queue holds (`apply(items)`: the read model's), ack it, then
    retire the queue -> {"drained": {queue: messages}, "parked": n, "left": [what retire left]}."""
    out = {"drained": {}, "parked": 0, "left": []}
    with Connection(amqp_uri) as conn:
        for route in routes:
            if _drain_queue(amqp_uri, conn, route, apply, batch, out):
                left = topology.retire(conn, route)
                if left:
                    out["left"].append(left)
    return out


def _drain_queue(amqp_uri: str, conn, route, apply, batch: int, out: dict) -> bool:
    """False when the queue does not exist (never declared, or already retired)."""
    channel = conn.channel()
    queue = Queue(route.queue_name, no_declare=True).bind(channel)
    try:
        queue.queue_declare(passive=True)
    except NotFound:
        return False  # the broker closed that channel
    try:
        while True:
            messages = [m for m in (queue.get(no_ack=False) for _ in range(batch)) if m is not None]
            if not messages:
                return True
            items, bad = [], {}
            for n, message in enumerate(messages):
                try:
                    envelope = orjson.loads(message.body)
                    item = item_of(envelope["event_type"], envelope["data"])
                except (ValueError, KeyError, TypeError, AttributeError) as error:
                    bad[n] = error
                    continue
                if item is not None:
                    items.append(item)
            if items:
                apply(items)  # before the acks: a crash here leaves the messages for the next drain
            if bad:  # the upgrade deleted the empty DLQ: a message parked in no queue would be lost
                topology.dead_letter_queue(route)(channel).declare()
            for n, error in bad.items():  # parked as its old consumer would have, after its retries
                park_message(amqp_uri, route, messages[n], error)
            for message in messages:
                message.ack()
            out["drained"][route.queue_name] = out["drained"].get(route.queue_name, 0) + len(messages)
            out["parked"] += len(bad)
            if len(messages) < batch:
                return True
    finally:
        if channel.is_open:
            channel.close()
