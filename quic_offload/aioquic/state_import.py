"""Resume: fold what the engine did while a connection was parked back into aioquic.

The write-back carries everything that changed: the next packet number (the engine used
some), the packet numbers it received and acknowledged, when the last packet arrived (the
idle timer restarts from there), the spin bit, the peer's latest ACK of our packets, and the
current keys (the peer may have updated them).  After :func:`import_writeback` the
connection is exactly as if it had sent and received those packets itself.
"""

from __future__ import annotations

from aioquic._crypto import AEAD
from aioquic.quic.connection import QuicConnection
from aioquic.quic.crypto import CIPHER_SUITES, CryptoContext, derive_key_iv_hp
from aioquic.quic.rangeset import RangeSet
from aioquic.tls import CipherSuite, Epoch

from quic_offload.aioquic.engine_clock import EngineClock
from quic_offload.offload_abi import NO_PN, WRITEBACK_MAGIC, QoKeys, QoWriteback

#: Received packet numbers added to aioquic's duplicate-detection window, at most (it only
#: holds a window of recent ones anyway).
_MAX_PNS_RECORDED = 256


class WritebackError(ValueError):
    """The write-back does not describe this connection (the message says why)."""


def _set_keys(ctx: CryptoContext, secret: bytes, key_phase: int, version: int) -> None:
    """Switch ``ctx`` to the AEAD keys of ``secret``; the header-protection key stays."""
    if ctx.secret == secret and ctx.key_phase == key_phase:
        return
    suite: CipherSuite = ctx.cipher_suite
    key, iv, _hp = derive_key_iv_hp(cipher_suite=suite, secret=secret, version=version)
    ctx.aead = AEAD(CIPHER_SUITES[suite][1], key, iv)
    ctx.secret = secret
    ctx.key_phase = key_phase


def import_writeback(quic: QuicConnection, wb: QoWriteback, keys: QoKeys,
                     clock: EngineClock) -> None:
    """Make ``quic`` continue from the engine's state (see the module docstring)."""
    if wb.magic != WRITEBACK_MAGIC:
        raise WritebackError("the park record holds no write-back (reclaim did not run)")
    if wb.status != 0:
        raise WritebackError(f"reclaim reported status {wb.status}")
    now = clock.loop.time()
    space = quic._spaces[Epoch.ONE_RTT]
    crypto = quic._cryptos[Epoch.ONE_RTT]

    # packet numbers: never reuse one the engine sent (nonce reuse under the same key)
    quic._packet_number = max(quic._packet_number, wb.next_pn)

    # keys: the peer may have moved to the next key phase while we were parked
    n = keys.secret_len
    if n:
        version = quic._version
        _set_keys(crypto.recv, bytes(keys.recv_secret)[:n], keys.key_phase, version)
        _set_keys(crypto.send, bytes(keys.send_secret)[:n], keys.key_phase, version)

    # what was received: report it from now on, and treat it as seen (duplicates)
    previous_largest = space.largest_received_packet
    ranges = [(wb.ranges[i].smallest, wb.ranges[i].largest) for i in range(wb.n_ranges)]
    if ranges:
        queue = RangeSet()
        for lo, hi in ranges:
            queue.add(lo, hi + 1)
        space.ack_queue = queue
        recorded = 0
        for lo, hi in ranges:  # newest first
            for pn in range(hi, max(lo, previous_largest + 1) - 1, -1):
                if recorded >= _MAX_PNS_RECORDED:
                    break
                space.received_packets.add(pn)
                recorded += 1
    if wb.largest_received != NO_PN and wb.largest_received > previous_largest:
        space.largest_received_packet = wb.largest_received
        space.largest_received_time = clock.to_loop(wb.largest_received_ns)
        space.expected_packet_number = wb.largest_received + 1
        quic._spin_highest_pn = wb.largest_received
        quic._spin_bit = bool(wb.spin)
    # the engine answered every ack-eliciting packet it accepted
    space.ack_at = None

    # the peer's latest ACK: retires what aioquic sent before parking (ACK-only packets)
    if wb.n_peer_ack_ranges:
        acked = RangeSet()
        for i in range(wb.n_peer_ack_ranges):
            r = wb.peer_ack_ranges[i]
            acked.add(r.smallest, r.largest + 1)
        quic._loss.on_ack_received(ack_rangeset=acked, ack_delay=wb.peer_ack_delay_ns / 1e9,
                                   now=now, space=space)
    if wb.largest_acked != NO_PN and wb.largest_acked > space.largest_acked_packet:
        space.largest_acked_packet = wb.largest_acked

    # the idle timer restarts from the last packet the engine processed
    quic._close_at = clock.to_loop(wb.last_receive_ns) + quic._idle_timeout()
    quic._ack_eliciting_sent_since_receipt = False
