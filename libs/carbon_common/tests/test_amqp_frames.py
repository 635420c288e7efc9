"""The publisher's own frames are byte for byte those py-amqp writes for the same publish."""

import amqp
import pytest
from amqp.method_framing import frame_writer

from carbon_common.amqp_frames import PublishFrames


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
