"""The key table's fast paths give the general paths' bytes and verdicts.

* seal_ping / seal_ack on a warm slot with a 1-byte packet number take straight-line code;
  the same keys on a cold table (general path, one-shot header-protection masks) and on a
  warm table pushed onto the general path (min_packet_size=1 changes no padding) produce
  byte-identical packets, for any DCID length, spin bit, key phase, ranges and delay.
* open_datagram decodes common control payloads without the general classifier; for
  generated control payloads and random ones, sealed with every packet-number length, its
  verdict equals open() followed by classify_payload(), the reference, for bytes,
  bytearray and memoryview input."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shim_peer_link import ALL_SUITES, secret_length

from quic_offload.crypto import CipherSuite, KeyTable, ReceivedPacket, RxStatus
from quic_offload.packet.errors import PacketError
from quic_offload.packet.frame_classifier import PayloadKind, classify_payload
from quic_offload.packet.frames import encode_ack_frame
from quic_offload.packet.packet_number import encode_packet_number
from quic_offload.packet.short_header import build_short_header

STATUS = {
    PayloadKind.CONTROL_ONLY: RxStatus.CONTROL_ONLY,
    PayloadKind.CONNECTION_CLOSE: RxStatus.CONNECTION_CLOSE,
    PayloadKind.OTHER: RxStatus.OTHER_FRAMES,
}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tables(suite: CipherSuite, key_phase: int) -> tuple[bytes, bytes, list[KeyTable]]:
    ours, theirs = os.urandom(secret_length(suite)), os.urandom(secret_length(suite))
    made = []
    for warm_slots in (None, 0, None):
        table = KeyTable(1, warm_slots=warm_slots)
        table.install(0, suite, ours, theirs, key_phase)
        made.append(table)
    return ours, theirs, made


@st.composite
def send_cases(draw: st.DrawFn) -> dict:
    pn = draw(st.integers(min_value=0, max_value=2**40))
    gap = draw(st.integers(min_value=1, max_value=127))
    top = draw(st.sampled_from([60, 5000, 2**20]))
    largest = draw(st.integers(min_value=1, max_value=top))
    smallest = draw(st.integers(min_value=0, max_value=largest))
    ranges = [(smallest, largest)]
    if smallest > 5 and draw(st.booleans()):
        ranges.append((draw(st.integers(min_value=0, max_value=smallest - 2)), smallest - 2))
    return {
        "dcid": os.urandom(draw(st.integers(min_value=0, max_value=20))),
        "pn": pn,
        "largest_acked": pn - gap if pn >= gap else None,
        "spin": draw(st.booleans()),
        "ranges": ranges,
        "delay_us": draw(st.sampled_from([0, 100, 5000, 200_000])),
        "ping": draw(st.booleans()),
    }


@ALL_SUITES
@SETTINGS
@given(case=send_cases(), key_phase=st.integers(min_value=0, max_value=1))
def test_sealed_bytes_equal_general_path(suite: CipherSuite, case: dict, key_phase: int) -> None:
    _, _, (warm, cold, general) = tables(suite, key_phase)
    args = (0, case["dcid"], case["pn"], case["largest_acked"])
    # install() set the next PN to 0; each table seals the same PN once per kind
    pings = [
        warm.seal_ping(*args, spin=case["spin"]),
        cold.seal_ping(*args, spin=case["spin"]),
        general.seal_ping(*args, spin=case["spin"], min_packet_size=1),
    ]
    assert pings[0] == pings[1] == pings[2]
    ack_args = (0, case["dcid"], case["pn"] + 1, case["largest_acked"] or 0)
    ack_kwargs = {"ping": case["ping"], "spin": case["spin"]}
    acks = [
        warm.seal_ack(*ack_args, case["ranges"], case["delay_us"], **ack_kwargs),
        cold.seal_ack(*ack_args, case["ranges"], case["delay_us"], **ack_kwargs),
        general.seal_ack(
            *ack_args, case["ranges"], case["delay_us"], **ack_kwargs, min_packet_size=1
        ),
    ]
    assert acks[0] == acks[1] == acks[2]
    assert warm._slots[0].tx is not None  # white-box: the warm table kept its contexts


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(min_value=0, max_value=4))
    if kind == 0:
        return draw(st.binary(min_size=0, max_size=30))
    largest = draw(st.integers(min_value=0, max_value=2**16))
    frame = encode_ack_frame(
        [(draw(st.integers(min_value=0, max_value=largest)), largest)],
        draw(st.integers(min_value=0, max_value=20_000)),
    )
    head = b"\x01" if kind in (2, 4) else b""
    tail = draw(st.sampled_from([b"", b"\x01", b"\x00\x00", b"\x01\x00", b"\x07\x00", b"\x02"]))
    payload = head + frame + tail
    if kind == 4:  # damage one byte of an otherwise common payload
        at = draw(st.integers(min_value=0, max_value=len(payload) - 1))
        payload = payload[:at] + bytes((draw(st.integers(0, 255)),)) + payload[at + 1 :]
    return payload


def reference_verdict(table: KeyTable, packet: bytes, largest: int, exponent: int):
    opened = table.open(0, packet, dcid_len=8, largest_pn=largest)
    pn, phase, spin, updated = (
        opened.packet_number,
        opened.key_phase,
        opened.spin,
        opened.key_updated,
    )
    try:
        kind, eliciting, ack, close = classify_payload(opened.payload)
    except PacketError as exc:
        return ReceivedPacket(
            RxStatus.PROTOCOL_ERROR, pn, phase, spin, updated, error_code=exc.error_code
        )
    delay_us = 0 if ack is None else ack.delay << exponent
    return ReceivedPacket(STATUS[kind], pn, phase, spin, updated, eliciting, ack, delay_us, close)


@ALL_SUITES
@SETTINGS
@given(
    payload=payloads(),
    pn=st.integers(min_value=0, max_value=2**32),
    pn_length=st.integers(min_value=1, max_value=4),
    spin=st.booleans(),
    exponent=st.integers(min_value=0, max_value=20),
    form=st.sampled_from([bytes, bytearray, memoryview]),
)
def test_open_verdicts_equal_open_then_classify(
    suite: CipherSuite,
    payload: bytes,
    pn: int,
    pn_length: int,
    spin: bool,
    exponent: int,
    form: type,
) -> None:
    ours, theirs, (receiver, reference, _) = tables(suite, 0)
    sender = KeyTable(1)
    sender.install(0, suite, theirs, ours)
    largest = pn - 1
    truncated, needed = encode_packet_number(pn, largest if largest >= 0 else None)
    pn_length = max(pn_length, needed)
    payload = payload.ljust(4 - pn_length, b"\x00")  # the header-protection sample
    header = bytearray(
        build_short_header(bytes(range(8)), pn & ((1 << 8 * pn_length) - 1), pn_length)
    )
    if spin:
        header[0] |= 0x20
    packet = sender.seal(0, bytes(header), payload, pn)
    got = receiver.open_datagram(0, form(packet), 8, largest, exponent)
    assert got == reference_verdict(reference, packet, largest, exponent)
    assert got.packet_number == pn and got.spin == spin
