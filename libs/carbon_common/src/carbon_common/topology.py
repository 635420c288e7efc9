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

Sharded routes (SHARDED_ROUTES: reduction_calculated -> account): the event exchange feeds a
consistent-hash exchange `<queue>.shards` (RabbitMQ's rabbitmq_consistent_hash_exchange plugin,
shipped with the broker) that hashes the `carbon-partition` header (a hash of the account's
pseudonym, set by every publisher) onto CARBON_SHARDS (default 4) single-active-consumer
queues `<queue>.s<k>`, each with its own retry queue; one DLQ per route. So each account has
one writer at a time however many replicas consume (ADR 0004).

CARBON_QUEUE_TYPE=classic (default) | quorum: quorum queues survive the loss of a broker node in
a RabbitMQ cluster (Raft-replicated); classic suits a single broker (dev, CI). Every process
must run with the same value: consumers declare their queues with these arguments, and a
queue cannot change type in place — `declare` refuses with the queue's name (docs/deploy.md).
"""

import argparse
import functools
import sys
from dataclasses import dataclass

from amqp.exceptions import PreconditionFailed
from kombu import Connection, Exchange, Queue

from carbon_common.config import int_setting, setting

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
    Route("calc", "reduction_reversal_refused", "account", "handle_reduction_reversal_refused"),
    Route("ingest", "personal_data_deleted", "account", "handle_personal_data_deleted"),
    Route("ingest", "consent_revoked", "account", "handle_consent_revoked"),
    Route("ingest", "fulfilment_reported", "account", "handle_fulfilment_reported"),
    # the enterprise aggregate: a read model of the account's own events (account.feed, account.enterprise)
    Route("account", "entries_posted", "account", "handle_entries_posted"),
    Route("ingest", "personal_data_deleted", "calc", "handle_personal_data_deleted"),
)

# Routes of earlier releases: `declare` unbinds their queues (nothing new arrives) and deletes
# each once it holds no message and has no consumer; any other is left, named in the output.
RETIRED_ROUTES = (
    # replaced by `entries_posted` (account.feed), one message per batch instead of one per record
    Route("account", "account_credited", "account", "handle_enterprise_credited"),
    Route("account", "account_debited", "account", "handle_enterprise_debited"),
)

QUEUE_TYPES = ("classic", "quorum")


class TopologyMismatch(RuntimeError):
    """A queue exists with other arguments (e.g. another queue type): it must be migrated."""


def queue_type() -> str:
    kind = setting("CARBON_QUEUE_TYPE", "classic").lower()
    if kind not in QUEUE_TYPES:
        raise ValueError(f"CARBON_QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, not {kind!r}")
    return kind


def _typed(arguments: dict) -> dict:
    """Arguments for a durable platform queue of the configured type."""
    if queue_type() == "quorum":
        # Dead-lettering (retry, DLQ) that cannot lose a message on node failure.
        return (
            {
                **arguments,
                "x-queue-type": "quorum",
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
            if "x-dead-letter-exchange" in arguments
            else {**arguments, "x-queue-type": "quorum"}
        )
    return arguments


def unrouted_queue(unrouted: Exchange) -> Queue:
    arguments = {}
    if setting("CARBON_UNROUTED_MAX_LENGTH", ""):
        arguments["x-max-length"] = int_setting("CARBON_UNROUTED_MAX_LENGTH", 0)
    if setting("CARBON_UNROUTED_TTL_MS", ""):
        arguments["x-message-ttl"] = int_setting("CARBON_UNROUTED_TTL_MS", 0)
    return Queue(UNROUTED_QUEUE, exchange=unrouted, durable=True, queue_arguments=_typed(arguments))


def event_exchange(service: str) -> Exchange:
    return Exchange(
        f"{service}.events",
        type="topic",
        durable=True,
        delivery_mode=2,
        arguments={"alternate-exchange": UNROUTED_EXCHANGE},
    )


def retry_exchange() -> Exchange:
    return Exchange(RETRY_EXCHANGE, type="direct", durable=True)


def handler_queue(route: Route) -> Queue:
    return Queue(
        route.queue_name,
        exchange=event_exchange(route.source),
        routing_key=route.event_type,
        durable=True,
        queue_arguments=_typed(
            {
                "x-dead-letter-exchange": RETRY_EXCHANGE,
                "x-dead-letter-routing-key": route.queue_name + ".retry",
            }
        ),
    )


def retry_queue(route: Route) -> Queue:
    return Queue(
        route.queue_name + ".retry",
        exchange=retry_exchange(),
        routing_key=route.queue_name + ".retry",
        durable=True,
        queue_arguments=_typed(
            {
                "x-message-ttl": RETRY_DELAY_MS,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": route.queue_name,
            }
        ),
    )


def dead_letter_queue(route: Route) -> Queue:
    return Queue(route.queue_name + ".dlq", durable=True, queue_arguments=_typed({}))


# Routes whose messages are spread over shards by account: their consumer is the only writer
# of an account's ledger chain, so replicas never race for the same account's sequence numbers.
SHARDED_ROUTES = (Route("calc", "reduction_calculated", "account", "handle_reduction_calculated"),)
PARTITION_HEADER = "carbon-partition"
CONSISTENT_HASH_PLUGIN = "rabbitmq_consistent_hash_exchange"


def shard_count() -> int:
    return max(int_setting("CARBON_SHARDS", 4), 1)


def shard_exchange(route: Route) -> Exchange:
    return Exchange(
        route.queue_name + ".shards",
        type="x-consistent-hash",
        durable=True,
        arguments={"hash-header": PARTITION_HEADER},
    )


def shard_queue(route: Route, shard: int) -> Queue:
    name = f"{route.queue_name}.s{shard}"
    return Queue(
        name,
        exchange=shard_exchange(route),
        routing_key="1",
        durable=True,
        queue_arguments=_typed(
            {
                "x-single-active-consumer": True,
                "x-dead-letter-exchange": RETRY_EXCHANGE,
                "x-dead-letter-routing-key": name + ".retry",
            }
        ),
    )


def shard_retry_queue(route: Route, shard: int) -> Queue:
    name = f"{route.queue_name}.s{shard}"
    return Queue(
        name + ".retry",
        exchange=retry_exchange(),
        routing_key=name + ".retry",
        durable=True,
        queue_arguments=_typed(
            {"x-message-ttl": RETRY_DELAY_MS, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": name}
        ),
    )


def consumed_queues(route: Route) -> list[Queue]:
    """The queues a route's consumer reads: its handler queue, or its shard queues."""
    if route in SHARDED_ROUTES:
        return [shard_queue(route, k) for k in range(shard_count())]
    return [handler_queue(route)]


