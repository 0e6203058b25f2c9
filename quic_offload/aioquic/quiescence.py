"""Is an aioquic connection quiet enough to hand to the engine?

The engine only knows how to send PING/ACK and answer PING/ACK; anything else the
connection still has to do -- data or crypto frames waiting or unacknowledged, a close, a
key update, path validation, connection-ID work -- must finish in the application first.
:func:`park_blockers` lists what stands in the way, in words a log line can carry.
"""

from __future__ import annotations

from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.tls import Epoch


def park_blockers(quic: QuicConnection) -> list[str]:
    """Reasons ``quic`` cannot be parked now (empty: it can)."""
    reasons: list[str] = []
    if quic._state != QuicConnectionState.CONNECTED:
        reasons.append(f"state is {quic._state.name}")
        return reasons
    if not quic._handshake_confirmed:
        reasons.append("handshake not confirmed")
        return reasons
    if quic._close_pending or quic._close_event is not None:
        reasons.append("closing")
    if quic._events:
        reasons.append("events not yet delivered to the application")
    if any(space.ack_eliciting_in_flight for space in quic._loss.spaces):
        reasons.append("ack-eliciting packets in flight")
    if quic._ping_pending or quic._probe_pending:
        reasons.append("PING pending")
    if quic._datagrams_pending:
        reasons.append("DATAGRAM frames pending")
    if quic._handshake_done_pending or quic._streams_blocked_pending:
        reasons.append("control frames pending")
    if quic._retire_connection_ids or any(not cid.was_sent for cid in quic._host_cids):
        reasons.append("connection-ID frames pending")
    crypto = quic._cryptos.get(Epoch.ONE_RTT)
    if crypto is None or not crypto.send.is_valid() or not crypto.recv.is_valid():
        reasons.append("no 1-RTT keys")
    elif quic._key_update_pending or crypto._update_key_requested:
        reasons.append("key update in progress")
    elif crypto.send.key_phase != crypto.recv.key_phase:
        reasons.append("key phases differ")
    for stream in quic._crypto_streams.values():
        if not stream.sender.buffer_is_empty:
            reasons.append("CRYPTO data pending")
            break
    for stream in quic._streams.values():
        if not stream.sender.buffer_is_empty or stream.sender.reset_pending:
            reasons.append(f"stream {stream.stream_id} has data pending")
            break
    # the engine sends on the active path only: it must be validated, and no other path may
    # still want a probe, an answer to a challenge, or a validation deadline
    paths = quic._network_paths
    if not paths or not paths[0].is_validated:
        reasons.append("path validation in progress")
    elif any(path.remote_challenges or not path.is_validated for path in paths):
        reasons.append("path probing in progress")
    if quic._peer_cid.sequence_number is None:
        reasons.append("peer connection ID unknown")
    return reasons
