"""The crypto-shim helpers: how BPF programs reach QUIC packet protection.

eBPF cannot do AEAD, so the programs call these helpers by key *slot*; the keys themselves
live in a :class:`~quic_offload.crypto.KeyTable` on the engine side and never enter memory a
program can read.  The helpers also assemble packets, since crypto and framing are one step
(decisions -- when to PING, what to ACK, when to wake -- stay in the programs).

:class:`ShimEnv` extends the engine's helper environment with the implementations;
:func:`offload_helpers` is the ``quic_offload`` program type's registry (the ring helpers
plus these), which the offload objects are loaded with.  IDs and argument layouts are those
of ``bpf_programs/include/quic_offload.h``.

Every implementation turns bad arguments into a negative errno and never raises: a program
can pass anything.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import struct
from typing import TYPE_CHECKING, Any

from quic_offload.crypto import KeyTable, RxStatus
from quic_offload.crypto.errors import PacketNumberReuseError, SlotError
from quic_offload.offload_abi import (
    HELPER_CHECK_RESET,
    HELPER_KEY_DISCARD_PREVIOUS,
    HELPER_KEY_EXPORT,
    HELPER_KEY_INSTALL,
    HELPER_KEY_WIPE,
    HELPER_MATCH_RESET,
    HELPER_OPEN,
    HELPER_SEAL,
    MAX_CONNS,
    MAX_PEER_ACK_RANGES,
    MAX_RANGES,
    NO_PN,
    SEAL_ACK,
    SEAL_PING,
    SEAL_PING_ACK,
    SEND_SLOT_PACKET_MAX,
    SOCKADDR_MAX,
    QoKeys,
    QoRx,
    QoSendSlot,
    QoTx,
    RxVerdict,
    field_struct,
    offset_of,
)
from quic_offload.packet.stateless_reset import is_stateless_reset
from uring.bpf.helpers import Arg, HelperRegistry, HelperSpec, io_uring_helpers
from uring.bpf_env import EngineBpfEnv

if TYPE_CHECKING:
    from uring.engine import Engine

log = logging.getLogger(__name__)

PROGRAM_TYPE = "quic_offload"

_EINVAL, _EFAULT, _ENOENT, _EBUSY, _EEXIST = (
    errno.EINVAL, errno.EFAULT, errno.ENOENT, errno.EBUSY, errno.EEXIST,
)

# --- argument layouts, from the ctypes mirror of the header ---------------------------------

_TX_HEAD = field_struct(
    QoTx, "pn", "largest_acked", "ack_delay_us", "spin", "n_ranges", "ack_delay_exponent",
    "pad0", "peer_addr_len",
)
_TX_DCID = offset_of(QoTx, "dcid")
_TX_ADDR = offset_of(QoTx, "peer_addr")
_TX_RANGES = offset_of(QoTx, "ranges")
_TX_SIZE = ctypes.sizeof(QoTx)
_RANGES = [struct.Struct(f"<{2 * n}Q") for n in range(MAX_RANGES + 1)]
_RANGE1 = struct.Struct("<QQ")

_SLOT_SIZE = ctypes.sizeof(QoSendSlot)
_SLOT_NAMELEN = offset_of(QoSendSlot, "msg_namelen")
_SLOT_IOV_LEN = offset_of(QoSendSlot, "iov_len")
_SLOT_NAME = offset_of(QoSendSlot, "name")
_SLOT_PACKET = offset_of(QoSendSlot, "packet")
_U32 = struct.Struct("<I")
_IOV_LEN_AND_NAME = struct.Struct(f"<Q{SOCKADDR_MAX}s")
assert _SLOT_NAME == _SLOT_IOV_LEN + 8

_RX_IN = field_struct(QoRx, "largest_received", "dcid_len")
_RX_EXP = offset_of(QoRx, "peer_ack_delay_exponent")
_RX_OUT_OFF = offset_of(QoRx, "status")
#: status, pn, ack_largest, ack_delay_us, ack_eliciting, has_ack, key_updated, spin,
#: key_phase, n_ack_ranges (the exponent input byte and pad are left alone)
_RX_OUT = struct.Struct("<I QQQ BBBBBB")
_RX_ACK_RANGES = offset_of(QoRx, "ack_ranges")
_ACK_RANGES = [struct.Struct(f"<{2 * n}Q") for n in range(MAX_PEER_ACK_RANGES + 1)]
assert _RX_OUT_OFF + _RX_OUT.size == _RX_EXP

_KEYS_SIZE = ctypes.sizeof(QoKeys)

#: RxStatus of the key table -> the header's QO_RX_* verdicts.
_VERDICT = {
    RxStatus.CONTROL_ONLY: RxVerdict.CONTROL_ONLY,
    RxStatus.CONNECTION_CLOSE: RxVerdict.CLOSE,
    RxStatus.OTHER_FRAMES: RxVerdict.OTHER,
    RxStatus.PROTOCOL_ERROR: RxVerdict.PROTOCOL_ERROR,
    RxStatus.UNDECRYPTABLE: RxVerdict.UNDECRYPTABLE,
    RxStatus.LONG_HEADER: RxVerdict.LONG_HEADER,
    RxStatus.DROPPED: RxVerdict.DROPPED,
}


class ShimEnv(EngineBpfEnv):
    """The engine's helper environment plus the crypto shim (one per engine)."""

    def __init__(self, engine: Engine, *, capacity: int = MAX_CONNS,
                 warm_slots: int | None = 1024) -> None:
        super().__init__(engine)
        self.keys = KeyTable(capacity, warm_slots=warm_slots)
        self.reset_tokens: list[tuple[bytes, ...]] = [()] * capacity
        #: token -> slot, to find the connection a stateless reset is meant for
        self._token_slots: dict[bytes, int] = {}
        self._packet_views: dict[int, memoryview] = {}

    # -- helpers ------------------------------------------------------------------------------

    def quic_key_install(self, slot: int, keys_addr: int, length: int) -> int:
        """1000: install the key block at ``keys_addr`` into ``slot``, then wipe the block."""
        mem = self.mem
        if length != _KEYS_SIZE or not mem.contains(keys_addr, _KEYS_SIZE) or not keys_addr:
            return -_EFAULT if length == _KEYS_SIZE else -_EINVAL
        if not 0 <= slot < len(self.reset_tokens):
            return -_EINVAL
        off = keys_addr - mem.base
        block = QoKeys.from_buffer_copy(mem.view[off:off + _KEYS_SIZE])
        # the block has done its job: no copy of the secrets stays in user memory
        mem.view[off:off + _KEYS_SIZE] = bytes(_KEYS_SIZE)
        try:
            n = block.secret_len
            hp = block.hp_len
            if n > len(block.send_secret) or hp > len(block.send_hp):
                return -_EINVAL
            tokens = block.n_reset_tokens
            if tokens > len(block.reset_tokens):
                return -_EINVAL
            self.keys.install(
                slot, block.suite, bytes(block.send_secret)[:n], bytes(block.recv_secret)[:n],
                block.key_phase, version=block.version,
                send_hp_key=bytes(block.send_hp)[:hp] if hp else None,
                recv_hp_key=bytes(block.recv_hp)[:hp] if hp else None,
                generation=min(block.send_generation, block.recv_generation),
                next_packet_number=block.next_pn,
            )
            self._set_tokens(slot, tuple(bytes(t) for t in block.reset_tokens[:tokens]))
        except SlotError as exc:
            log.info("event=key_install_refused slot=%d reason=%s", slot, type(exc).__name__)
            return -_EBUSY if "already" in str(exc) else -_EINVAL
        except ValueError as exc:
            log.info("event=key_install_refused slot=%d reason=%s", slot, type(exc).__name__)
            return -_EINVAL
        finally:
            ctypes.memset(ctypes.addressof(block), 0, _KEYS_SIZE)
        return 0

    def quic_seal(self, slot: int, tx: bytes, send_slot: int, kind: int) -> int:
        """1001: build and seal a PING / ACK / PING+ACK into the send slot at ``send_slot``;
        returns the packet length.  (Hot path: one call per keepalive and per ACK.)"""
        mem = self.mem
        off = send_slot - mem.base
        if off < 0 or off + _SLOT_SIZE > mem.size or not send_slot:
            return -_EFAULT
        if len(tx) < _TX_SIZE:
            return -_EINVAL
        pn, largest_acked, ack_delay_us, spin, n_ranges, exponent, _, addr_len = (
            _TX_HEAD.unpack_from(tx))
        dcid_len = tx[_TX_DCID]
        if dcid_len > 20 or addr_len > 28 or n_ranges > MAX_RANGES:
            return -_EINVAL
        dcid = tx[_TX_DCID + 1:_TX_DCID + 1 + dcid_len]
        acked = None if largest_acked == NO_PN else largest_acked
        out = self._packet_views.get(off)
        if out is None:  # one view per send slot, kept: slots never move
            out = self._packet_views[off] = mem.view[off + _SLOT_PACKET:
                                                     off + _SLOT_PACKET + SEND_SLOT_PACKET_MAX]
        try:
            if kind == SEAL_PING:
                length = self.keys.seal_ping(slot, dcid, pn, acked, spin != 0, 0, out)
            elif kind in (SEAL_ACK, SEAL_PING_ACK):
                if n_ranges == 1:
                    ranges: Any = (_RANGE1.unpack_from(tx, _TX_RANGES),)
                elif n_ranges:
                    flat = _RANGES[n_ranges].unpack_from(tx, _TX_RANGES)
                    ranges = list(zip(flat[::2], flat[1::2], strict=True))
                else:
                    return -_EINVAL
                length = self.keys.seal_ack(slot, dcid, pn, acked, ranges, ack_delay_us,
                                            exponent, kind == SEAL_PING_ACK, spin != 0,
                                            None, 64, 0, out)
            else:
                return -_EINVAL
        except PacketNumberReuseError:
            return -_EEXIST
        except SlotError:
            return -_ENOENT
        except (ValueError, IndexError):
            return -_EINVAL
        view = mem.view
        _U32.pack_into(view, off + _SLOT_NAMELEN, addr_len)
        # iov_len and the address are adjacent in the slot: one store for both
        _IOV_LEN_AND_NAME.pack_into(view, off + _SLOT_IOV_LEN, length,
                                    tx[_TX_ADDR:_TX_ADDR + SOCKADDR_MAX])
        return length

    def quic_open(self, slot: int, pkt: int, length: int, rx: memoryview) -> int:
        """1002: open the datagram at ``pkt`` and fill ``rx`` with the verdict."""
        mem = self.mem
        off = pkt - mem.base
        if off < 0 or length < 0 or off + length > mem.size or not pkt:
            return -_EFAULT
        if len(rx) < _RX_ACK_RANGES + 16 * MAX_PEER_ACK_RANGES:
            return -_EINVAL
        largest, dcid_len = _RX_IN.unpack_from(rx)
        if dcid_len > 20:
            return -_EINVAL
        datagram = mem.view[off:off + length]
        try:
            got = self.keys.open_datagram(slot, datagram, dcid_len,
                                          -1 if largest == NO_PN else largest,
                                          min(rx[_RX_EXP], 20))
        except SlotError:
            return -_ENOENT
        finally:
            datagram.release()
        ack = got.ack
        if ack is None:
            _RX_OUT.pack_into(rx, _RX_OUT_OFF, _VERDICT[got.status], max(got.packet_number, 0),
                              0, 0, got.ack_eliciting, 0, got.key_updated, got.spin,
                              max(got.key_phase, 0), 0)
            return 0
        ranges = ack.ranges[:MAX_PEER_ACK_RANGES]
        _RX_OUT.pack_into(rx, _RX_OUT_OFF, _VERDICT[got.status], got.packet_number,
                          ranges[0][1], got.ack_delay_us, got.ack_eliciting, 1,
                          got.key_updated, got.spin, got.key_phase, len(ranges))
        _ACK_RANGES[len(ranges)].pack_into(rx, _RX_ACK_RANGES, *(v for r in ranges for v in r))
        return 0

    def quic_check_reset(self, slot: int, pkt: int, length: int) -> int:
        """1003: 1 when the datagram ends in one of the slot's stateless-reset tokens."""
        mem = self.mem
        off = pkt - mem.base
        if off < 0 or length < 0 or off + length > mem.size or not pkt:
            return -_EFAULT
        if not 0 <= slot < len(self.reset_tokens):
            return -_EINVAL
        tokens = self.reset_tokens[slot]
        if not tokens:
            return 0
        return int(is_stateless_reset(mem.view[off:off + length], tokens))

    def quic_match_reset(self, pkt: int, length: int) -> int:
        """1007: slot + 1 of the connection whose reset token ends the datagram, else 0."""
        mem = self.mem
        off = pkt - mem.base
        if off < 0 or length < 0 or off + length > mem.size or not pkt:
            return -_EFAULT
        if length < 21 or not self._token_slots:
            return 0
        tail = bytes(mem.view[off + length - 16:off + length])
        slot = self._token_slots.get(tail)
        if slot is None:
            return 0
        # the dict lookup found a candidate; confirm in constant time like every check
        datagram = mem.view[off:off + length]
        try:
            return slot + 1 if is_stateless_reset(datagram, self.reset_tokens[slot]) else 0
        finally:
            datagram.release()

    def _set_tokens(self, slot: int, tokens: tuple[bytes, ...]) -> None:
        for token in self.reset_tokens[slot]:
            if self._token_slots.get(token) == slot:
                del self._token_slots[token]
        self.reset_tokens[slot] = tokens
        for token in tokens:
            self._token_slots[token] = slot

    def quic_key_export(self, slot: int, keys_addr: int, length: int) -> int:
        """1004: write the slot's current keys into the key block at ``keys_addr``."""
        mem = self.mem
        if length != _KEYS_SIZE:
            return -_EINVAL
        if not mem.contains(keys_addr, _KEYS_SIZE) or not keys_addr:
            return -_EFAULT
        try:
            exported = self.keys.export(slot)
        except SlotError:
            return -_ENOENT
        block = QoKeys()
        try:
            block.suite = exported.suite
            block.version = exported.version
            block.key_phase = exported.recv_key_phase
            block.send_generation = exported.send_generation
            block.recv_generation = exported.recv_generation
            block.secret_len = len(exported.send_secret)
            block.hp_len = len(exported.send_hp_key)
            ctypes.memmove(block.send_secret, exported.send_secret, block.secret_len)
            ctypes.memmove(block.recv_secret, exported.recv_secret, block.secret_len)
            ctypes.memmove(block.send_hp, exported.send_hp_key, block.hp_len)
            ctypes.memmove(block.recv_hp, exported.recv_hp_key, block.hp_len)
            block.next_pn = exported.next_packet_number
            off = keys_addr - mem.base
            mem.view[off:off + _KEYS_SIZE] = bytes(block)
        finally:
            ctypes.memset(ctypes.addressof(block), 0, _KEYS_SIZE)
        return 0

    def quic_key_wipe(self, slot: int) -> int:
        """1005: erase the slot's keys and reset tokens."""
        if not 0 <= slot < len(self.reset_tokens):
            return -_EINVAL
        self._set_tokens(slot, ())
        return 0 if self.keys.wipe(slot) else -_ENOENT

    def quic_key_discard_previous(self, slot: int) -> int:
        """1006: forget the previous key phase's receive keys."""
        try:
            self.keys.discard_previous_keys(slot)
        except SlotError:
            return -_ENOENT
        return 0


