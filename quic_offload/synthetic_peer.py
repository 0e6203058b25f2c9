"""A synthetic QUIC peer for engine-level tests and benchmarks.

It parks hand-made connections in an embedded engine and plays the other end of each with
its own key table over real UDP sockets on loopback.  No aioquic here: the peer seals
exactly the packets a test wants (out of order, duplicated, PING-only, ACK-only, a
CONNECTION_CLOSE), so the programs' decisions can be pinned one by one, and a benchmark can
measure the engine alone, without an aioquic stack on either side.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import time
from dataclasses import dataclass, field

from quic_offload.crypto import KeyTable, ReceivedPacket
from quic_offload.embedded import EmbeddedOffload, start_embedded_offload
from quic_offload.offload_abi import (
    MAX_CONNS,
    NO_PN,
    QoCid,
    QoKeys,
    QoRange,
    QoSnapshot,
    WakeReason,
)
from quic_offload.offload_client import OffloadGeometry, ParkedConnection
from uring.user_structs import encode_sockaddr

SUITE_SECRET_LEN = {0x1301: 32, 0x1302: 48, 0x1303: 32}


@dataclass
class SyntheticConnection:
    """One parked connection and the peer's view of it."""

    handle: ParkedConnection
    our_cid: bytes
    peer_cid: bytes
    peer_sock: socket.socket
    peer_slot: int
    peer_pn: int = 0
    largest_from_engine: int = -1
    received: list[ReceivedPacket] = field(default_factory=list)
    wakes: list[tuple[WakeReason, bytes | None]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


class SyntheticHarness:
    """An embedded engine, its offloaded server socket and a key table for the peers."""

    def __init__(self, backend: str, mode: str = "translator", tick: float = 0.01,
                 wait_batch: float | None = None) -> None:
        geometry = OffloadGeometry(tick=tick) if wait_batch is None else \
            OffloadGeometry(tick=tick, wait_batch=wait_batch)
        self.offload: EmbeddedOffload = start_embedded_offload(
            geometry, backend=backend, mode=mode)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.handed_over: list[tuple[bytes, tuple]] = []
        self.offload.client.add_socket(self.sock.fileno(),
                                       lambda data, addr: self.handed_over.append((data, addr)))
        self.peer_keys = KeyTable(MAX_CONNS)
        self.conns: list[SyntheticConnection] = []
        self._peer_poll = select.epoll()
        self._watched: dict[int, SyntheticConnection] = {}

    @property
    def client(self):  # noqa: ANN201
        return self.offload.client

    def stats(self) -> dict:
        return self.offload.programs.stats().as_dict()

    def park(self, *, interval: float = 0.1, idle_timeout: float = 3.0,
             suite: int = 0x1301, next_pn: int = 10, largest_received: int = 5,
             unresponsive_after: int = 3, tokens: tuple[bytes, ...] = ()) -> SyntheticConnection:
        """Park a new connection; its peer gets a socket and the mirrored keys."""
        n = SUITE_SECRET_LEN[suite]
        send_secret, recv_secret = os.urandom(n), os.urandom(n)
        our_cid, peer_cid = os.urandom(8), os.urandom(8)
        peer_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer_sock.bind(("127.0.0.1", 0))
        peer_sock.settimeout(0.05)
        now = time.monotonic_ns()
        snap = QoSnapshot(sock_fd=self.sock.fileno(), role=1,
                          unresponsive_after=unresponsive_after, peer_ack_delay_exponent=3,
                          next_pn=next_pn, largest_acked=next_pn - 1,
                          largest_received=largest_received, largest_received_ns=now,
                          last_receive_ns=now, last_send_ns=now,
                          interval_ns=int(interval * 1e9), idle_timeout_ns=int(idle_timeout * 1e9),
                          pto_ns=int(0.05e9), max_ack_delay_ns=int(0.025e9))
        snap.host_cid = QoCid.of(our_cid)
        snap.dcid = QoCid.of(peer_cid)
        snap.n_ranges = 1
        snap.ranges[0] = QoRange(largest_received, largest_received)
        addr = encode_sockaddr(peer_sock.getsockname())
        snap.peer_addr_len = len(addr)
        ctypes.memmove(snap.peer_addr, addr, len(addr))
        keys = QoKeys(suite=suite, secret_len=n, version=1, next_pn=next_pn)
        ctypes.memmove(keys.send_secret, send_secret, n)
        ctypes.memmove(keys.recv_secret, recv_secret, n)
        keys.n_reset_tokens = len(tokens)
        for i, token in enumerate(tokens):
            ctypes.memmove(keys.reset_tokens[i], token, 16)
        peer_slot = len(self.conns)
        self.peer_keys.install(peer_slot, suite, recv_secret, send_secret)
        handle = self.client.park(snap, keys)
        conn = SyntheticConnection(handle, our_cid, peer_cid, peer_sock, peer_slot,
                                   peer_pn=largest_received + 1)
        handle.on_parked = lambda h, status: conn.statuses.append(status)
        handle.on_wake = lambda h, reason, data, addr: conn.wakes.append((reason, data))
        self.conns.append(conn)
        return conn

    def poll(self, duration: float, *, answer: bool = False) -> None:
        """Run the application side (CQ 0) and every peer for a while; with ``answer`` the
        peers ACK each ack-eliciting packet they get, as a live peer does."""
        by_fd = self._watch_peers()
        end = time.monotonic() + duration
        while (left := end - time.monotonic()) > 0:
            self.client.poll()
            # only the peers with something to read (touching every socket each pass would
            # make this thread, not the engine, the busy one)
            for fd, _ in self._peer_poll.poll(min(left, 0.005)):
                conn = by_fd[fd]
                for packet in self.receive(conn, block=False):
                    if answer and packet.ack_eliciting:
                        pn = packet.packet_number
                        self.send(conn, ping=False, ack_of=[(pn, pn)])
        self.client.poll()

    def _watch_peers(self) -> dict[int, SyntheticConnection]:
        """The peer sockets by descriptor, each registered with the peers' epoll once."""
        for conn in self.conns[len(self._watched):]:
            self._peer_poll.register(conn.peer_sock.fileno(), select.EPOLLIN)
            self._watched[conn.peer_sock.fileno()] = conn
        return self._watched

    def receive(self, conn: SyntheticConnection, block: bool = True) -> list[ReceivedPacket]:
        """Open whatever the engine sent to ``conn``'s peer."""
        got = []
        conn.peer_sock.settimeout(0.2 if block else 0.0)
        while True:
            try:
                data, _ = conn.peer_sock.recvfrom(2048)
            except (BlockingIOError, TimeoutError):
                break
            opened = self.peer_keys.open_datagram(conn.peer_slot, data, dcid_len=8,
                                                  largest_pn=conn.largest_from_engine)
            conn.largest_from_engine = max(conn.largest_from_engine, opened.packet_number)
            conn.received.append(opened)
            got.append(opened)
            conn.peer_sock.settimeout(0.0)
        return got

    def seal(self, conn: SyntheticConnection, *, pn: int | None = None, ping: bool = True,
             ack_of: list[tuple[int, int]] | None = None,
             raw_payload: bytes | None = None) -> bytes:
        """A packet from the peer (PING, ACK, PING+ACK or a raw frame payload).  The peer's
        key table refuses to reuse packet numbers, so seal in ascending order and
        :meth:`deliver` in any order."""
        if pn is None:
            pn = conn.peer_pn
        conn.peer_pn = max(conn.peer_pn, pn + 1)
        keys = self.peer_keys
        if raw_payload is not None:
            header = bytes([0x40 | 0x03]) + conn.our_cid + pn.to_bytes(4, "big")
            return keys.seal(conn.peer_slot, header, raw_payload, pn)
        if ack_of:
            return keys.seal_ack(conn.peer_slot, conn.our_cid, pn, None, ack_of, 0, ping=ping)
        return keys.seal_ping(conn.peer_slot, conn.our_cid, pn, None)

    def deliver(self, conn: SyntheticConnection, packet: bytes,
                from_sock: socket.socket | None = None) -> None:
        (from_sock or conn.peer_sock).sendto(packet, self.sock.getsockname())

    def send(self, conn: SyntheticConnection, **kwargs) -> bytes:  # noqa: ANN003
        """Seal and deliver in one step (``from_sock`` goes to :meth:`deliver`)."""
        from_sock = kwargs.pop("from_sock", None)
        packet = self.seal(conn, **kwargs)
        self.deliver(conn, packet, from_sock)
        return packet

    def engine_conn(self, conn: SyntheticConnection):  # noqa: ANN201
        return self.offload.programs.conn(conn.handle.slot)

    def close(self) -> None:
        self._peer_poll.close()
        self.offload.close()
        self.sock.close()
        for conn in self.conns:
            conn.peer_sock.close()


def ranges_of(state) -> list[tuple[int, int]]:  # noqa: ANN001
    return [(state.tx.ranges[i].smallest, state.tx.ranges[i].largest)
            for i in range(state.tx.n_ranges)]


__all__ = ["NO_PN", "SyntheticConnection", "SyntheticHarness", "ranges_of"]
