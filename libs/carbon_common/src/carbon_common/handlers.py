"""Event handlers that never drop a message.

nameko 2.x acks a message whose handler raised (lost) unless requeue_on_error, which then
loops forever. Here a failure is rejected into the handler's retry queue (delayed
redelivery, see topology); after MAX_ATTEMPTS the message is parked in `<queue>.dlq`
(publisher-confirmed) before the original is acked, so it is always somewhere.
Declared business outcomes should be returned, not raised: raising means "try again".
"""

import logging

from functools import partial

from kombu import Connection
from kombu.pools import producers
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled

from carbon_common import topology

log = logging.getLogger(__name__)
TEST_ROUTES_KEY = "CARBON_TEST_ROUTES"  # config key: routes a test service may use
ATTEMPT_KEY = "delivery_attempt"  # worker context data; Tracing moves it into a span attribute


def delivery_attempt(message) -> int:
    """1 for a first delivery; +1 per pass through the retry queue (RabbitMQ's x-death)."""
    deaths = (message.headers or {}).get("x-death") or []
    return 1 + sum(int(d.get("count", 0)) for d in deaths if d.get("reason") == "rejected")


class ReliableEventHandler(EventHandler):
    def setup(self):
        super().setup()
        self.route = topology.find_route(
            self.source_service,
            self.event_type,
            self.container.service_name,
            self.method_name,
            extra=self.container.config.get(TEST_ROUTES_KEY, ()),
        )
        self.queue = topology.handler_queue(self.route)

    def handle_message(self, body, message):
        context_data = self.unpack_message_headers(message)
        context_data[ATTEMPT_KEY] = delivery_attempt(message)
        try:
            self.container.spawn_worker(
                self, (body,), {}, context_data=context_data, handle_result=partial(self.handle_result, message)
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        attempt = delivery_attempt(message)
        if attempt < topology.MAX_ATTEMPTS:
            log.warning(
                "handler failed, will retry",
                extra={"queue": self.route.queue_name, "attempt": attempt, "error": repr(exc_info[1])},
            )
            if message.channel.connection:
                message.reject(requeue=False)
            return
        try:
            park_message(self.container.config["AMQP_URI"], self.route, message, exc_info[1])
        except Exception:  # broker trouble: leave it to redelivery rather than lose it
            log.exception("could not park message; requeueing", extra={"queue": self.route.queue_name})
            self.queue_consumer.requeue_message(message)
            return
        log.error(
            "handler failed %d times, dead-lettered",
            attempt,
            extra={"queue": self.route.queue_name, "dlq": self.route.queue_name + ".dlq", "error": repr(exc_info[1])},
        )
        self.queue_consumer.ack_message(message)


def park_message(amqp_uri: str, route, message, error: BaseException) -> None:
    """Copy a message into `<queue>.dlq`, publisher-confirmed, with the error that parked it."""
    connection = Connection(amqp_uri, transport_options={"confirm_publish": True})
    headers = dict(message.headers or {})
    headers.pop("x-death", None)
    headers["x-carbon-error"] = f"{type(error).__name__}: {error}"[:500]
    with producers[connection].acquire(block=True, timeout=10) as producer:
        producer.publish(
            message.body,
            exchange="",
            routing_key=route.queue_name + ".dlq",
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=2,
        )


event_handler = ReliableEventHandler.decorator
