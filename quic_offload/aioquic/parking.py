"""Park and resume one aioquic connection, without changing the application's protocol class.

A :class:`ParkingController` attaches to a :class:`~aioquic.asyncio.QuicConnectionProtocol`
and takes over two of its methods:

* ``datagram_received`` -- while the connection is active it passes through (and counts as
  activity); while it is parked or on its way in or out, datagrams are queued and fed to
  aioquic after the engine's state has been folded back in;
* ``transmit`` -- a send while parked (a stream write, ``ping()``, a close) would use a stale
  packet number, so it is held and becomes a reason to resume.

Life cycle: ``active`` --(idle for ``park_after`` and quiescent)--> ``parking`` (adopt in
flight) --> ``parked`` --(wake, or a local send)--> ``resuming`` (reclaim in flight) -->
``active``.  While parked, the protocol has no timer and the loop never runs for it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol
from aioquic.quic import events
from aioquic.quic.packet import QuicErrorCode

from quic_offload.aioquic.key_capture import FirstSecrets
from quic_offload.aioquic.policy import OffloadPolicy
from quic_offload.aioquic.quiescence import park_blockers
from quic_offload.aioquic.runtime import OffloadRuntime
from quic_offload.aioquic.state_export import ExportError, export_snapshot
from quic_offload.aioquic.state_import import import_writeback
from quic_offload.offload_abi import QoKeys, QoWriteback, WakeReason
from quic_offload.offload_client import OffloadError, ParkedConnection

log = logging.getLogger(__name__)

#: While a connection is not quiescent, check again after this long (seconds) at most.
_RETRY_AFTER = 1.0


class ParkingController:
    """Parks ``protocol``'s connection in the engine when idle, resumes it when needed."""

    def __init__(self, runtime: OffloadRuntime, protocol: QuicConnectionProtocol,
                 sock: socket.socket, policy: OffloadPolicy, first_secrets: FirstSecrets) -> None:
        self.runtime = runtime
        self.protocol = protocol
        self.quic = protocol._quic
        self.policy = policy
        self.first_secrets = first_secrets
        self._sock_fd = sock.fileno()
        self._sock_family = sock.family
        self._loop = runtime.loop
        self.state = "active"
        self.handle: ParkedConnection | None = None
        self.parks = 0
        self.resumes = 0
        self.last_wake: WakeReason | None = None
        #: Calls the event loop made into this connection while the engine held it (a
        #: datagram that reached the protocol): the "app wake-ups" parking exists to avoid.
        #: Wakes the engine posts on purpose are not counted.
        self.events_while_parked = 0
        #: Sends the application itself made while parked (each resumes the connection).
        self.local_sends_while_parked = 0
        self.last_writeback: QoWriteback | None = None
        self.on_state_change: Callable[[ParkingController, str], None] | None = None
        self._queue: list[tuple[bytes, Any]] = []
        self._transmit_held = False
        self._refusal_logged = False
        self._last_activity = self._loop.time()
        self._check_handle = None
        self._original_datagram_received = protocol.datagram_received
        self._original_transmit = protocol.transmit
        protocol.datagram_received = self._datagram_received  # type: ignore[method-assign]
        protocol.transmit = self._transmit  # type: ignore[method-assign]
        protocol._parking = self  # type: ignore[attr-defined]
        self._schedule_check(policy.park_after)

    # -- the protocol's two entry points ------------------------------------------------------

    def _datagram_received(self, data: bytes | str, addr: Any) -> None:
        if self.state == "active":
            self._last_activity = self._loop.time()
            self._original_datagram_received(data, addr)
            return
        self._queue.append((data, addr))  # type: ignore[arg-type]
        self._count_parked_event()
        if self.state == "parked":
            self.resume("datagram reached the application")

    def _transmit(self) -> None:
        if self.state == "active":
            self._last_activity = self._loop.time()
            self._original_transmit()
            return
        self._transmit_held = True
        if self.state == "parked":
            self.local_sends_while_parked += 1
            self.runtime.counters["local_sends_while_parked"] += 1
            self.resume("local send")

    def _count_parked_event(self) -> None:
        if self.state == "parked":
            self.events_while_parked += 1
            self.runtime.counters["events_while_parked"] += 1

    # -- parking ------------------------------------------------------------------------------

    def _schedule_check(self, delay: float) -> None:
        if self._check_handle is not None:
            self._check_handle.cancel()
        self._check_handle = self._loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        self._check_handle = None
        if self.state != "active" or self.runtime.closed:
            return
        idle_for = self._loop.time() - self._last_activity
        if idle_for < self.policy.park_after:
            self._schedule_check(self.policy.park_after - idle_for)
            return
        blockers = park_blockers(self.quic)
        if blockers:
            self.runtime.counters["park_blocked"] += 1
            log.debug("event=park_deferred reasons=%r", blockers)
            self._schedule_check(min(self.policy.park_after, _RETRY_AFTER) or _RETRY_AFTER)
            return
        if not self.park() and self.state == "active":
            # refused on the way in (no free slot, export failed): try again later, or the
            # connection would stay with the application until its own traffic came back
            self.runtime.counters["park_blocked"] += 1
            self._schedule_check(_RETRY_AFTER)

    def park(self) -> bool:
        """Hand the connection to the engine now (if it is quiescent); True if requested."""
        if self.state != "active":
            return False
        blockers = park_blockers(self.quic)
        if blockers:
            log.info("event=park_refused reasons=%r", blockers)
            return False
        try:
            snapshot, keys = export_snapshot(
                self.quic, sock_family=self._sock_family, sock_fd=self._sock_fd,
                policy=self.policy, clock=self.runtime.clock, first_secrets=self.first_secrets)
        except ExportError as exc:
            self._log_refusal(exc)
            return False
        try:
            handle = self.runtime.client.park(snapshot, keys)
        except OffloadError as exc:
            self._log_refusal(exc)
            return False
        # from here on the engine owns the 1-RTT packet numbers: aioquic's timers must not
        # fire (its idle deadline would silently kill the connection)
        protocol = self.protocol
        if protocol._timer is not None:
            protocol._timer.cancel()
            protocol._timer = None
            protocol._timer_at = None
        if protocol._transmit_task is not None:
            protocol._transmit_task.cancel()
            protocol._transmit_task = None
        if self._check_handle is not None:
            self._check_handle.cancel()
            self._check_handle = None
        handle.on_parked = self._on_parked
        handle.on_wake = self._on_wake
        handle.on_reclaimed = self._on_reclaimed
        handle.context = self
        self.handle = handle
        self._set_state("parking")
        return True

    def _log_refusal(self, exc: Exception) -> None:
        """Said once per connection at warning level, then at debug: a refused park is
        retried every second, and a log line per retry would bury everything else."""
        log.log(logging.DEBUG if self._refusal_logged else logging.WARNING,
                "event=park_refused reason=%r", str(exc))
        self._refusal_logged = True

    def _on_parked(self, handle: ParkedConnection, status: int) -> None:
        if status != 0:
            self.runtime.counters["park_refused"] += 1
            log.warning("event=park_refused_by_engine status=%d", status)
            self.handle = None
            self._set_state("active")
            self._after_resume()
            return
        self.parks += 1
        self.runtime.counters["parks"] += 1
        self._set_state("parked")
        if self._queue or self._transmit_held:
            self.resume("traffic while parking")

    # -- resuming -----------------------------------------------------------------------------

    def resume(self, why: str = "application") -> None:
        """Ask the engine for the connection back (no-op unless parked)."""
        if self.state != "parked" or self.handle is None:
            return
        log.debug("event=resume_requested why=%r", why)
        self._set_state("resuming")
        self.runtime.client.reclaim(self.handle)

    def _on_wake(self, handle: ParkedConnection, reason: WakeReason, data: bytes | None,
                 addr: Any) -> None:
        self.last_wake = reason
        self.runtime.count_wake(reason.name)
        if data is not None:
            self._queue.append((data, addr))
        self.resume(reason.name)

    def _on_reclaimed(self, handle: ParkedConnection, writeback: QoWriteback,
                      keys: QoKeys) -> None:
        self.handle = None
        self.last_writeback = writeback
        try:
            import_writeback(self.quic, writeback, keys, self.runtime.clock)
        except ValueError as exc:
            log.error("event=resume_failed reason=%r", str(exc))
        self.resumes += 1
        self.runtime.counters["resumes"] += 1
        self._set_state("active")
        if writeback.wake_reason == WakeReason.STATELESS_RESET:
            self._enter_draining("stateless reset")
        self._after_resume()

    def _after_resume(self) -> None:
        queue, self._queue = self._queue, []
        self._transmit_held = False
        for data, addr in queue:
            self._original_datagram_received(data, addr)
        # re-arms aioquic's timer (it only does so while the handle is None) and sends
        # whatever the application queued meanwhile
        self._original_transmit()
        self._last_activity = self._loop.time()
        self._schedule_check(self.policy.park_after)

    def _enter_draining(self, reason: str) -> None:
        """RFC 9000 §10.3.1: after a stateless reset, send nothing more and close."""
        quic = self.quic
        if quic._close_event is None:
            quic._close_event = events.ConnectionTerminated(
                error_code=QuicErrorCode.NO_ERROR, frame_type=None, reason_phrase=reason)
            quic._close_begin(is_initiator=False, now=self._loop.time())

    def _set_state(self, state: str) -> None:
        self.state = state
        if self.on_state_change is not None:
            self.on_state_change(self, state)


def controller_of(protocol: QuicConnectionProtocol) -> ParkingController | None:
    """The controller attached to ``protocol``, if it is offloaded."""
    return getattr(protocol, "_parking", None)
