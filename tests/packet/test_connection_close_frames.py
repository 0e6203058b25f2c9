"""Both CONNECTION_CLOSE types round-trip (transport close with its trigger frame type,
application close without), and a reason phrase running past the packet is a
FrameEncodingError."""

import pytest
from aioquic.buffer import Buffer

from quic_offload.packet.errors import FrameEncodingError
from quic_offload.packet.frames import (
    APPLICATION_CLOSE,
    CONNECTION_CLOSE,
    encode_connection_close,
    parse_connection_close,
)


def test_transport_close_roundtrip() -> None:
    frame = encode_connection_close(0x0A, b"bad frame", frame_type=0x08)
    assert frame[0] == CONNECTION_CLOSE
    close, end = parse_connection_close(frame, 1, CONNECTION_CLOSE)
    assert (close.error_code, close.frame_type, close.reason) == (0x0A, 0x08, b"bad frame")
    assert not close.is_application
    assert end == len(frame)


def test_application_close_roundtrip() -> None:
    frame = encode_connection_close(0x100, b"", frame_type=None)
    assert frame[0] == APPLICATION_CLOSE
    close, end = parse_connection_close(frame, 1, APPLICATION_CLOSE)
    assert (close.error_code, close.frame_type, close.reason) == (0x100, None, b"")
    assert close.is_application
    assert end == len(frame)


def test_layout_matches_aioquic_encoding() -> None:
    buf = Buffer(capacity=64)
    buf.push_uint_var(CONNECTION_CLOSE)
    buf.push_uint_var(0x0A)
    buf.push_uint_var(0x08)
    buf.push_uint_var(3)
    buf.push_bytes(b"abc")
    assert encode_connection_close(0x0A, b"abc", frame_type=0x08) == buf.data


def test_reason_overrunning_the_packet() -> None:
    frame = encode_connection_close(1, b"reason")[:-2]
    with pytest.raises(FrameEncodingError, match="overruns"):
        parse_connection_close(frame, 1, CONNECTION_CLOSE)


def test_every_truncation_is_an_error() -> None:
    frame = encode_connection_close(2**20, b"x", frame_type=2**14)
    for end in range(1, len(frame)):
        with pytest.raises(FrameEncodingError):
            parse_connection_close(frame[:end], 1, CONNECTION_CLOSE)
