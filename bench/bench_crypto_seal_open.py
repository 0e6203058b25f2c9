"""Key-table fast paths against the raw crypto floor, per cipher suite.

Measured side by side in one run:

* ``seal_ping``: a complete padded, sealed, header-protected PING packet (8-byte DCID);
* ``seal_ack ping``: a PING+ACK packet with two ACK ranges;
* ``open_datagram``: open an ACK-only packet (2-byte packet number) and classify it, from
  ``bytes`` and from a ``memoryview`` into a larger buffer (how the engine's helper passes
  datagrams);
* each once with the slot's cipher contexts kept (warm) and once built per packet
  (``warm_slots=0``: AEAD object plus a one-shot header-protection mask);
* a population four times the warm set, used round robin (``warm_slots=64``, 256 slots):
  every use is a slot's first in a long while, so it is served one-shot and the warm set
  is left alone — the steady state of many parked connections;
* the floor: the suite's raw AEAD ``encrypt`` (or ``decrypt``) of the same payload under
  the same header, plus one header-protection mask from a reused context;
* the receive minimum: the floor's two calls plus only the per-packet steps no receiver
  can skip (sample slice, unmasking the first byte and a 2-byte packet number, assembling
  the associated data, the nonce, the ciphertext slice), as straight-line code with
  constant offsets, no checks and no classification — what interpreted Python cannot
  go below;
* aioquic 1.7.2's ``CryptoPair.encrypt_packet`` / ``decrypt_packet`` on the same packets,
  as a peer running the same work (it builds no frames and classifies nothing).

Prints microseconds per packet (best of ``--repeat`` rounds of ``--ops`` packets) and the
ratio to the floor.  Bounded: a fixed number of operations per section.

    python bench/bench_crypto_seal_open.py [--ops 20000] [--repeat 5] [--suites aes128]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from aioquic.quic.crypto import CryptoPair
from aioquic.tls import CipherSuite as AioquicSuite
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from quic_offload.crypto import CipherSuite, KeyTable, RxStatus
from quic_offload.crypto.key_schedule import derive_packet_keys

SUITES = {
    "aes128": CipherSuite.AES_128_GCM_SHA256,
    "aes256": CipherSuite.AES_256_GCM_SHA384,
    "chacha20": CipherSuite.CHACHA20_POLY1305_SHA256,
}
DCID = bytes(range(8))


def measure(
    sections: list[tuple[str, Callable[[int], None], str]], ops: int, repeat: int
) -> dict[str, float]:
    """Best microseconds per op of each section; rounds are interleaved so that a burst
    of load on the machine hits every section alike, not just one."""
    best = {label: float("inf") for label, _, _ in sections}
    for _ in range(repeat):
        for label, run, _ in sections:
            start = time.perf_counter()
            run(ops)
            best[label] = min(best[label], (time.perf_counter() - start) / ops * 1e6)
    return best


def raw_contexts(suite: CipherSuite, secret: bytes) -> tuple[object, Callable, bytes]:
    """AEAD object, header-protection mask function and IV of ``secret``, built once."""
    key, iv, hp = derive_packet_keys(suite, secret)
    if suite == CipherSuite.CHACHA20_POLY1305_SHA256:
        context = Cipher(algorithms.ChaCha20(hp, bytes(16)), mode=None).encryptor()

        def mask(sample: bytes) -> bytes:
            context.reset_nonce(sample)
            return context.update(bytes(5))

        return ChaCha20Poly1305(key), mask, iv
    return AESGCM(key), Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update, iv


def floor_functions(suite: CipherSuite, secret: bytes, plain: bytes, header: bytes):
    """Raw AEAD + one HP mask with reused contexts: what any implementation must pay."""
    aead, mask, nonce = raw_contexts(suite, secret)
    sealed = aead.encrypt(nonce, plain, header)
    sample = sealed[:16]

    def seal_floor(ops: int) -> None:
        encrypt = aead.encrypt
        for _ in range(ops):
            encrypt(nonce, plain, header)
            mask(sample)

    def open_floor(ops: int) -> None:
        decrypt = aead.decrypt
        for _ in range(ops):
            decrypt(nonce, sealed, header)
            mask(sample)

    return seal_floor, open_floor


def receive_minimum(suite: CipherSuite, secret: bytes, packet: bytes, largest_pn: int):
    """Unmask and decrypt ``packet`` (8-byte DCID, 2-byte packet number) with nothing
    else: no checks, no key phases, no classification, no verdict."""
    aead, mask, iv = raw_contexts(suite, secret)
    iv_value = int.from_bytes(iv, "big")
    one_byte = tuple(bytes((value,)) for value in range(256))
    expected = largest_pn + 1

    def run(ops: int) -> None:
        decrypt = aead.decrypt
        for _ in range(ops):
            hp_mask = mask(packet[13:29])
            high = packet[9] ^ hp_mask[1]
            low = packet[10] ^ hp_mask[2]
            header = one_byte[packet[0] ^ (hp_mask[0] & 0x1F)] + packet[1:9] + one_byte[high]
            header += one_byte[low]
            pn = (expected & -0x10000) | high << 8 | low
            decrypt((iv_value ^ pn).to_bytes(12, "big"), packet[11:], header)

    return run


def bench_suite(name: str, suite: CipherSuite, ops: int, repeat: int) -> None:
    size = 48 if suite == CipherSuite.AES_256_GCM_SHA384 else 32
    ours, theirs = os.urandom(size), os.urandom(size)
    sections: list[tuple[str, Callable[[int], None], str]] = []

    # the ACK-only packet the peer sends us, sealed once: slot 1 holds the peer's keys
    ack_source = KeyTable(2)
    ack_source.install(1, suite, theirs, ours)
    ack_packet = ack_source.seal_ack(1, DCID, 1000, 800, [(0, 500)], 3000)
    reader = KeyTable(1)
    reader.install(0, suite, ours, theirs)
    ack_opened = reader.open(0, ack_packet, dcid_len=8, largest_pn=999)
    assert len(ack_opened.header) == 1 + 8 + 2
    ping_plain = b"\x01\x00\x00"  # 1-byte PN: PING + 2 PADDING

    seal_floor, _ = floor_functions(suite, ours, ping_plain, b"\x40" + DCID + b"\x01")
    _, open_floor = floor_functions(suite, theirs, ack_opened.payload, ack_opened.header)
    seal_floor_label = "floor: AEAD encrypt + 1 HP mask"
    open_floor_label = "floor: AEAD decrypt + 1 HP mask"
    sections.append((seal_floor_label, seal_floor, seal_floor_label))
    sections.append((open_floor_label, open_floor, open_floor_label))
    sections.append(
        (
            "receive minimum: unmask + decrypt only",
            receive_minimum(suite, theirs, ack_packet, 999),
            open_floor_label,
        )
    )

    for label, warm_slots in (("warm", 16), ("cold", 0)):
        table = KeyTable(2, warm_slots=warm_slots)
        table.install(0, suite, ours, theirs)
        next_pn = [0]

        def seal_pings(count: int, table: KeyTable = table, next_pn: list[int] = next_pn) -> None:
            seal_ping = table.seal_ping
            pn = next_pn[0]
            for pn in range(pn, pn + count):  # noqa: B020 - resumes where the last round ended
                seal_ping(0, DCID, pn, pn - 1 if pn else None)
            next_pn[0] = pn + 1

        def seal_ping_acks(
            count: int, table: KeyTable = table, next_pn: list[int] = next_pn
        ) -> None:
            seal_ack = table.seal_ack
            ranges = [(900, 1000), (0, 800)]
            pn = next_pn[0]
            for pn in range(pn, pn + count):  # noqa: B020
                seal_ack(0, DCID, pn, pn - 1 if pn else None, ranges, 5000, ping=True)
            next_pn[0] = pn + 1

        def open_acks(count: int, table: KeyTable = table) -> None:
            open_datagram = table.open_datagram
            for _ in range(count):
                open_datagram(0, ack_packet, dcid_len=8, largest_pn=999)

        assert table.open_datagram(0, ack_packet, dcid_len=8, largest_pn=999).status is (
            RxStatus.CONTROL_ONLY
        )
        sections.append((f"seal_ping ({label})", seal_pings, seal_floor_label))
        sections.append((f"seal_ack ping+ack ({label})", seal_ping_acks, seal_floor_label))
        sections.append((f"open_datagram ack ({label})", open_acks, open_floor_label))
        if label == "warm":
            buffer = bytearray(2048)
            buffer[100 : 100 + len(ack_packet)] = ack_packet
            view = memoryview(buffer)

            def open_acks_from_view(
                count: int, table: KeyTable = table, view: memoryview = view
            ) -> None:
                open_datagram = table.open_datagram
                end = 100 + len(ack_packet)
                for _ in range(count):
                    datagram = view[100:end]
                    open_datagram(0, datagram, dcid_len=8, largest_pn=999)
                    datagram.release()

            sections.append(
                ("open_datagram ack, memoryview (warm)", open_acks_from_view, open_floor_label)
            )

    population, warm_set = 256, 64
    crowd = KeyTable(population, warm_slots=warm_set)
    for slot in range(population):  # one receive secret for all: one packet opens in each
        crowd.install(slot, suite, os.urandom(size), theirs)
    crowd_pns = [0] * population

    def crowd_pings(count: int) -> None:
        seal_ping = crowd.seal_ping
        for index in range(count):
            slot = index % population
            pn = crowd_pns[slot]
            seal_ping(slot, DCID, pn, pn - 1 if pn else None)
            crowd_pns[slot] = pn + 1

    def crowd_acks(count: int) -> None:
        open_datagram = crowd.open_datagram
        for index in range(count):
            open_datagram(index % population, ack_packet, dcid_len=8, largest_pn=999)

    label = f"{population} slots round robin, {warm_set} warm"
    sections.append((f"seal_ping ({label})", crowd_pings, seal_floor_label))
    sections.append((f"open_datagram ack ({label})", crowd_acks, open_floor_label))

    peer = CryptoPair()
    peer.send.setup(cipher_suite=AioquicSuite(int(suite)), secret=ours, version=1)
    peer.recv.setup(cipher_suite=AioquicSuite(int(suite)), secret=theirs, version=1)
    header = b"\x40" + DCID + b"\x01"

    def aioquic_seal(count: int) -> None:
        encrypt = peer.encrypt_packet
        for pn in range(count):
            encrypt(header, ping_plain, pn)

    def aioquic_open(count: int) -> None:
        decrypt = peer.decrypt_packet
        for _ in range(count):
            decrypt(ack_packet, 9, 1000)

    sections.append(("aioquic CryptoPair.encrypt_packet", aioquic_seal, seal_floor_label))
    sections.append(("aioquic CryptoPair.decrypt_packet", aioquic_open, open_floor_label))

    best = measure(sections, ops, repeat)

    print(f"\n{name} ({suite.name}), {ops} packets x best of {repeat}")
    print(f"  {'path':50s} {'us/packet':>10s} {'x floor':>8s}")
    for label, _, floor_label in sections:
        print(f"  {label:50s} {best[label]:10.3f} {best[label] / best[floor_label]:8.2f}")
    print(f"  warm slots after the round robin: {crowd.warm_slot_count()} of {warm_set}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--suites", default=",".join(SUITES), help=",".join(SUITES))
    args = parser.parse_args()
    for name in args.suites.split(","):
        bench_suite(name, SUITES[name], args.ops, args.repeat)


if __name__ == "__main__":
    main()
