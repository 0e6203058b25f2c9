"""The offload programs' ABI in Python: the structs of ``bpf_programs/include/quic_offload.h``.

The C header is the contract the BPF programs are compiled against; this module mirrors it
with :mod:`ctypes` structures (which follow the same C layout rules) so the application side
can fill a park record, read a write-back, and so the crypto-shim helpers can read the
arguments the programs pass.  ``tests/offload/test_offload_abi_matches_header.py`` compiles
the header's offsets with clang and compares them with these classes.

Hot paths (the helpers) read single fields with :func:`field_struct`, a precompiled
:class:`struct.Struct` built from the same ctypes description, so there is one source of
truth for every offset.
"""

from __future__ import annotations

import ctypes
import enum
import struct
from typing import Any

# --------------------------------------------------------------------------------------------
# Constants (same names as the header, without the QO_ prefix)
# --------------------------------------------------------------------------------------------

CQ_APP = 0
CQ_TIMER = 1
CQ_RX = 2
CQ_SEND = 3
N_CQS = 4

TAG_SHIFT = 56
TAG_DATAGRAM = 0x80
TAG_WAKE = 0x81
VALUE_MASK = (1 << TAG_SHIFT) - 1

MAX_CONNS = 16384
MAX_CID_LEN = 20
MAX_RESET_TOKENS = 8
MAX_RANGES = 8
MAX_PEER_ACK_RANGES = 4
WHEEL_SLOTS = 4096
SECRET_MAX = 48
HP_KEY_MAX = 32
SOCKADDR_MAX = 28
SEND_SLOT_PACKET_MAX = 128
NO_PN = 0xFFFFFFFFFFFFFFFF

CONFIG_MAGIC = 0x31474643514F4651
SNAPSHOT_MAGIC = 0x31504E53514F4651
WRITEBACK_MAGIC = 0x31424B57514F4651

SEAL_PING = 1
SEAL_ACK = 2
SEAL_PING_ACK = 3

CONN_FREE = 0
CONN_PARKED = 1
CONN_WAKING = 2

#: Helper IDs of the ``quic_offload`` program type.
HELPER_KEY_INSTALL = 1000
HELPER_SEAL = 1001
HELPER_OPEN = 1002
HELPER_CHECK_RESET = 1003
HELPER_KEY_EXPORT = 1004
HELPER_KEY_WIPE = 1005
HELPER_KEY_DISCARD_PREVIOUS = 1006
HELPER_MATCH_RESET = 1007


class WakeReason(enum.IntEnum):
    """Why the engine gave a connection back (``res`` of a wake CQE on CQ 0)."""

    DATA = 1
    CLOSED = 2
    STATELESS_RESET = 3
    UNRESPONSIVE = 4
    PATH_CHANGE = 5
    KEY_UPDATE = 6
    RECLAIMED = 7
    ERROR = 8


class RxVerdict(enum.IntEnum):
    """``qo_rx.status``: what bpf_quic_open found in a datagram."""

    CONTROL_ONLY = 1
    CLOSE = 2
    OTHER = 3
    UNDECRYPTABLE = 4
    PROTOCOL_ERROR = 5
    LONG_HEADER = 6
    DROPPED = 7


# --------------------------------------------------------------------------------------------
# Structs
# --------------------------------------------------------------------------------------------

_u8, _u16, _u32, _u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64
_s32 = ctypes.c_int32


