"""Every exchange, queue, binding and dead-letter queue the platform uses, in one place.

Declared by one command before any traffic (`python -m carbon_common.topology declare`: the
Helm hook Job and `make run` run it), and by the same functions the handlers use, so the
arguments always match. Per handler queue Q:
  Q          bound to `<source>.events` with routing key = event type; rejects go to Q.retry
  Q.retry    holds a failed message for RETRY_DELAY_MS, then dead-letters it back to Q
  Q.dlq      parking lot after MAX_ATTEMPTS: operators inspect and replay (`dlq` commands)
Events that no queue is bound for (a public event no bank system consumes yet) are caught by
the alternate exchange into `carbon.unrouted` instead of vanishing; it is bounded by
CARBON_UNROUTED_MAX_LENGTH (oldest dropped first) and CARBON_UNROUTED_TTL_MS.

CARBON_QUEUE_TYPE=classic (default) | quorum: quorum queues survive the loss of a broker node in
a RabbitMQ cluster (Raft-replicated); classic suits a single broker (dev, CI). Every process
must run with the same value: consumers declare their queues with these arguments, and a
queue cannot change type in place — `declare` refuses with the queue's name (docs/deploy.md).
"""
import argparse
import os
import sys
from dataclasses import dataclass

from amqp.exceptions import PreconditionFailed
from kombu import Connection, Exchange, Queue

EVENT_SERVICES = ("ingest", "calc", "account", "exchange_bridge")
RETRY_EXCHANGE = "carbon.retry"
UNROUTED_EXCHANGE = "carbon.unrouted"
UNROUTED_QUEUE = "carbon.unrouted"
RETRY_DELAY_MS = 1000
MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class Route:
    source: str
    event_type: str
    service: str
    method: str

    @property
    def queue_name(self) -> str:  # nameko's SERVICE_POOL naming, so `nameko` tools still apply
        return f"evt-{self.source}-{self.event_type}--{self.service}.{self.method}"


ROUTES = (
    Route("ingest", "behaviour_received", "calc", "handle_behaviour_received"),
    Route("exchange_bridge", "exchange_batch_registered", "calc", "handle_exchange_batch_registered"),
    Route("calc", "reduction_calculated", "account", "handle_reduction_calculated"),
    Route("calc", "reduction_reversed", "account", "handle_reduction_reversed"),
    Route("ingest", "personal_data_deleted", "account", "handle_personal_data_deleted"),
)


QUEUE_TYPES = ("classic", "quorum")


class TopologyMismatch(RuntimeError):
    """A queue exists with other arguments (e.g. another queue type): it must be migrated."""


def queue_type() -> str:
    kind = os.environ.get("CARBON_QUEUE_TYPE", "classic").strip().lower() or "classic"
    if kind not in QUEUE_TYPES:
        raise ValueError(f"CARBON_QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, not {kind!r}")
    return kind


def _typed(arguments: dict) -> dict:
    """Arguments for a durable platform queue of the configured type."""
    if queue_type() == "quorum":
        # Dead-lettering (retry, DLQ) that cannot lose a message on node failure.
        return {**arguments, "x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish"} if "x-dead-letter-exchange" in arguments else \
            {**arguments, "x-queue-type": "quorum"}
    return arguments


def unrouted_queue(unrouted: Exchange) -> Queue:
    arguments = {}
    if os.environ.get("CARBON_UNROUTED_MAX_LENGTH"):
        arguments["x-max-length"] = int(os.environ["CARBON_UNROUTED_MAX_LENGTH"])
    if os.environ.get("CARBON_UNROUTED_TTL_MS"):
        arguments["x-message-ttl"] = int(os.environ["CARBON_UNROUTED_TTL_MS"])
    return Queue(UNROUTED_QUEUE, exchange=unrouted, durable=True, queue_arguments=_typed(arguments))


def event_exchange(service: str) -> Exchange:
    return Exchange(
        f"{service}.events", type="topic", durable=True, delivery_mode=2,
        arguments={"alternate-exchange": UNROUTED_EXCHANGE},
    )


def retry_exchange() -> Exchange:
    return Exchange(RETRY_EXCHANGE, type="direct", durable=True)