_A = Arg.ANYTHING


def offload_helpers() -> HelperRegistry:
    """The ``quic_offload`` program type: the io_uring helpers plus the crypto shim."""
    return io_uring_helpers().extended(
        PROGRAM_TYPE,
        HelperSpec(HELPER_KEY_INSTALL, "bpf_quic_key_install", (_A, _A, _A),
                   ShimEnv.quic_key_install),
        HelperSpec(HELPER_SEAL, "bpf_quic_seal", (_A, Arg.MEM, Arg.SIZE, _A, _A),
                   ShimEnv.quic_seal),
        HelperSpec(HELPER_OPEN, "bpf_quic_open", (_A, _A, _A, Arg.MEM_WRITE, Arg.SIZE),
                   ShimEnv.quic_open),
        HelperSpec(HELPER_CHECK_RESET, "bpf_quic_check_reset", (_A, _A, _A),
                   ShimEnv.quic_check_reset),
        HelperSpec(HELPER_KEY_EXPORT, "bpf_quic_key_export", (_A, _A, _A),
                   ShimEnv.quic_key_export),
        HelperSpec(HELPER_KEY_WIPE, "bpf_quic_key_wipe", (_A,), ShimEnv.quic_key_wipe),
        HelperSpec(HELPER_MATCH_RESET, "bpf_quic_match_reset", (_A, _A),
                   ShimEnv.quic_match_reset),
        HelperSpec(HELPER_KEY_DISCARD_PREVIOUS, "bpf_quic_key_discard_previous", (_A,),
                   ShimEnv.quic_key_discard_previous),
    )
