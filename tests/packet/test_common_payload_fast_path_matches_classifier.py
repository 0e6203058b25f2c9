"""classify_common_payload, the straight-line decoder for the payloads an idle connection
exchanges ([PING] [one-range ACK] [PING] PADDING*), never disagrees with classify_payload:
on generated control-frame payloads (minimal and non-minimal varints of every size, extra
ranges, ACK_ECN, trailing frames) and on random bytes it either declines (None) or gives
exactly classify_payload's ack_eliciting and ACK frame for a CONTROL_ONLY payload.  The
shapes it exists for are recognised."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quic_offload.packet.errors import PacketError
from quic_offload.packet.frame_classifier import (
    PayloadKind,
    classify_common_payload,
    classify_payload,
)
from quic_offload.packet.frames import encode_ack_frame

_PREFIX = {1: 0, 2: 0x4000, 4: 0x8000_0000, 8: 0xC000_0000_0000_0000}


def varint(value: int, size: int) -> bytes:
    """``value`` on ``size`` bytes: non-minimal encodings are legal outside frame types."""
    return (_PREFIX[size] | value).to_bytes(size, "big")


@st.composite
def varints(draw: st.DrawFn, max_value: int = 2**20) -> bytes:
    value = draw(st.integers(min_value=0, max_value=max_value))
    sizes = [size for size in (1, 2, 4, 8) if value < 1 << (8 * size - 2)]
    return varint(value, draw(st.sampled_from(sizes)))


@st.composite
def control_payloads(draw: st.DrawFn) -> bytes:
    parts = []
    if draw(st.booleans()):
        parts.append(b"\x01")
    if draw(st.integers(min_value=0, max_value=3)):
        parts.append(bytes((draw(st.sampled_from([2, 2, 2, 3])),)))
        parts.append(draw(varints()))  # largest
        parts.append(draw(varints()))  # delay
        extra = draw(st.sampled_from([0, 0, 0, 1, 2]))
        parts.append(varint(extra, draw(st.sampled_from([1, 1, 2]))))
        for _ in range(2 * extra + 1):  # first range, then gap/length pairs
            parts.append(draw(varints(max_value=300)))
        if draw(st.booleans()):  # ECN counts, whatever the frame type says
            parts.extend(draw(varints()) for _ in range(3))
    parts.append(
        draw(
            st.sampled_from(
                [b"", b"\x01", b"\x00" * 3, b"\x01\x00\x00", b"\x01\x01", b"\x02", b"\x08\x00"]
            )
        )
    )
    payload = b"".join(parts)
    if payload and draw(st.booleans()):
        cut = draw(st.integers(min_value=0, max_value=len(payload)))
        payload = payload[:cut]
    return payload


def check_agrees(payload: bytes) -> None:
    common = classify_common_payload(payload)
    try:
        summary = classify_payload(payload)
    except PacketError:
        assert common is None, payload.hex()
        return
    if common is not None:
        assert summary.kind is PayloadKind.CONTROL_ONLY and summary.close is None, payload.hex()
        assert common == (summary.ack_eliciting, summary.ack), payload.hex()


@settings(max_examples=500)
@given(control_payloads())
def test_agrees_on_control_frame_payloads(payload: bytes) -> None:
    check_agrees(payload)


@settings(max_examples=300)
@given(st.binary(max_size=40))
def test_agrees_on_random_bytes(payload: bytes) -> None:
    check_agrees(payload)


@pytest.mark.parametrize(
    "payload",
    [
        encode_ack_frame([(0, 500)], 375),  # ACK-only, two-byte fields
        encode_ack_frame([(3, 7)], 0) + bytes(4),  # ACK + PADDING
        encode_ack_frame([(900, 1000)], 625) + b"\x01",  # ACK + PING (our PING+ACK)
        b"\x01" + encode_ack_frame([(10, 16000)], 63) + bytes(2),  # PING first (aioquic)
        b"\x01\x00\x00",  # padded PING
        bytes(5),  # PADDING only
    ],
)
def test_recognises_the_shapes_it_exists_for(payload: bytes) -> None:
    common = classify_common_payload(payload)
    summary = classify_payload(payload)
    assert common is not None and common == (summary.ack_eliciting, summary.ack)