def handler_queue(route: Route) -> Queue:
    return Queue(
        route.queue_name, exchange=event_exchange(route.source), routing_key=route.event_type,
        durable=True,
        queue_arguments=_typed({
            "x-dead-letter-exchange": RETRY_EXCHANGE,
            "x-dead-letter-routing-key": route.queue_name + ".retry",
        }),
    )


def retry_queue(route: Route) -> Queue:
    return Queue(
        route.queue_name + ".retry", exchange=retry_exchange(), routing_key=route.queue_name + ".retry",
        durable=True,
        queue_arguments=_typed({
            "x-message-ttl": RETRY_DELAY_MS,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": route.queue_name,
        }),
    )


def dead_letter_queue(route: Route) -> Queue:
    return Queue(route.queue_name + ".dlq", durable=True, queue_arguments=_typed({}))


def find_route(source: str, event_type: str, service: str, method: str, extra=()) -> Route:
    """`extra` lets a test service declare its own routes without touching production topology."""
    route = Route(source, event_type, service, method)
    if route not in ROUTES and route not in extra:
        raise LookupError(f"{route.queue_name} is not in carbon_common.topology.ROUTES; add it there")
    return route


def declare(amqp_uri: str, routes=ROUTES) -> list[str]:
    """Idempotent: re-declaring with the same arguments is a no-op on the broker. A queue that
    exists with other arguments raises TopologyMismatch naming it (nothing is changed)."""
    declared = []
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        unrouted = Exchange(UNROUTED_EXCHANGE, type="fanout", durable=True)
        unrouted(channel).declare()
        queues = [unrouted_queue(unrouted)]
        retry_exchange()(channel).declare()
        for service in EVENT_SERVICES:
            event_exchange(service)(channel).declare()
            declared.append(f"{service}.events")
        for route in routes:
            queues += [handler_queue(route), retry_queue(route), dead_letter_queue(route)]
        for queue in queues:
            try:
                queue(channel).declare()
            except PreconditionFailed as exc:
                raise TopologyMismatch(
                    f"queue {queue.name} exists with other arguments than this topology "
                    f"(CARBON_QUEUE_TYPE={queue_type()}, unrouted bounds): {exc}. A queue cannot change "
                    "type or bounds in place: drain it, delete it and declare again "
                    "(docs/deploy.md, 'Queue type')") from exc
            declared.append(queue.name)
    return declared


def dlq_depths(amqp_uri: str) -> dict[str, int]:
    depths = {}
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        for route in ROUTES:
            _, count, _ = dead_letter_queue(route)(channel).queue_declare(passive=True)
            depths[route.queue_name + ".dlq"] = count
    return depths


def replay_dlq(amqp_uri: str, queue_name: str, limit: int | None = None) -> int:
    """Move parked messages back to their handler queue with a fresh retry budget."""
    moved = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=queue_name, passive=True)  # fails clearly for an unknown queue
        producer = conn.Producer(channel)
        dlq = Queue(queue_name + ".dlq")(channel)
        while limit is None or moved < limit:
            message = dlq.get(no_ack=False, accept=["json"])
            if message is None:
                break
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            producer.publish(message.body, routing_key=queue_name, exchange="", headers=headers,
                             content_type=message.content_type, content_encoding=message.content_encoding,
                             delivery_mode=2)
            message.ack()
            moved += 1
    return moved


def main(argv=None) -> int:
    from carbon_common.config import require

    parser = argparse.ArgumentParser(prog="python -m carbon_common.topology", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("declare", help="declare every exchange, queue, binding and DLQ")
    sub.add_parser("dlq", help="show dead-letter queue depths")
    replay = sub.add_parser("replay", help="move a handler's dead-lettered messages back to it")
    replay.add_argument("queue")
    replay.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    uri = require("AMQP_URI")
    if args.command == "declare":
        try:
            names = declare(uri)
        except TopologyMismatch as exc:
            print(f"topology NOT declared: {exc}", file=sys.stderr)
            return 2
        print(f"topology declared ({queue_type()} queues): {len(names)} exchanges/queues")
    elif args.command == "dlq":
        for name, depth in dlq_depths(uri).items():
            print(f"{depth:8d}  {name}")
    else:
        print(f"replayed {replay_dlq(uri, args.queue, args.limit)} message(s) to {args.queue}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
