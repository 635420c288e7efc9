"""Calls to the exchange bridge's nameko RPC from the gRPC server's handler threads.

The gRPC server (`account.grpc_server`) is a plain process of OS threads: grpcio blocks
eventlet, so nameko's RpcProxy (a dependency of eventlet workers) cannot be used there, and
nameko's standalone ClusterRpcProxy holds one reply consumer that a single thread drives while
it waits, so it is not safe to share between handler threads. This module speaks nameko's AMQP
RPC wire protocol itself, with kombu:

- a request is a JSON message `{"args": [...], "kwargs": {}}` published to the topic exchange
  `nameko-rpc` with routing key `<service>.<method>`, `reply_to` (the routing key of this
  process's reply queue, bound to the same exchange) and a `correlation_id`; mandatory with
  publisher confirms, so a service with no queue is known at once (`bridge_unavailable`), and
  transient with a TTL (`expiration`) of the call's timeout, so a request nobody waits for any
  more is dropped by RabbitMQ rather than worked on later;
- the reply `{"result": …, "error": {exc_type, exc_path, exc_args, value} | null}` arrives on
  the reply queue (exclusive: it goes with the connection) carrying that correlation id.

One consumer thread owns the reply connection and hands each reply to the handler thread
waiting for its correlation id; publishing goes through a second connection under a lock. Both
are opened on first use (`BridgeClient.call`), not at start-up: the gRPC server starts and
serves every other method while RabbitMQ is down. A lost connection fails the calls waiting
on it (`bridge_unavailable`); the next call connects again. The W3C trace context of the
calling thread travels as the `nameko.traceparent` header (carbon_common.telemetry), so the
bridge's RPC span is a child of this call's CLIENT span. The arguments are in the message body
only: no header, span attribute or log line here carries them (they hold an owner's
pseudonym).
"""

import json
import logging
import socket
import threading
import time
import uuid

from kombu import Connection, Consumer, Exchange, Producer, Queue
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from carbon_common.config import float_setting, int_setting, setting
from carbon_common.telemetry import inject_amqp_headers, tracer

log = logging.getLogger("account.bridge_client")
RPC_EXCHANGE = "nameko-rpc"  # nameko's default (config key RPC_EXCHANGE), as the services use it
SERVICE = "exchange_bridge"
CONNECT_TIMEOUT_SECONDS = 5.0
CONFIRM_TIMEOUT_SECONDS = 5.0
RETRY_CONNECT_AFTER_SECONDS = 2.0  # after a failed connect, calls fail fast this long
DRAIN_SECONDS = 1.0  # the consumer thread looks at its stop flag and heartbeats this often


class BridgeUnavailable(Exception):
    """The call did not reach the bridge, or its answer could not come back: retry later."""

    code = "bridge_unavailable"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class BridgeTimeout(Exception):
    """No answer within the timeout (the bridge may still be working on it)."""

    code = "bridge_timeout"


class RemoteError(Exception):
    """The bridge answered with an error: its type (e.g. "InvalidRequest") and its text."""

    def __init__(self, exc_type: str, text: str):
        super().__init__(f"exchange_bridge raised {exc_type}")  # the text stays out of logs
        self.exc_type, self.text = exc_type, text


class _Waiter:
    __slots__ = ("done", "reply", "error")

    def __init__(self):
        self.done = threading.Event()
        self.reply = None
        self.error = None


