"""Every payload the builders produce leaves a header-protection sample and makes a
datagram of at least 21 bytes, for every connection-ID and packet-number length, and
reaches min_packet_size when asked (RFC 9000 §10.3)."""

import pytest

from quic_offload.packet.frame_classifier import PayloadKind, classify_payload
from quic_offload.packet.header_protection import SAMPLE_LENGTH, SAMPLE_OFFSET
from quic_offload.packet.packet_builder import (
    AEAD_TAG_LENGTH,
    ack_payload,
    ping_payload,
)


def packet_size(dcid_len: int, pn_length: int, payload: bytes) -> int:
    return 1 + dcid_len + pn_length + len(payload) + AEAD_TAG_LENGTH


@pytest.mark.parametrize("dcid_len", range(21))
@pytest.mark.parametrize("pn_length", [1, 2, 3, 4])
def test_ping_has_sample_and_21_bytes(dcid_len: int, pn_length: int) -> None:
    payload = ping_payload(pn_length, dcid_len)
    size = packet_size(dcid_len, pn_length, payload)
    assert size >= 21
    assert 1 + dcid_len + SAMPLE_OFFSET + SAMPLE_LENGTH <= size
    summary = classify_payload(payload)
    assert summary.kind is PayloadKind.CONTROL_ONLY and summary.ack_eliciting


@pytest.mark.parametrize("pn_length", [1, 2, 3, 4])
def test_ack_only_is_padded_too(pn_length: int) -> None:
    payload = ack_payload([(0, 0)], 0, pn_length=pn_length)
    assert pn_length + len(payload) >= SAMPLE_OFFSET
    summary = classify_payload(payload)
    assert summary.kind is PayloadKind.CONTROL_ONLY and not summary.ack_eliciting


def test_ping_plus_ack_is_ack_eliciting() -> None:
    summary = classify_payload(ack_payload([(10, 12)], 100, pn_length=1, ping=True))
    assert summary.ack_eliciting and summary.ack is not None


@pytest.mark.parametrize("min_size", [21, 30, 64, 1200])
def test_min_packet_size_is_reached(min_size: int) -> None:
    payload = ping_payload(2, 8, min_size)
    assert packet_size(8, 2, payload) == max(min_size, packet_size(8, 2, ping_payload(2, 8)))