def route_queues(route: Route) -> list[tuple[Queue, str]]:
    """Every queue of a route with its kind (main / retry / dlq), for declaring and metrics."""
    if route in SHARDED_ROUTES:
        out = [(q, "main") for q in consumed_queues(route)]
        out += [(shard_retry_queue(route, k), "retry") for k in range(shard_count())]
    else:
        out = [(handler_queue(route), "main"), (retry_queue(route), "retry")]
    return out + [(dead_letter_queue(route), "dlq")]


def partition_headers(data: dict) -> dict:
    """The header the shard exchanges hash: a hash of the account owner's pseudonym, never the
    pseudonym itself (no personal data in headers)."""
    owner = data.get("user_pid") or data.get("owner_pid") if isinstance(data, dict) else None
    if not owner:
        return {}
    return {PARTITION_HEADER: _partition_key(owner)}


@functools.lru_cache(maxsize=65536)
def _partition_key(owner: str) -> str:
    """Cached: every event of an account hashes the same pseudonym (SM3 was ~3% of a consumer)."""
    from carbon_common.gm import sm3_hex

    return sm3_hex(("partition:" + owner).encode("utf-8"))[:16]


def find_route(source: str, event_type: str, service: str, method: str, extra=()) -> Route:
    """`extra` lets a test service declare its own routes without touching production topology."""
    route = Route(source, event_type, service, method)
    if route not in ROUTES and route not in extra:
        raise LookupError(f"{route.queue_name} is not in carbon_common.topology.ROUTES; add it there")
    return route


