"""The ingest process's event publisher (exchange ingest.events), confirmed and mandatory."""
from kombu import Connection

from carbon_common.events import EventPublisher


class Bus:
    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.publisher = EventPublisher(amqp_uri, "ingest")

    def publish(self, event_type: str, data: dict, event_id: str, traceparent: str | None = None) -> dict:
        return self.publisher.publish(event_type, data, event_id=event_id, traceparent=traceparent)

    def ping(self) -> None:
        with Connection(self.amqp_uri, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)

    def close(self) -> None:
        self.publisher.close()