class BridgeClient:
    """Thread-safe. `call(method, *args, timeout=…)` -> the result, or BridgeUnavailable,
    BridgeTimeout, RemoteError."""

    def __init__(
        self,
        amqp_uri: str,
        timeout: float = 30.0,
        max_concurrent: int = 4,
        service: str = SERVICE,
        client_name: str = "account-grpc",
        heartbeat: int = 20,
    ):
        self.amqp_uri, self.timeout, self.service, self.heartbeat = amqp_uri, float(timeout), service, heartbeat
        self.exchange = Exchange(RPC_EXCHANGE, type="topic", durable=True)
        self.client_name = client_name
        self._reply_key = ""  # the routing key of the current reply queue (a new one per connection)
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()  # the pending table, the reader's start, the down time
        self._publish_lock = threading.Lock()  # the publishing connection and its producer
        self._pending: dict[str, _Waiter] = {}
        self._reader: threading.Thread | None = None
        self._publisher: tuple[Connection, Producer] | None = None
        self._down_until = 0.0
        self._closed = False

    @classmethod
    def from_env(cls) -> "BridgeClient | None":
        """From AMQP_URI (None when it is unset), BRIDGE_RPC_TIMEOUT_SECONDS (30) and
        BRIDGE_RPC_MAX_CONCURRENT (4: calls waiting on the bridge at once; more are refused as
        `bridge_busy` rather than holding every gRPC worker thread)."""
        uri = setting("AMQP_URI", "")
        if not uri:
            return None
        return cls(
            uri,
            timeout=float_setting("BRIDGE_RPC_TIMEOUT_SECONDS", 30.0),
            max_concurrent=int_setting("BRIDGE_RPC_MAX_CONCURRENT", 4),
        )

    # --- calls ------------------------------------------------------------------------------------
    def call(self, method: str, *args, timeout: float | None = None):
        """Calls `<service>.<method>(*args)` and waits for its answer at most `timeout` seconds
        (default: the client's). Any thread may call; calls run side by side."""
        wait = self.timeout if timeout is None else min(float(timeout), self.timeout)
        if wait <= 0:
            raise BridgeTimeout("no time left for the exchange bridge's answer")
        if not self._slots.acquire(blocking=False):
            raise BridgeUnavailable("too many certificate requests wait on the exchange bridge", "bridge_busy")
        try:
            with tracer().start_as_current_span(
                f"{self.service}/{method}",
                kind=SpanKind.CLIENT,
                attributes={
                    "rpc.system": "nameko",
                    "rpc.service": self.service,
                    "rpc.method": method,
                    "messaging.system": "rabbitmq",
                    "messaging.destination.name": RPC_EXCHANGE,
                },
            ) as span:
                try:
                    return self._call(method, list(args), wait)
                except (BridgeUnavailable, BridgeTimeout, RemoteError) as error:
                    span.set_status(trace.Status(trace.StatusCode.ERROR, getattr(error, "code", "remote_error")))
                    if isinstance(error, RemoteError):
                        span.set_attribute("rpc.nameko.exc_type", error.exc_type)
                    raise
        finally:
            self._slots.release()

    def _call(self, method: str, args: list, wait: float):
        self._ensure_reader()
        correlation_id = uuid.uuid4().hex
        waiter = _Waiter()
        with self._lock:
            self._pending[correlation_id] = waiter
            reading = self._reader is not None and self._reader.is_alive()
        try:
            if not reading:  # the reply connection went down just now
                raise BridgeUnavailable("the connection to RabbitMQ was lost")
            self._publish(method, args, correlation_id, wait)
            if not waiter.done.wait(wait):
                raise BridgeTimeout(f"the exchange bridge did not answer within {wait:.1f} s")
        finally:
            with self._lock:
                self._pending.pop(correlation_id, None)
        if waiter.error is not None:
            raise waiter.error
        return _result(waiter.reply)

    def _publish(self, method: str, args: list, correlation_id: str, wait: float) -> None:
        headers = inject_amqp_headers({})  # nameko.traceparent / nameko.tracestate: the trace only
        # A connection that died while idle is opened again once. Should the first attempt have
        # reached the bridge after all (an unconfirmed publish), it answers twice: the request
        # reads only, and the reply nobody waits for any more is dropped.
        for attempt in (1, 2):
            with self._publish_lock:
                try:
                    _, producer = self._publisher or self._open_publisher()
                    producer.publish(
                        {"args": args, "kwargs": {}},
                        exchange=self.exchange,
                        routing_key=f"{self.service}.{method}",
                        serializer="json",
                        delivery_mode=1,  # transient: worth nothing once the caller stopped waiting
                        expiration=wait,
                        mandatory=True,
                        reply_to=self._reply_key,
                        correlation_id=correlation_id,
                        headers=headers,
                        retry=False,
                        confirm_timeout=CONFIRM_TIMEOUT_SECONDS,
                    )
                    return
                except BridgeUnavailable:
                    raise
                except Exception as error:  # kombu/amqp/socket raise many types
                    self._close_publisher()
                    if "NO_ROUTE" in str(error):  # no queue of the service: it never started here
                        raise BridgeUnavailable(
                            "the exchange bridge's RPC queue does not exist (the bridge is not deployed or never started)"
                        ) from None
                    if attempt == 2:
                        self._mark_down()
                        raise BridgeUnavailable(
                            f"the request could not be sent to RabbitMQ ({type(error).__name__})"
                        ) from None

    # --- connections ------------------------------------------------------------------------------
    def _connect(self, purpose: str, heartbeat: int, confirm_publish: bool = False) -> Connection:
        with self._lock:
            if self._closed:
                raise BridgeUnavailable("the client is closed")
            if time.monotonic() < self._down_until:
                raise BridgeUnavailable("RabbitMQ did not accept a connection a moment ago")
        connection = Connection(
            self.amqp_uri,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            heartbeat=heartbeat,
            # named for operators (RabbitMQ's connection list): "account-grpc: exchange_bridge RPC replies"
            transport_options={
                "confirm_publish": confirm_publish,
                "client_properties": {"connection_name": f"{self.client_name}: {self.service} RPC {purpose}"},
            },
        )
        try:
            connection.ensure_connection(max_retries=0)  # one attempt: the caller is waiting
        except Exception as error:  # noqa: BLE001 - refused, DNS, authentication, timeout
            connection.release()
            self._mark_down()
            raise BridgeUnavailable(f"RabbitMQ is not reachable ({type(error).__name__})") from None
        return connection

    def _mark_down(self) -> None:
        with self._lock:
            self._down_until = time.monotonic() + RETRY_CONNECT_AFTER_SECONDS

    def _open_publisher(self) -> tuple[Connection, Producer]:
        connection = self._connect(
            "requests", heartbeat=0, confirm_publish=True
        )  # used in bursts; a dead one is opened again
        try:
            producer = Producer(connection.channel(), serializer="json")
        except Exception as error:  # noqa: BLE001
            connection.release()
            raise BridgeUnavailable(f"RabbitMQ refused a channel ({type(error).__name__})") from None
        self._publisher = (connection, producer)
        return self._publisher

    def _close_publisher(self) -> None:
        held, self._publisher = self._publisher, None
        if held is not None:
            _quietly(held[0].release)

    def _ensure_reader(self) -> None:
        """The reply consumer runs (its queue declared and consumed) before a request leaves, so
        that no reply can arrive before its queue exists."""
        with self._lock:
            running = self._reader is not None and self._reader.is_alive()
        if running:
            return
        with self._publish_lock:  # one thread starts it; the others wait for that
            with self._lock:
                if self._reader is not None and self._reader.is_alive():
                    return
            connection = self._connect("replies", heartbeat=self.heartbeat)
            # a queue of its own per connection: a dead connection's exclusive queue may live on
            # at the broker until it notices (heartbeats), and a new name never collides with it
            key = uuid.uuid4().hex
            queue = Queue(
                f"rpc.reply-{self.client_name}-{key}",
                exchange=self.exchange,
                routing_key=key,
                exclusive=True,
                auto_delete=True,
            )
            try:
                consumer = Consumer(
                    connection.channel(), queues=[queue], callbacks=[self._on_reply], no_ack=True, accept=["json"]
                )
                consumer.consume()
            except Exception as error:  # noqa: BLE001
                connection.release()
                self._mark_down()
                raise BridgeUnavailable(f"the reply queue could not be consumed ({type(error).__name__})") from None
            reader = threading.Thread(target=self._read, args=(connection,), name="bridge-rpc-replies", daemon=True)
            with self._lock:
                self._reader, self._reply_key = reader, key
            reader.start()

    def _read(self, connection: Connection) -> None:
        lost = None
        try:
            while not self._closed:
                try:
                    connection.drain_events(timeout=DRAIN_SECONDS)
                except socket.timeout:
                    pass
                connection.heartbeat_check()
        except Exception as error:  # noqa: BLE001 - the connection is gone
            lost = error
        finally:
            _quietly(connection.release)
            with self._lock:
                if self._reader is threading.current_thread():
                    self._reader = None
                waiting = list(self._pending.values())
            if lost is not None and not self._closed:
                log.warning("bridge RPC reply connection lost", extra={"error_type": type(lost).__name__})
            for waiter in waiting:  # their answers would have come over this connection
                if not waiter.done.is_set():
                    waiter.error = BridgeUnavailable("the connection to RabbitMQ was lost while waiting")
                    waiter.done.set()

    def _on_reply(self, body, message) -> None:
        correlation_id = message.properties.get("correlation_id")
        with self._lock:
            waiter = self._pending.get(correlation_id)
        if waiter is None:  # its caller gave up (timeout) before it came
            log.info("late exchange bridge reply dropped")
            return
        waiter.reply = body
        waiter.done.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            reader = self._reader
        if reader is not None:
            reader.join(timeout=DRAIN_SECONDS * 3)
        with self._publish_lock:
            self._close_publisher()


def _result(body):
    """The result of a nameko reply body, or RemoteError."""
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    if not isinstance(body, dict):
        raise RemoteError("InvalidReply", "")
    error = body.get("error")
    if error:
        return _raise(error)
    return body.get("result")


def _raise(error: dict):
    raise RemoteError(str(error.get("exc_type", "")), str(error.get("value", "")))


def _quietly(close) -> None:
    try:
        close()
    except Exception:  # noqa: BLE001 - closing a dead connection
        pass
