"""Example consumer of the platform's events — what another bank system does.

It binds ITS OWN durable queue to `account.events` (a topic exchange; routing key = event
type), so it never steals messages from the platform's own handlers, acknowledges only after
handling, validates each envelope against the published proto contract, and dedupes on
event_id (delivery is at-least-once). Run it:

    python services/account/examples/bank_event_consumer.py --amqp pyamqp://guest:guest@127.0.0.1:5672/ \
        --queue crm.account-events --events account_credited account_debited tier_changed
"""

import argparse
import json
import socket

from kombu import Connection, Exchange, Queue

from carbon_common.schemas import validate_envelope

ALL_ACCOUNT_EVENTS = (
    "account_opened",
    "account_status_changed",
    "account_credited",
    "account_debited",
    "reduction_capped",
    "reduction_declined",
    "tier_changed",
)


def bind_queue(connection, queue_name: str, event_types=ALL_ACCOUNT_EVENTS, source: str = "account") -> Queue:
    # passive: the platform declares its exchanges (with their arguments) before any traffic.
    exchange = Exchange(f"{source}.events", type="topic", passive=True)
    queue = Queue(queue_name, durable=True, bindings=[], channel=connection.default_channel)
    queue.declare()
    for event_type in event_types:
        queue.bind_to(exchange=exchange.name, routing_key=event_type)
    return queue


class Consumer:
    def __init__(self, amqp_uri: str, queue_name: str, handle, event_types=ALL_ACCOUNT_EVENTS):
        self.connection = Connection(amqp_uri)
        self.queue = bind_queue(self.connection, queue_name, event_types)
        self.handle = handle
        self.seen: set[str] = set()  # a real consumer keeps this in its own database

    def _on_message(self, body, message):
        envelope = body if isinstance(body, dict) else json.loads(body)
        validate_envelope(envelope)  # raises on a contract violation: fix, don't guess
        if envelope["event_id"] not in self.seen:
            self.handle(envelope)
            self.seen.add(envelope["event_id"])
        message.ack()

    def drain(self, timeout: float = 0.5) -> None:
        """Handle whatever arrives until `timeout` seconds pass without a message."""
        with self.connection.Consumer([self.queue], callbacks=[self._on_message], accept=["json"]):
            while True:
                try:
                    self.connection.drain_events(timeout=timeout)
                except socket.timeout:
                    return

    def close(self) -> None:
        self.connection.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp", default="pyamqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--queue", default="example.account-events")
    parser.add_argument("--events", nargs="*", default=list(ALL_ACCOUNT_EVENTS))
    args = parser.parse_args()
    consumer = Consumer(args.amqp, args.queue, lambda e: print(json.dumps(e, ensure_ascii=False)), args.events)
    try:
        while True:
            consumer.drain(timeout=5)
    except KeyboardInterrupt:
        consumer.close()


if __name__ == "__main__":
    main()
