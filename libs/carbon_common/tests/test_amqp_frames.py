"""The publisher's own frames are byte for byte those py-amqp writes for the same publish, and
the consumer's chunked frame reader returns what py-amqp's reader returns."""

import random
import socket
import struct

import amqp
import pytest
from amqp.exceptions import UnexpectedFrame
from amqp.method_framing import frame_writer
from amqp.transport import TCPTransport

from carbon_common.amqp_frames import PublishFrames, buffer_reads


class Capture:
    def __init__(self):
        self.data = bytearray()

    def write(self, data):
        self.data += data


class FakeConnection:
    def __init__(self, frame_max):
        self.frame_max = frame_max
        self.bytes_sent = 0


def py_amqp_bytes(frame_max, channel_id, exchange, routing_key, body, headers) -> bytes:
    capture = Capture()
    write = frame_writer(FakeConnection(frame_max), capture)
    message = amqp.Message(
        body, content_type="application/json", content_encoding="utf-8", delivery_mode=2, application_headers=headers
    )
    # what Channel._basic_publish sends: ticket 0, exchange, routing key, mandatory, immediate
    args = amqp.serialization.dumps("Bssbb", (0, exchange, routing_key, True, False))
    write(1, channel_id, (60, 40), args, message)
    return bytes(capture.data)


@pytest.mark.parametrize("frame_max", [131072, 4096])
@pytest.mark.parametrize("size", [0, 1, 1500, 4088, 4089, 20000])
def test_frames_match_py_amqp(frame_max, size):
    body = ("碳" * size).encode("utf-8")[:size]
    headers = {"carbon-partition": "3f2a", "nameko.traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}
    ours = PublishFrames(7, frame_max, "calc.events").publish("reduction_calculated", body, headers)
    assert ours == py_amqp_bytes(frame_max, 7, "calc.events", "reduction_calculated", body, headers)


def test_no_headers_and_non_ascii_names_match_too():
    frames = PublishFrames(1, 131072, "account.events")
    assert frames.publish("account_credited", b"{}", {}) == py_amqp_bytes(
        131072, 1, "account.events", "account_credited", b"{}", {}
    )
    headers = {"x-键": "值"}
    assert frames.publish("k", b"x", headers) == py_amqp_bytes(131072, 1, "account.events", "k", b"x", headers)


def test_what_it_cannot_write_is_refused():
    with pytest.raises(TypeError):
        PublishFrames(1, 131072, "e").publish("k", b"x", {"n": 1})
    with pytest.raises(ValueError):
        PublishFrames(1, 131072, "e").publish("k" * 256, b"x", {})


# --- reading --------------------------------------------------------------------------------------
class ChoppySocket:
    """Hands out a byte stream in random pieces (never more than asked), with timeouts between."""

    def __init__(self, stream: bytes, seed: int):
        self.stream, self.at, self.rng = stream, 0, random.Random(seed)

    def recv(self, n):
        if self.rng.random() < 0.2:
            raise socket.timeout()
        piece = self.stream[self.at : self.at + min(n, self.rng.choice([1, 3, 7, 50, 4096, 70000]))]
        self.at += len(piece)
        return piece


def transport_over(sock: ChoppySocket, buffered: bool) -> TCPTransport:
    transport = TCPTransport.__new__(TCPTransport)  # no connect: the socket is ours
    transport._read_buffer, transport._quick_recv = b"", sock.recv
    transport.raise_on_initial_eintr, transport.connected = True, True
    transport.sock = None
    if buffered:
        assert buffer_reads(type("Conn", (), {"transport": transport})())
    return transport


def frames_read(transport, count):
    out, timeouts = [], 0
    while len(out) < count:
        try:
            out.append(transport.read_frame())
        except socket.timeout:
            timeouts += 1
    return out, timeouts


def frame(kind, channel, payload) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


@pytest.mark.parametrize("seed", range(6))
def test_the_chunked_reader_returns_py_amqps_frames_through_timeouts(seed):
    rng = random.Random(seed)
    sizes = [0, 1, 6, 7, 8, 500, 4096, 65535, 65536, 131072] + [rng.randint(0, 3000) for _ in range(300)]
    rng.shuffle(sizes)
    frames = [(rng.choice([1, 2, 3, 8]), rng.randint(0, 3), rng.randbytes(n)) for n in sizes]
    stream = b"".join(frame(*f) for f in frames)

    stock, stock_timeouts = frames_read(transport_over(ChoppySocket(stream, seed), buffered=False), len(frames))
    ours, our_timeouts = frames_read(transport_over(ChoppySocket(stream, seed), buffered=True), len(frames))

    assert stock == ours == frames
    assert stock_timeouts > 0 and our_timeouts > 0  # timeouts mid-frame lost nothing


def test_the_chunked_reader_fails_as_py_amqp_does():
    bad_end = struct.pack(">BHI", 1, 0, 2) + b"ab" + b"\x00"
    transport = transport_over(ChoppySocket(bad_end, 1), buffered=True)
    with pytest.raises(UnexpectedFrame):
        frames_read(transport, 1)

    closed = transport_over(ChoppySocket(frame(1, 0, b"x")[:5], 2), buffered=True)
    with pytest.raises(OSError, match="unexpectedly closed"):
        frames_read(closed, 1)
    assert closed.connected is False

    tls_like = type("Conn", (), {"transport": object()})()
    assert buffer_reads(tls_like) is False  # anything but plain TCP keeps py-amqp's reader
