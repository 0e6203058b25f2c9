"""How far any pure-Python keepalive can go: the bare round trip against aioquic's.

The offload's CPU goal is stated as a ratio to aioquic.  This benchmark measures what that
ratio can be at best for code running in this interpreter, by taking everything away that
is not strictly needed for one keepalive round trip:

* **aioquic** -- the client side of an aioquic 1.7.2 connection, exactly the calls its
  asyncio adapter makes: ``send_ping``, ``datagrams_to_send`` and ``sendto``; then
  ``recvfrom``, ``receive_datagram`` of the peer's ACK, the events, ``get_timer`` and
  ``datagrams_to_send`` again.  The server end is an in-process aioquic connection (not
  timed); its clock is virtual, so ACK delay and pacing never stall the loop.
* **bare Python** -- the same round trip with nothing but this project's fastest pieces:
  ``KeyTable.seal_ping`` + ``sendto``, then ``recvfrom`` + ``KeyTable.open_datagram`` of the
  ACK.  No engine, no BPF policy, no timers, no bookkeeping: a floor, not an implementation.

Both run over real UDP sockets on 127.0.0.1, in this thread, timed with the thread's CPU
clock around the timed side only.  Each is measured twice, side by side in one run:

* **back to back** -- round trips one after the other, the thread never sleeps;
* **idle between** -- the thread sleeps ``--gap`` (1 ms) between sending the PING and
  reading the ACK, as a keepalive engine does (a PING, then nothing for a while).  On a
  virtual machine a thread that slept pays for it: caches, branch predictors and the CPU's
  frequency have moved on, and that cost lands on both sides.

It prints microseconds per round trip and the ratio aioquic / bare Python.  If the ratio is
below the project's goal (10x) even here, no pure-Python implementation with any policy on
top can reach the goal on this machine.  Bounded: a fixed number of round trips per
section; loopback only.

    python bench/bench_python_floor.py [--trips 3000] [--repeat 3] [--gap 0.001]
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from quic_offload.crypto import KeyTable
from quic_offload.self_signed import write_self_signed

DCID = bytes(range(8))


def udp_pair() -> tuple[socket.socket, socket.socket]:
    """Two blocking UDP sockets on 127.0.0.1 (a receive that never comes fails in 2 s)."""
    pair = []
    for _ in range(2):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2.0)
        pair.append(sock)
    return pair[0], pair[1]


class AioquicRoundTrip:
    """A connected aioquic client/server pair driven by a virtual clock."""

    def __init__(self, directory: Path) -> None:
        cert, key = write_self_signed(directory)
        server_conf = QuicConfiguration(is_client=False, alpn_protocols=["floor"])
        server_conf.load_cert_chain(cert, key)
        client_conf = QuicConfiguration(is_client=True, alpn_protocols=["floor"],
                                        verify_mode=0)
        self.client = QuicConnection(configuration=client_conf)
        self.server = QuicConnection(
            configuration=server_conf,
            original_destination_connection_id=self.client.original_destination_connection_id)
        self.csock, self.ssock = udp_pair()
        self.caddr, self.saddr = self.csock.getsockname(), self.ssock.getsockname()
        self.now = 1000.0
        self.client.connect(self.saddr, now=self.now)
        self._handshake()
        self.uid = 0

    def _handshake(self) -> None:
        client, server = self.client, self.server
        for _ in range(20):
            moved = False
            for data, _ in client.datagrams_to_send(now=self.now):
                server.receive_datagram(data, self.caddr, now=self.now)
                moved = True
            for data, _ in server.datagrams_to_send(now=self.now):
                client.receive_datagram(data, self.saddr, now=self.now)
                moved = True
            self.now += 0.1
            if not moved:
                break
        while client.next_event():
            pass
        while server.next_event():
            pass
        if not client._handshake_complete:  # noqa: SLF001 - a benchmark's sanity check
            raise RuntimeError("aioquic handshake did not complete in memory")

    def send(self) -> None:
        """Timed: the client PINGs."""
        self.now += 0.2
        self.uid += 1
        client = self.client
        client.send_ping(self.uid)
        for data, _ in client.datagrams_to_send(now=self.now):
            self.csock.sendto(data, self.saddr)

    def answer(self) -> None:
        """Not timed: the server reads the PING and ACKs it (past its ACK delay)."""
        self._take_in(self.server, self.ssock, self.caddr, send_at=self.now + 0.05)

    def receive(self) -> None:
        """Timed: the client takes the ACK in, as its asyncio protocol would."""
        self._take_in(self.client, self.csock, self.saddr, send_at=self.now)
        self.client.get_timer()

    def _take_in(self, conn: QuicConnection, sock: socket.socket, peer: tuple,
                 send_at: float) -> None:
        """One datagram in, its events out, then whatever the connection has to send."""
        data, _ = sock.recvfrom(2048)
        conn.receive_datagram(data, peer, now=self.now)
        while conn.next_event():
            pass
        for out, _ in conn.datagrams_to_send(now=send_at):
            sock.sendto(out, peer)

    def close(self) -> None:
        self.csock.close()
        self.ssock.close()


class BareRoundTrip:
    """Seal, send, receive, open: nothing else."""

    def __init__(self) -> None:
        send_secret, recv_secret = os.urandom(32), os.urandom(32)
        self.ours, self.peers = KeyTable(1), KeyTable(1)
        self.ours.install(0, "AES_128_GCM_SHA256", send_secret, recv_secret)
        self.peers.install(0, "AES_128_GCM_SHA256", recv_secret, send_secret)
        self.sock, self.peer_sock = udp_pair()
        self.addr, self.peer_addr = self.sock.getsockname(), self.peer_sock.getsockname()
        self.pn = 100
        self.peer_pn = 100
        self.largest_seen_by_peer = -1
        self.largest_seen = -1

    def send(self) -> None:
        self.pn += 1
        self.sock.sendto(self.ours.seal_ping(0, DCID, self.pn, None), self.peer_addr)

    def answer(self) -> None:
        data, _ = self.peer_sock.recvfrom(2048)
        got = self.peers.open_datagram(0, data, dcid_len=8,
                                       largest_pn=self.largest_seen_by_peer)
        pn = got.packet_number
        self.largest_seen_by_peer = pn
        self.peer_pn += 1
        ack = self.peers.seal_ack(0, DCID, self.peer_pn, None, [(pn, pn)], 0, ping=False)
        self.peer_sock.sendto(ack, self.addr)

    def receive(self) -> None:
        data, _ = self.sock.recvfrom(2048)
        got = self.ours.open_datagram(0, data, dcid_len=8, largest_pn=self.largest_seen)
        if not got.authenticated or got.ack is None:
            raise RuntimeError(f"the peer's ACK did not open: {got.status!r}")
        self.largest_seen = got.packet_number

    def close(self) -> None:
        self.sock.close()
        self.peer_sock.close()


def per_trip_us(side: AioquicRoundTrip | BareRoundTrip, trips: int, gap: float) -> float:
    """Thread CPU microseconds of the timed side per round trip."""
    clock = time.thread_time_ns
    sleep: Callable[[float], None] = time.sleep
    spent = 0
    for _ in range(trips):
        t0 = clock()
        side.send()
        spent += clock() - t0
        side.answer()
        if gap:
            sleep(gap)
        t0 = clock()
        side.receive()
        spent += clock() - t0
    return spent / trips / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=3000, help="round trips per section")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.001,
                        help="sleep between PING and ACK in the 'idle between' rows (s)")
    args = parser.parse_args()
    if not 100 <= args.trips <= 100_000 or not 1 <= args.repeat <= 20 \
            or not 0 < args.gap <= 0.05:
        parser.error("--trips 100..100000, --repeat 1..20, --gap 0..0.05 s")

    with tempfile.TemporaryDirectory() as directory:
        aioquic = AioquicRoundTrip(Path(directory))
        bare = BareRoundTrip()
        try:
            print(f"keepalive round trip, CPU of the pinging side (us), best of {args.repeat} "
                  f"x {args.trips} trips")
            print(f"{'':28s}{'aioquic':>10s}{'bare Python':>13s}{'ratio':>8s}")
            for label, gap, trips in (("back to back", 0.0, args.trips),
                                      (f"idle {args.gap * 1e3:g} ms between", args.gap,
                                       max(100, args.trips // 3))):
                best = {"aioquic": float("inf"), "bare": float("inf")}
                for _ in range(args.repeat):  # interleaved: both see the same machine
                    best["aioquic"] = min(best["aioquic"], per_trip_us(aioquic, trips, gap))
                    best["bare"] = min(best["bare"], per_trip_us(bare, trips, gap))
                ratio = best["aioquic"] / best["bare"]
                print(f"{label:28s}{best['aioquic']:10.1f}{best['bare']:13.1f}"
                      f"{ratio:7.1f}x")
        finally:
            aioquic.close()
            bare.close()
    print("bare Python is seal + sendto + recvfrom + open and nothing else: any keepalive "
          "written in this interpreter, with a policy on top, costs more.")


if __name__ == "__main__":
    main()