class _Struct(ctypes.LittleEndianStructure):
    """Base: byte conversion helpers and a repr that never shows byte arrays (keys)."""

    def to_bytes(self) -> bytes:
        return bytes(self)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Any:
        return cls.from_buffer_copy(bytes(data[: ctypes.sizeof(cls)]))

    def __repr__(self) -> str:
        parts = []
        for name, ctype in self._fields_:
            if name.startswith("pad") or name == "reserved":
                continue
            if issubclass(ctype, ctypes.Array):
                parts.append(f"{name}=<{ctypes.sizeof(ctype)} bytes>")
            else:
                parts.append(f"{name}={getattr(self, name)!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class QoCid(_Struct):
    _fields_ = [("len", _u8), ("bytes", _u8 * MAX_CID_LEN), ("pad", _u8 * 3)]

    @classmethod
    def of(cls, cid: bytes) -> QoCid:
        if len(cid) > MAX_CID_LEN:
            raise ValueError(f"connection ID of {len(cid)} bytes exceeds {MAX_CID_LEN}")
        value = cls()
        value.len = len(cid)
        ctypes.memmove(value.bytes, cid, len(cid))
        return value

    def value(self) -> bytes:
        return bytes(self.bytes)[: self.len]


class QoRange(_Struct):
    _fields_ = [("smallest", _u64), ("largest", _u64)]


class QoConfig(_Struct):
    _fields_ = [
        ("magic", _u64),
        ("buf_base", _u64),
        ("buf_ring", _u64),
        ("return_ring", _u64),
        ("recv_msghdr", _u64),
        ("send_base", _u64),
        ("tick_ts", _u64),
        ("tick_ns", _u64),
        ("buf_size", _u32),
        ("buf_count", _u32),
        ("return_entries", _u32),
        ("send_slots", _u32),
        ("send_slot_size", _u32),
        ("name_cap", _u32),
        ("bgid", _u16),
        ("host_cid_len", _u8),
        ("ack_delay_exponent", _u8),
        ("reserved", _u32),
    ]


class QoSendSlot(_Struct):
    _fields_ = [
        ("msg_name", _u64),
        ("msg_namelen", _u32),
        ("pad0", _u32),
        ("msg_iov", _u64),
        ("msg_iovlen", _u64),
        ("msg_control", _u64),
        ("msg_controllen", _u64),
        ("msg_flags", _u32),
        ("pad1", _u32),
        ("iov_base", _u64),
        ("iov_len", _u64),
        ("name", _u8 * 32),
        ("packet", _u8 * SEND_SLOT_PACKET_MAX),
    ]


class QoKeys(_Struct):
    _fields_ = [
        ("suite", _u16),
        ("key_phase", _u8),
        ("secret_len", _u8),
        ("version", _u32),
        ("send_generation", _u32),
        ("recv_generation", _u32),
        ("send_secret", _u8 * SECRET_MAX),
        ("recv_secret", _u8 * SECRET_MAX),
        ("send_hp", _u8 * HP_KEY_MAX),
        ("recv_hp", _u8 * HP_KEY_MAX),
        ("hp_len", _u8),
        ("n_reset_tokens", _u8),
        ("pad", _u8 * 6),
        ("reset_tokens", (_u8 * 16) * MAX_RESET_TOKENS),
        ("next_pn", _u64),
    ]


class QoSnapshot(_Struct):
    _fields_ = [
        ("magic", _u64),
        ("status", _s32),
        ("park_id", _u32),
        ("slot", _u32),
        ("sock_fd", _s32),
        ("role", _u8),
        ("spin", _u8),
        ("n_ranges", _u8),
        ("reserved", _u8),
        ("unresponsive_after", _u8),
        ("peer_ack_delay_exponent", _u8),
        ("ack_pending", _u8),
        ("ack_eliciting_pending", _u8),
        ("next_pn", _u64),
        ("largest_acked", _u64),
        ("largest_received", _u64),
        ("largest_received_ns", _u64),
        ("last_receive_ns", _u64),
        ("last_send_ns", _u64),
        ("interval_ns", _u64),
        ("idle_timeout_ns", _u64),
        ("pto_ns", _u64),
        ("max_ack_delay_ns", _u64),
        ("dcid", QoCid),
        ("peer_addr_len", _u32),
        ("peer_addr", _u8 * SOCKADDR_MAX),
        ("ranges", QoRange * MAX_RANGES),
        ("host_cid", QoCid),
    ]


class QoWriteback(_Struct):
    _fields_ = [
        ("magic", _u64),
        ("status", _s32),
        ("slot", _u32),
        ("next_pn", _u64),
        ("largest_acked", _u64),
        ("largest_received", _u64),
        ("largest_received_ns", _u64),
        ("last_receive_ns", _u64),
        ("last_send_ns", _u64),
        ("latest_rtt_ns", _u64),
        ("smoothed_rtt_ns", _u64),
        ("min_rtt_ns", _u64),
        ("pings_sent", _u32),
        ("pings_acked", _u32),
        ("acks_sent", _u32),
        ("packets_received", _u32),
        ("wake_reason", _u32),
        ("n_ranges", _u8),
        ("n_peer_ack_ranges", _u8),
        ("spin", _u8),
        ("ack_pending", _u8),
        ("peer_ack_delay_ns", _u64),
        ("ranges", QoRange * MAX_RANGES),
        ("peer_ack_ranges", QoRange * MAX_PEER_ACK_RANGES),
    ]


class _SnapshotOrWriteback(ctypes.Union):
    _fields_ = [("snapshot", QoSnapshot), ("writeback", QoWriteback)]


class QoParkRecord(_Struct):
    _anonymous_ = ("u",)
    _fields_ = [("u", _SnapshotOrWriteback), ("keys", QoKeys)]


class QoTx(_Struct):
    _fields_ = [
        ("pn", _u64),
        ("largest_acked", _u64),
        ("ack_delay_us", _u64),
        ("spin", _u8),
        ("n_ranges", _u8),
        ("ack_delay_exponent", _u8),
        ("pad0", _u8),
        ("peer_addr_len", _u32),
        ("dcid", QoCid),
        ("peer_addr", _u8 * SOCKADDR_MAX),
        ("pad1", _u32),
        ("ranges", QoRange * MAX_RANGES),
    ]


class QoConn(_Struct):
    _fields_ = [
        ("tx", QoTx),
        ("token", _u64),
        ("state", _u32),
        ("sock_fd", _s32),
        ("wheel_next", _u32),
        ("wheel_prev", _u32),
        ("wheel_bucket", _u32),
        ("unanswered", _u16),
        ("unresponsive_after", _u8),
        ("peer_ack_delay_exponent", _u8),
        ("ack_pending", _u8),
        ("n_peer_ack_ranges", _u8),
        ("in_wheel", _u8),
        ("wake_reason", _u8),
        ("role", _u8),
        ("pad", _u8 * 3),
        ("due_ns", _u64),
        ("interval_ns", _u64),
        ("idle_timeout_ns", _u64),
        ("pto_ns", _u64),
        ("last_ping_pn", _u64),
        ("last_ping_ns", _u64),
        ("largest_received_ns", _u64),
        ("last_receive_ns", _u64),
        ("last_send_ns", _u64),
        ("latest_rtt_ns", _u64),
        ("smoothed_rtt_ns", _u64),
        ("min_rtt_ns", _u64),
        ("peer_ack_delay_ns", _u64),
        ("key_update_ns", _u64),
        ("pings_sent", _u32),
        ("pings_acked", _u32),
        ("acks_sent", _u32),
        ("packets_received", _u32),
        ("peer_ack_ranges", QoRange * MAX_PEER_ACK_RANGES),
        ("host_cid", QoCid),
    ]


class QoRx(_Struct):
    _fields_ = [
        ("largest_received", _u64),
        ("dcid_len", _u32),
        ("status", _u32),
        ("pn", _u64),
        ("ack_largest", _u64),
        ("ack_delay_us", _u64),
        ("ack_eliciting", _u8),
        ("has_ack", _u8),
        ("key_updated", _u8),
        ("spin", _u8),
        ("key_phase", _u8),
        ("n_ack_ranges", _u8),
        ("peer_ack_delay_exponent", _u8),
        ("pad", _u8),
        ("ack_ranges", QoRange * MAX_PEER_ACK_RANGES),
    ]


class QoStats(_Struct):
    _fields_ = [
        ("adopted", _u64),
        ("reclaimed", _u64),
        ("adopt_failed", _u64),
        ("pings_sent", _u64),
        ("ping_acks_sent", _u64),
        ("acks_sent", _u64),
        ("acks_received", _u64),
        ("packets_received", _u64),
        ("datagrams_received", _u64),
        ("datagrams_passed", _u64),
        ("dropped_undecryptable", _u64),
        ("dropped_duplicate", _u64),
        ("dropped_malformed", _u64),
        ("dropped_unknown", _u64),
        ("dropped_bogus_ack", _u64),
        ("send_failed", _u64),
        ("seal_failed", _u64),
        ("recv_rearmed", _u64),
        ("buffers_starved", _u64),
        ("ticks", _u64),
        ("key_updates", _u64),
        ("late_ping_ns_max", _u64),
        ("wheel_visited", _u64),
        ("wakes", _u64 * (len(WakeReason) + 1)),
    ]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: getattr(self, name) for name, _ in self._fields_ if name != "wakes"
        }
        out["wakes"] = {reason.name: self.wakes[reason] for reason in WakeReason}
        return out