def declare(amqp_uri: str, routes=ROUTES, retired=RETIRED_ROUTES) -> list[str]:
    """Idempotent: re-declaring with the same arguments is a no-op on the broker. A queue that
    exists with other arguments raises TopologyMismatch naming it (nothing is changed). The
    queues of `retired` routes are unbound and, once empty, deleted."""
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
            if route in SHARDED_ROUTES:
                _declare_shard_exchange(channel, route)
            queues += [queue for queue, _ in route_queues(route)]
        for queue in queues:
            try:
                queue(channel).declare()
            except PreconditionFailed as exc:
                raise TopologyMismatch(
                    f"queue {queue.name} exists with other arguments than this topology "
                    f"(CARBON_QUEUE_TYPE={queue_type()}, unrouted bounds): {exc}. A queue cannot change "
                    "type or bounds in place: drain it, delete it and declare again "
                    "(docs/deploy.md, 'Queue type')"
                ) from exc
            declared.append(queue.name)
        declared += [retire(conn, route) for route in retired]
    return [d for d in declared if d]


def retire(conn, route: Route) -> str:
    """Unbind a retired route's queue and delete those of its queues that hold no message and
    have no consumer (an old release may still be draining one) -> what was left, or ""."""
    from amqp.exceptions import NotFound

    names = (route.queue_name, route.queue_name + ".retry", route.queue_name + ".dlq")
    left = []
    for name in names:
        channel = conn.channel()  # a refused call closes its channel: one per queue
        try:
            if name == route.queue_name:
                channel.queue_unbind(name, event_exchange(route.source).name, routing_key=route.event_type)
            _, messages, consumers = channel.queue_declare(name, passive=True)
            if messages or consumers:  # unbound: nothing new arrives; left for an operator
                left.append(name)
            else:  # (quorum queues refuse a delete with if_empty: checked above instead)
                channel.queue_delete(name)
        except NotFound:
            continue  # never declared here, or already gone
        finally:
            if channel.is_open:
                channel.close()
    return f"retired {route.queue_name}: not empty, left unbound: {', '.join(left)}" if left else ""


def _declare_shard_exchange(channel, route: Route) -> None:
    exchange = shard_exchange(route)
    try:
        exchange(channel).declare()
    except Exception as exc:  # the broker refuses an exchange type it does not know
        raise TopologyMismatch(
            f"cannot declare {exchange.name} ({exchange.type}): enable the {CONSISTENT_HASH_PLUGIN} plugin "
            f"on the broker (`rabbitmq-plugins enable {CONSISTENT_HASH_PLUGIN}`; docs/deploy.md): {exc}"
        ) from exc
    channel.exchange_bind(
        destination=exchange.name, source=event_exchange(route.source).name, routing_key=route.event_type
    )


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
        channel.queue_declare(queue=queue_name + ".dlq", passive=True)  # fails clearly for an unknown queue
        producer = conn.Producer(channel)
        dlq = Queue(queue_name + ".dlq")(channel)
        while limit is None or moved < limit:
            message = dlq.get(no_ack=False, accept=["json"])
            if message is None:
                break
            headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
            route = next((r for r in SHARDED_ROUTES if r.queue_name == queue_name), None)
            # a sharded route's messages go back through its hash exchange (same header, same shard)
            target = (shard_exchange(route).name, "") if route else ("", queue_name)
            producer.publish(
                message.body,
                exchange=target[0],
                routing_key=target[1],
                headers=headers,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
            )
            message.ack()
            moved += 1
    return moved


def main(argv=None) -> int:
    from carbon_common.config import require

    parser = argparse.ArgumentParser(
        prog="python -m carbon_common.topology",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
