"""Park: turn a quiescent aioquic connection into the engine's snapshot and key block.

What the engine needs to keep a connection alive is small -- the packet numbers of both
directions, what was received and is still unreported, the CIDs and peer address, the timing
parameters and the 1-RTT keys -- and this module reads exactly that out of a
:class:`~aioquic.quic.connection.QuicConnection` (whose fields are private, so the aioquic
versions this works with are pinned in the project's dependencies).
"""

from __future__ import annotations

import ctypes
import socket

from aioquic.quic.connection import QuicConnection
from aioquic.tls import Epoch

from quic_offload.aioquic.engine_clock import EngineClock
from quic_offload.aioquic.key_capture import FirstSecrets
from quic_offload.aioquic.policy import OffloadPolicy
from quic_offload.offload_abi import (
    MAX_RANGES,
    MAX_RESET_TOKENS,
    NO_PN,
    QoCid,
    QoKeys,
    QoRange,
    QoSnapshot,
)
from uring.user_structs import encode_sockaddr

#: aioquic advertises no max_ack_delay, so the peer assumes the default (RFC 9000 §18.2).
DEFAULT_MAX_ACK_DELAY = 0.025


class ExportError(ValueError):
    """The connection cannot be described to the engine (the message says why)."""


def peer_sockaddr(addr: tuple, family: int) -> bytes:
    """The peer address as the kernel reports it on a socket of ``family``."""
    host = addr[0]
    if family == socket.AF_INET6 and ":" not in host:
        addr = ("::ffff:" + host, addr[1], 0, 0)
    return encode_sockaddr(addr)


def export_snapshot(
    quic: QuicConnection, *, sock_family: int, sock_fd: int, policy: OffloadPolicy,
    clock: EngineClock, first_secrets: FirstSecrets,
) -> tuple[QoSnapshot, QoKeys]:
    """The snapshot and key block of ``quic``, which :func:`park_blockers` found quiescent."""
    space = quic._spaces[Epoch.ONE_RTT]
    crypto = quic._cryptos[Epoch.ONE_RTT]
    now_loop = clock.loop.time()
    snap = QoSnapshot()
    snap.sock_fd = sock_fd
    snap.role = 0 if quic._is_client else 1
    snap.spin = int(quic._spin_bit)
    snap.unresponsive_after = policy.unresponsive_after
    snap.peer_ack_delay_exponent = quic._remote_ack_delay_exponent
    snap.next_pn = quic._packet_number
    # aioquic starts this at 0 before any ACK: a too-small value only makes the engine pick
    # a longer packet-number encoding, which is always safe
    snap.largest_acked = space.largest_acked_packet
    largest = space.largest_received_packet
    snap.largest_received = largest if largest >= 0 else NO_PN
    if space.largest_received_time is not None:
        snap.largest_received_ns = clock.to_engine(space.largest_received_time)
    idle_timeout = quic._idle_timeout()
    close_at = quic._close_at if quic._close_at is not None else now_loop + idle_timeout
    snap.last_receive_ns = clock.to_engine(close_at - idle_timeout)
    snap.last_send_ns = clock.to_engine(now_loop)
    snap.interval_ns = int(policy.keepalive_interval * 1e9)
    snap.idle_timeout_ns = int(idle_timeout * 1e9)
    snap.pto_ns = int(quic._loss.get_probe_timeout() * 1e9)
    snap.max_ack_delay_ns = int(DEFAULT_MAX_ACK_DELAY * 1e9)

    # received packet numbers still to report, newest first, with the largest always in
    ranges = [(r.start, r.stop - 1) for r in space.ack_queue]
    if largest >= 0 and not any(lo <= largest <= hi for lo, hi in ranges):
        ranges.append((largest, largest))
        ranges.sort()
    ranges = ranges[::-1][:MAX_RANGES]
    snap.n_ranges = len(ranges)
    for i, (lo, hi) in enumerate(ranges):
        snap.ranges[i] = QoRange(lo, hi)
    snap.ack_pending = int(len(space.ack_queue) > 0)
    snap.ack_eliciting_pending = int(space.ack_at is not None)

    snap.dcid = QoCid.of(quic._peer_cid.cid)
    # the CID the peer is using: the engine listens for that one; a packet to any other of
    # ours reaches the application, which resumes and parks again later
    snap.host_cid = QoCid.of(quic.host_cid)
    addr = peer_sockaddr(quic._network_paths[0].addr, sock_family)
    snap.peer_addr_len = len(addr)
    ctypes.memmove(snap.peer_addr, addr, len(addr))

    keys = QoKeys()
    suite = crypto.send.cipher_suite
    version = quic._version
    try:
        send_hp, recv_hp = first_secrets.hp_keys(version)
    except LookupError as exc:
        raise ExportError(str(exc)) from None
    send_secret, recv_secret = crypto.send.secret, crypto.recv.secret
    keys.suite = int(suite)
    keys.version = version
    keys.key_phase = crypto.recv.key_phase
    keys.secret_len = len(send_secret)
    keys.hp_len = len(send_hp)
    ctypes.memmove(keys.send_secret, send_secret, len(send_secret))
    ctypes.memmove(keys.recv_secret, recv_secret, len(recv_secret))
    ctypes.memmove(keys.send_hp, send_hp, len(send_hp))
    ctypes.memmove(keys.recv_hp, recv_hp, len(recv_hp))
    tokens = [c.stateless_reset_token for c in (quic._peer_cid, *quic._peer_cid_available)
              if c.stateless_reset_token]
    tokens = tokens[:MAX_RESET_TOKENS]
    keys.n_reset_tokens = len(tokens)
    for i, token in enumerate(tokens):
        ctypes.memmove(keys.reset_tokens[i], token, 16)
    keys.next_pn = quic._packet_number
    return snap, keys