class QoEngine(_Struct):
    _fields_ = [
        ("config", QoConfig),
        ("last_tick", _u64),
        ("send_seq", _u32),
        ("buf_tail", _u32),
        ("configured", _u32),
        ("starved_fd_plus1", _u32),
        ("tick_armed", _u32),
        ("pad", _u32),
    ]


#: Every struct of the header, by its C name (the layout test walks this).
STRUCTS: dict[str, type[ctypes.Structure]] = {
    "qo_cid": QoCid,
    "qo_range": QoRange,
    "qo_config": QoConfig,
    "qo_send_slot": QoSendSlot,
    "qo_keys": QoKeys,
    "qo_snapshot": QoSnapshot,
    "qo_writeback": QoWriteback,
    "qo_park_record": QoParkRecord,
    "qo_tx": QoTx,
    "qo_conn": QoConn,
    "qo_rx": QoRx,
    "qo_stats": QoStats,
    "qo_engine": QoEngine,
}

# --------------------------------------------------------------------------------------------
# Flat struct.Struct views of ctypes layouts (for the helpers' hot paths)
# --------------------------------------------------------------------------------------------

_FORMATS = {
    ctypes.c_uint8: "B",
    ctypes.c_uint16: "H",
    ctypes.c_uint32: "I",
    ctypes.c_uint64: "Q",
    ctypes.c_int32: "i",
}


