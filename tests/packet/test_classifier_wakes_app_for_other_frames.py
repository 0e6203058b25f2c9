"""The frame classifier lets the engine answer only payloads made of PADDING, PING and
ACK; a CONNECTION_CLOSE is reported as such; any other frame (including unknown types,
non-minimal encodings of known ones, and a second ACK) means the application must see
the datagram.  Random payloads never raise anything but PacketError."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quic_offload.packet.errors import EmptyPayloadError, FrameEncodingError, PacketError
from quic_offload.packet.frame_classifier import PayloadKind, classify_payload
from quic_offload.packet.frames import encode_ack_frame, encode_connection_close

ACK_ONLY = encode_ack_frame([(3, 9)], 0)
STREAM = bytes.fromhex("0a0004") + b"data"


def test_ack_only_is_control_and_not_ack_eliciting() -> None:
    summary = classify_payload(ACK_ONLY + bytes(5))
    assert summary.kind is PayloadKind.CONTROL_ONLY
    assert not summary.ack_eliciting
    assert summary.ack is not None and summary.ack.ranges == ((3, 9),)


def test_ping_is_control_and_ack_eliciting() -> None:
    summary = classify_payload(b"\x01\x00\x00")
    assert (summary.kind, summary.ack_eliciting, summary.ack) == (
        PayloadKind.CONTROL_ONLY,
        True,
        None,
    )


def test_ping_plus_ack_with_interior_padding() -> None:
    summary = classify_payload(b"\x00\x00" + ACK_ONLY + b"\x00\x01\x00\x00")
    assert summary.kind is PayloadKind.CONTROL_ONLY and summary.ack_eliciting
    assert summary.ack is not None


def test_padding_only_is_control_and_not_ack_eliciting() -> None:
    summary = classify_payload(bytes(30))
    assert summary == (PayloadKind.CONTROL_ONLY, False, None, None)


def test_ack_ending_in_zero_bytes_is_not_mistaken_for_padding() -> None:
    # largest 5, delay 0, no more ranges, first range 0: the frame ends in zeros
    frame = encode_ack_frame([(5, 5)], 0)
    assert frame.endswith(b"\x00\x00")
    summary = classify_payload(frame)
    assert summary.ack is not None and summary.ack.ranges == ((5, 5),)


@pytest.mark.parametrize(
    "payload",
    [
        STREAM,
        b"\x01" + STREAM,
        ACK_ONLY + STREAM + encode_connection_close(0),
        b"\x1e",  # HANDSHAKE_DONE
        b"\x40\x01",  # PING in a non-minimal 2-byte encoding
        b"\x30\x00",  # DATAGRAM
        ACK_ONLY + ACK_ONLY,
    ],
)
def test_anything_else_wakes_the_app(payload: bytes) -> None:
    summary = classify_payload(payload)
    assert summary.kind is PayloadKind.OTHER
    assert summary.ack_eliciting


def test_connection_close_after_control_frames() -> None:
    summary = classify_payload(b"\x01" + ACK_ONLY + encode_connection_close(7, b"bye"))
    assert summary.kind is PayloadKind.CONNECTION_CLOSE
    assert summary.ack_eliciting and summary.ack is not None
    assert summary.close is not None and summary.close.reason == b"bye"


def test_empty_payload_is_a_protocol_violation() -> None:
    with pytest.raises(EmptyPayloadError) as info:
        classify_payload(b"")
    assert info.value.error_code == 0x0A


def test_malformed_ack_is_a_frame_encoding_error() -> None:
    with pytest.raises(FrameEncodingError):
        classify_payload(b"\x01\x02\x05")


@given(st.binary(max_size=64))
def test_random_payloads_never_crash(payload: bytes) -> None:
    try:
        summary = classify_payload(payload)
    except PacketError:
        return
    first_frame = payload.lstrip(b"\x00")[:1]
    if summary.kind is PayloadKind.CONTROL_ONLY:
        assert first_frame in (b"", b"\x01", b"\x02", b"\x03")
    elif summary.kind is PayloadKind.OTHER:
        assert summary.ack_eliciting
    else:
        assert summary.close is not None
