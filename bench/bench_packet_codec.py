"""Codec pieces on the receive and send paths, next to aioquic's equivalents.

Measured side by side in one run (rounds interleaved, best of ``--repeat``):

* ACK frame parse (one range, and ten ranges) against aioquic's ``pull_ack_frame``;
* ACK frame encode against aioquic's ``push_ack_frame`` (into a reused Buffer);
* payload classification of an ACK-only and a PING+ACK payload, by the general
  classifier and by the straight-line decoder of the common shapes the receive path tries
  first (no aioquic equivalent: aioquic dispatches every frame to its handler);
* packet-number recovery against aioquic's ``decode_packet_number``.

Prints nanoseconds per operation and our time over aioquic's.  Bounded: ``--ops``
operations per section per round.

    python bench/bench_packet_codec.py [--ops 50000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from aioquic.buffer import Buffer
from aioquic.quic.packet import decode_packet_number as aioquic_decode_pn
from aioquic.quic.packet import pull_ack_frame, push_ack_frame
from aioquic.quic.rangeset import RangeSet

from quic_offload.packet.frame_classifier import classify_common_payload, classify_payload
from quic_offload.packet.frames import ACK, encode_ack_frame, parse_ack_frame
from quic_offload.packet.packet_number import decode_packet_number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    one_range = [(900, 1000)]
    ten_ranges = [(10_000 - 50 * i - 20, 10_000 - 50 * i) for i in range(10)]
    rangesets = {}
    for name, ranges in (("1", one_range), ("10", ten_ranges)):
        rangeset = RangeSet()
        for smallest, largest in ranges:
            rangeset.add(smallest, largest + 1)
        rangesets[name] = rangeset
    frames = {name: encode_ack_frame(r, 375) for name, r in (("1", one_range), ("10", ten_ranges))}
    ack_only = frames["1"] + bytes(2)
    ping_ack = b"\x01" + frames["1"]
    buffer = Buffer(capacity=1500)

    def ours_parse(frame: bytes) -> Callable[[int], None]:
        def run(ops: int) -> None:
            for _ in range(ops):
                parse_ack_frame(frame, 1, ACK)

        return run

    def aioquic_parse(frame: bytes) -> Callable[[int], None]:
        body = frame[1:]

        def run(ops: int) -> None:
            for _ in range(ops):
                pull_ack_frame(Buffer(data=body))

        return run

    def ours_encode(ops: int) -> None:
        for _ in range(ops):
            encode_ack_frame(one_range, 375)

    def aioquic_encode(ops: int) -> None:
        rangeset = rangesets["1"]
        for _ in range(ops):
            buffer.seek(0)
            buffer.push_uint_var(ACK)
            push_ack_frame(buffer, rangeset, 375, 1400)

    def classify(payload: bytes, classifier=classify_payload) -> Callable[[int], None]:
        def run(ops: int) -> None:
            for _ in range(ops):
                classifier(payload)

        return run

    def ours_pn(ops: int) -> None:
        for _ in range(ops):
            decode_packet_number(0x9B32, 2, 0xA82F30EA)

    def aioquic_pn(ops: int) -> None:
        for _ in range(ops):
            aioquic_decode_pn(0x9B32, 16, 0xA82F30EB)

    sections: list[tuple[str, Callable[[int], None], Callable[[int], None] | None]] = [
        ("ACK parse, 1 range", ours_parse(frames["1"]), aioquic_parse(frames["1"])),
        ("ACK parse, 10 ranges", ours_parse(frames["10"]), aioquic_parse(frames["10"])),
        ("ACK encode, 1 range", ours_encode, aioquic_encode),
        ("classify ACK-only payload", classify(ack_only), None),
        ("classify PING+ACK payload", classify(ping_ack), None),
        ("common-shape ACK-only", classify(ack_only, classify_common_payload), None),
        ("common-shape PING+ACK", classify(ping_ack, classify_common_payload), None),
        ("packet number recovery", ours_pn, aioquic_pn),
    ]
    best: dict[tuple[str, str], float] = {}
    for _ in range(args.repeat):
        for label, ours, theirs in sections:
            for who, run in (("ours", ours), ("aioquic", theirs)):
                if run is None:
                    continue
                start = time.perf_counter()
                run(args.ops)
                elapsed = (time.perf_counter() - start) / args.ops * 1e9
                best[label, who] = min(best.get((label, who), float("inf")), elapsed)

    print(f"{args.ops} operations x best of {args.repeat}")
    print(f"  {'operation':28s} {'ours ns':>9s} {'aioquic ns':>11s} {'ratio':>6s}")
    for label, _, theirs in sections:
        ours_ns = best[label, "ours"]
        if theirs is None:
            print(f"  {label:28s} {ours_ns:9.0f} {'-':>11s} {'-':>6s}")
        else:
            theirs_ns = best[label, "aioquic"]
            print(f"  {label:28s} {ours_ns:9.0f} {theirs_ns:11.0f} {ours_ns / theirs_ns:6.2f}")


if __name__ == "__main__":
    main()