def offset_of(cls: type[ctypes.Structure], path: str) -> int:
    """Byte offset of a (dotted) field path, e.g. ``offset_of(QoConn, "tx.pn")``."""
    offset = 0
    for name in path.split("."):
        offset += getattr(cls, name).offset
        cls = dict(cls._fields_)[name]
    return offset


def field_struct(cls: type[ctypes.Structure], *names: str) -> struct.Struct:
    """A :class:`struct.Struct` unpacking the named scalar/byte-array fields of ``cls``, in
    the order given (which must be ascending offsets), padding what lies between."""
    fmt = ["<"]
    pos = 0
    for name in names:
        field = getattr(cls, name)
        ctype = dict(cls._fields_)[name]
        if field.offset < pos:
            raise ValueError(f"{cls.__name__}.{name}: fields must be given in layout order")
        if field.offset > pos:
            fmt.append(f"{field.offset - pos}x")
        if ctype in _FORMATS:
            fmt.append(_FORMATS[ctype])
        elif issubclass(ctype, ctypes.Array) and ctype._type_ is ctypes.c_uint8:
            fmt.append(f"{ctype._length_}s")
        else:
            raise TypeError(f"{cls.__name__}.{name}: not a scalar or byte array")
        pos = field.offset + field.size
    return struct.Struct("".join(fmt))


for _name, _cls in STRUCTS.items():
    # the header's _Static_asserts, restated: a mismatch fails at import, not at run time
    _expected = {
        "qo_cid": 24, "qo_range": 16, "qo_config": 96, "qo_send_slot": 232, "qo_keys": 320,
        "qo_snapshot": 320, "qo_writeback": 312, "qo_park_record": 640, "qo_tx": 216,
        "qo_conn": 472, "qo_rx": 112, "qo_stats": 256, "qo_engine": 128,
    }[_name]
    if ctypes.sizeof(_cls) != _expected:  # pragma: no cover - a layout edit gone wrong
        raise ImportError(f"struct {_name} is {ctypes.sizeof(_cls)} bytes, header says {_expected}")
