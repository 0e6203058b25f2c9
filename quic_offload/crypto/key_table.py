"""The crypto helper shim: 1-RTT keys of parked connections, indexed by slot.

BPF programs cannot do AEAD, and must never see key material.  They name a connection's
keys by a small integer *slot*; the engine's BPF helpers call this table to seal packets the
program decided to send and to open datagrams it received.  Key material goes in through
:meth:`KeyTable.install` and comes out only through :meth:`KeyTable.export`, the resume
path of the adapter.  It is kept in one ``bytearray`` per slot so :meth:`KeyTable.wipe`
can overwrite it in place; ``repr``, exceptions and logs never show it.

Key update (RFC 9001 §6) is followed here, not decided: a packet whose key-phase bit
differs from the current receive phase is tried with the *next* keys (derived with
"quic ku" on first need, then kept) unless its packet number is below the first one
received in the current phase and previous keys are still held, in which case it is a
reordered packet of the previous phase.  When the next keys open a packet, the receive
side moves on, the previous keys are kept for reordered packets until
:meth:`KeyTable.discard_previous_keys` (call it about three PTOs later), and the send
side follows if the peer initiated the update.  :meth:`KeyTable.initiate_key_update`
starts one from this side.  Header-protection keys never change.

Memory.  A cold slot holds only its key bytes (a few hundred bytes).  The OpenSSL cipher
contexts that make sealing and opening fast cost about 8 KiB per slot (two AEAD
contexts of ~2.6 KiB, two header-protection contexts of ~0.8–1.5 KiB), far over the
1 KiB budget of a parked connection, so at most ``warm_slots`` slots keep them.  A cold
slot serves a packet with contexts built for that packet alone, the AES header-protection
mask through a one-block AES-CMAC (see :mod:`~quic_offload.packet.header_protection`),
which is cheaper than building an ECB context.  While the warm set has room, every slot
used joins it; once it is full, a slot joins only when one of its directions is used a
second time while still among the last ``warm_slots`` cold uses, and then displaces the
slot the CLOCK hand finds unused since its last pass.  A population of connections far
larger than the warm set, each sending one keepalive per interval, thus costs one-shot
contexts per packet instead of churning the warm set.  ``bench/bench_crypto_memory.py``
and ``bench/bench_crypto_seal_open.py`` measure both sides.

Hot-path conventions: :meth:`seal_ping` / :meth:`seal_ack` / :meth:`open_datagram` never
raise for network input (the receive path returns an :class:`RxStatus`); they raise only
for caller errors (:class:`SlotError`, bad arguments).  Each handles its most common
shape (a 1-byte packet number on the send side; a PADDING/PING/ACK payload with one ACK
range on the receive side) in straight-line code and hands everything else to the general
path, which gives the same bytes and verdicts.  :meth:`seal` / :meth:`open` are
the general forms and raise specific exceptions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag

from ..packet.errors import (
    PROTOCOL_VIOLATION,
    PacketError,
    PacketNumberError,
    ReservedBitsError,
    SampleUnavailableError,
)
from ..packet.frame_classifier import PayloadKind, classify_common_payload, classify_payload
from ..packet.frames import MAX_ACK_DELAY_EXPONENT, AckRange, encode_ack_frame
from ..packet.header_protection import (
    SAMPLE_LENGTH,
    SAMPLE_OFFSET,
    MaskFunction,
    aes_cmac_subkey,
    aes_mask_once,
    chacha20_mask_once,
)
from ..packet.packet_builder import min_payload_length, ping_payload
from ..packet.packet_number import PACKET_NUMBER_MAX
from ..packet.short_header import (
    FORM_BIT,
    KEY_PHASE_BIT,
    MAX_CID_LENGTH,
    RESERVED_BITS,
    packet_number_offset,
)
from .errors import (
    DecryptionError,
    EmptySlotError,
    KeyUpdateError,
    PacketNumberReuseError,
    SlotError,
    SlotInUseError,
    SlotRangeError,
)
from .key_schedule import derive_hp_into, derive_key_iv_into, derive_next_secret_into
from .received_packet import ReceivedPacket, RxStatus
from .suites import IV_LENGTH, CipherSuite, QuicVersion, SuiteSpec, suite_spec, version_labels

#: Default number of slots that keep live cipher contexts.
DEFAULT_WARM_SLOTS = 1024

#: RxStatus for each PayloadKind, indexed by the kind's value (no enum lookups on the
#: hot path: attribute access on an Enum class is slow).
_STATUS_FOR_KIND = tuple(
    {
        PayloadKind.CONTROL_ONLY: RxStatus.CONTROL_ONLY,
        PayloadKind.CONNECTION_CLOSE: RxStatus.CONNECTION_CLOSE,
        PayloadKind.OTHER: RxStatus.OTHER_FRAMES,
    }[kind]
    for kind in PayloadKind
)
_CONTROL_ONLY = RxStatus.CONTROL_ONLY
_PROTOCOL_ERROR = RxStatus.PROTOCOL_ERROR
_DROPPED = ReceivedPacket(RxStatus.DROPPED)
_LONG_HEADER = ReceivedPacket(RxStatus.LONG_HEADER)
_UNDECRYPTABLE = ReceivedPacket(RxStatus.UNDECRYPTABLE)
_new_tuple = tuple.__new__
_from_bytes = int.from_bytes
_BYTE = tuple(bytes((value,)) for value in range(256))
_PING_PAYLOADS = (b"",) + tuple(ping_payload(pn_length) for pn_length in range(1, 5))
#: The padded PING of a 1-byte packet number: PING + 2 PADDING.
_PING_1 = _PING_PAYLOADS[1]
_PN_MAX = PACKET_NUMBER_MAX
#: ``recv_first_pn`` while no packet of the current receive phase has been opened.
_NO_PACKET_YET = PACKET_NUMBER_MAX + 1
_SEND, _RECV = 0, 1
#: ``_Slot.ring_pos`` of a slot without contexts, and of a warm slot of an unbounded table.
_COLD, _WARM_UNBOUNDED = -1, -2


@dataclass(frozen=True)
class ExportedKeys:
    """Current key state of a slot, for the adapter's resume path (the only way key
    material leaves the table).  Secrets are omitted from ``repr``."""

    suite: CipherSuite
    version: QuicVersion
    send_secret: bytes = field(repr=False)
    recv_secret: bytes = field(repr=False)
    #: Header-protection keys (unchanged since the first 1-RTT secret); pass them back to
    #: :meth:`KeyTable.install` when re-parking after a key update.
    send_hp_key: bytes = field(repr=False)
    recv_hp_key: bytes = field(repr=False)
    send_key_phase: int
    recv_key_phase: int
    #: Key updates since install (plus the ``generation`` given to install).  The send
    #: side is one ahead while an update this side initiated is unconfirmed.
    send_generation: int
    recv_generation: int
    #: Lowest packet number :meth:`KeyTable.seal` still accepts.
    next_packet_number: int


class OpenedPacket(NamedTuple):
    """Result of :meth:`KeyTable.open`."""

    packet_number: int
    key_phase: int
    spin: bool
    #: Unprotected header (first byte through packet number).
    header: bytes
    payload: bytes
    key_updated: bool


class _Layout:
    """Where each key lives in a slot's ``material``: per direction (send, then receive)
    ``secret ‖ AEAD key ‖ IV ‖ HP key ‖ HP subkey`` (the subkey only for AES: K1 of
    AES-CMAC, zero until the first one-shot mask computes it)."""

    __slots__ = ("spec", "key", "iv", "hp", "subkey", "hp_length", "subkey_length", "size")

    def __init__(self, spec: SuiteSpec) -> None:
        self.spec = spec
        self.key = spec.secret_length
        self.iv = self.key + spec.key_length
        self.hp = self.iv + IV_LENGTH
        self.subkey = self.hp + spec.key_length
        self.hp_length = spec.key_length
        self.subkey_length = 0 if spec.suite == CipherSuite.CHACHA20_POLY1305_SHA256 else 16
        self.size = self.subkey + self.subkey_length


class _SendState:
    """Cipher state of a slot's send direction: kept while the slot is warm, or built for
    one packet."""

    __slots__ = ("encrypt", "iv", "mask", "first")

    encrypt: Callable[[bytes, bytes, bytes], bytes]
    #: The AEAD IV as an int: the nonce is ``iv ^ packet_number`` (RFC 9001 §5.3).
    iv: int
    mask: Callable[[bytes], bytes]
    #: Unprotected first byte of a 1-byte-PN packet without spin: fixed bit | key phase.
    first: int


class _RecvState:
    """Cipher state of a slot's receive direction (current, previous and next phase)."""

    __slots__ = (
        "decrypt",
        "iv",
        "mask",
        "previous_decrypt",
        "previous_iv",
        "next_decrypt",
        "next_iv",
    )

    def __init__(self) -> None:
        self.previous_decrypt: Any = None
        self.previous_iv = 0
        self.next_decrypt: Any = None
        self.next_iv = 0


class _Slot:
    """Key state of one connection (see :class:`_Layout` for ``material``)."""

    __slots__ = (
        "index",
        "layout",
        "version",
        "material",
        "send_phase",
        "send_generation",
        "recv_phase_bit",
        "recv_generation",
        "recv_first_pn",
        "next_send_pn",
        "previous",
        "next_recv",
        "tx",
        "rx",
        "used",
        "ring_pos",
    )

    def __repr__(self) -> str:
        return (
            f"<slot {self.index} {self.layout.spec.suite.name} send phase={self.send_phase} "
            f"gen={self.send_generation} recv phase={self.recv_phase_bit >> 2} "
            f"gen={self.recv_generation}{'' if self.ring_pos == _COLD else ' warm'}>"
        )


_LAYOUTS = {suite: _Layout(suite_spec(suite)) for suite in CipherSuite}


class KeyTable:
    """1-RTT packet protection for up to ``capacity`` connections, by slot number."""

    def __init__(self, capacity: int, *, warm_slots: int | None = DEFAULT_WARM_SLOTS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity} must be at least 1")
        if warm_slots is not None and warm_slots < 0:
            raise ValueError(f"warm_slots {warm_slots} must be >= 0 (or None for all)")
        self._slots: list[_Slot | None] = [None] * capacity
        self._warm_limit = warm_slots
        self._warm_count = 0
        #: The warm set when bounded: CLOCK ring (a warm slot's ``ring_pos`` is its index),
        #: free positions (left by wipe), hand.
        self._ring: list[_Slot | None] = []
        self._free: list[int] = []
        self._hand = 0
        #: ``slot * 2 + direction`` of the latest cold uses, oldest first (admission).
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._installed = 0

    # ------------------------------------------------------------------ slot life cycle

    @property
    def capacity(self) -> int:
        return len(self._slots)

    def __len__(self) -> int:
        return self._installed

    def __contains__(self, slot: object) -> bool:
        return (
            isinstance(slot, int) and 0 <= slot < len(self._slots) and self._slots[slot] is not None
        )

    def __repr__(self) -> str:
        return (
            f"<KeyTable {self._installed}/{len(self._slots)} slots installed, "
            f"{self._warm_count} warm>"
        )

    def install(
        self,
        slot: int,
        suite: int | str,
        send_secret: bytes,
        recv_secret: bytes,
        key_phase: int = 0,
        *,
        version: int = QuicVersion.VERSION_1,
        send_hp_key: bytes | None = None,
        recv_hp_key: bytes | None = None,
        generation: int = 0,
        next_packet_number: int = 0,
    ) -> None:
        """Install a connection's current 1-RTT traffic secrets in an empty slot.

        The header-protection keys are derived from the secrets unless given; after a
        key update they must be given (from :meth:`export`), because header protection
        keeps the key of the first 1-RTT secret.  ``next_packet_number`` is the lowest
        packet number the slot will seal (nonce-reuse guard).
        """
        if self._lookup_maybe(slot) is not None:
            raise SlotInUseError(f"slot {slot} already holds keys; wipe({slot}) first")
        spec = suite_spec(suite)
        labels = version_labels(version)
        secret_len, key_len = spec.secret_length, spec.key_length
        for name, secret in (("send_secret", send_secret), ("recv_secret", recv_secret)):
            if len(secret) != secret_len:
                raise ValueError(
                    f"{name} is {len(secret)} bytes; {spec.suite.name} needs {secret_len}"
                )
        for name, hp in (("send_hp_key", send_hp_key), ("recv_hp_key", recv_hp_key)):
            if hp is not None and len(hp) != key_len:
                raise ValueError(f"{name} is {len(hp)} bytes; {spec.suite.name} needs {key_len}")
        if key_phase not in (0, 1):
            raise ValueError(f"key_phase {key_phase} must be 0 or 1")
        if not 0 <= next_packet_number <= PACKET_NUMBER_MAX:
            raise ValueError(f"next_packet_number {next_packet_number} out of range")
        if generation < 0:
            raise ValueError(f"generation {generation} must be >= 0")

        layout = _LAYOUTS[spec.suite]
        material = bytearray(2 * layout.size)
        view = memoryview(material)
        for base, secret, hp in (
            (0, send_secret, send_hp_key),
            (layout.size, recv_secret, recv_hp_key),
        ):
            key_at, iv_at, hp_at = base + layout.key, base + layout.iv, base + layout.hp
            view[base:key_at] = secret
            derive_key_iv_into(spec, labels, secret, view[key_at:iv_at], view[iv_at:hp_at])
            if hp is None:
                derive_hp_into(spec, labels, secret, view[hp_at : hp_at + key_len])
            else:
                view[hp_at : hp_at + key_len] = hp
        view.release()

        entry = _Slot()
        entry.index = slot
        entry.layout = layout
        entry.version = QuicVersion(version)
        entry.material = material
        entry.send_phase = key_phase
        entry.recv_phase_bit = key_phase << 2
        entry.send_generation = entry.recv_generation = generation
        entry.recv_first_pn = _NO_PACKET_YET
        entry.next_send_pn = next_packet_number
        entry.previous = None
        entry.next_recv = None
        entry.tx = entry.rx = None
        entry.used = False
        entry.ring_pos = _COLD
        self._slots[slot] = entry
        self._installed += 1

    def wipe(self, slot: int) -> bool:
        """Erase a slot's keys (overwriting them in place); False if it was empty."""
        entry = self._lookup_maybe(slot)
        if entry is None:
            return False
        self._slots[slot] = None
        self._installed -= 1
        position = self._make_cold(entry)
        if position >= 0:
            self._ring[position] = None
            self._free.append(position)
        self._recent.pop(2 * slot + _SEND, None)
        self._recent.pop(2 * slot + _RECV, None)
        _erase(entry.material)
        _erase(entry.previous)
        _erase(entry.next_recv)
        entry.previous = entry.next_recv = None
        return True

    def export(self, slot: int) -> ExportedKeys:
        """Current secrets, HP keys, phases and generations of a slot (resume path)."""
        entry = self._lookup(slot)
        layout = entry.layout
        secret_len, hp_len, size = layout.key, layout.hp_length, layout.size
        material = entry.material
        return ExportedKeys(
            suite=layout.spec.suite,
            version=entry.version,
            send_secret=bytes(material[:secret_len]),
            recv_secret=bytes(material[size : size + secret_len]),
            send_hp_key=bytes(material[layout.hp : layout.hp + hp_len]),
            recv_hp_key=bytes(material[size + layout.hp : size + layout.hp + hp_len]),
            send_key_phase=entry.send_phase,
            recv_key_phase=entry.recv_phase_bit >> 2,
            send_generation=entry.send_generation,
            recv_generation=entry.recv_generation,
            next_packet_number=entry.next_send_pn,
        )

    def key_phase(self, slot: int) -> int:
        """Key phase bit :meth:`seal` puts on packets of ``slot``."""
        return self._lookup(slot).send_phase

    def initiate_key_update(self, slot: int) -> None:
        """Move the send side to the next key phase (RFC 9001 §6.1).

        Refused while an update this side started is unconfirmed (no packet in the new
        phase received yet).  The caller must also have had a packet of the current phase
        acknowledged, which only it can know.
        """
        entry = self._lookup(slot)
        if entry.send_generation != entry.recv_generation:
            raise KeyUpdateError(
                f"slot {slot}: key update to generation {entry.send_generation} is not "
                "confirmed yet; wait for a packet in the new key phase"
            )
        self._update_send(entry)

    def discard_previous_keys(self, slot: int) -> bool:
        """Forget the previous receive keys (about 3 PTOs after a key update, RFC 9001
        §6.5); False if none were held."""
        entry = self._lookup(slot)
        if entry.previous is None:
            return False
        _erase(entry.previous)
        entry.previous = None
        if entry.rx is not None:
            entry.rx.previous_decrypt = None
        return True

    # ------------------------------------------------------------------ sealing

    def seal(self, slot: int, header: bytes, payload: bytes, packet_number: int) -> bytes:
        """AEAD-seal ``payload`` under ``header`` and apply header protection.

        ``header`` is an unprotected short header ending in the truncated packet number
        (as :func:`~quic_offload.packet.short_header.build_short_header` makes); its key
        phase bit is replaced by the slot's current one.
        """
        entry = self._lookup(slot)
        if not header or header[0] & FORM_BIT:
            raise ValueError("seal takes a short header (first byte with the form bit clear)")
        pn_length = (header[0] & 0x03) + 1
        if len(header) < 1 + pn_length:
            raise ValueError(f"header of {len(header)} bytes has no {pn_length}-byte PN")
        truncated = int.from_bytes(header[-pn_length:], "big")
        if truncated != packet_number & ((1 << (8 * pn_length)) - 1):
            raise ValueError(
                f"header packet number bytes {truncated:#x} are not the low {pn_length} "
                f"bytes of packet number {packet_number}"
            )
        if pn_length + len(payload) < SAMPLE_OFFSET:
            raise SampleUnavailableError(
                f"{pn_length}-byte packet number and {len(payload)}-byte payload leave no "
                "header-protection sample: pad the payload"
            )
        dcid = header[1:-pn_length]
        first = header[0] & ~KEY_PHASE_BIT
        return self._seal_short(entry, first, dcid, packet_number, pn_length, payload, None, 0)

    def seal_ping(
        self,
        slot: int,
        dcid: bytes,
        packet_number: int,
        largest_acked: int | None,
        spin: bool = False,
        min_packet_size: int = 0,
        out: bytearray | memoryview | None = None,
        offset: int = 0,
    ) -> bytes | int:
        """A complete protected packet holding a padded PING.

        The packet-number length follows from ``largest_acked`` (the largest PN the peer
        acknowledged, None if none).  With ``out`` the packet is written at ``offset``
        and its length returned; otherwise it is returned as ``bytes``.
        """
        # (the optional arguments are positional-or-keyword: CPython calls a function
        # without keyword-only parameters measurably faster)
        try:
            entry = self._slots[slot]
            tx = entry.tx
        except (IndexError, TypeError, AttributeError):
            raise self._slot_error(slot) from None
        if slot < 0:
            raise self._slot_error(slot)
        if largest_acked is not None and not min_packet_size:
            # 1-byte packet number: PING + 2 PADDING, and the sample is the AEAD tag
            sealed = self._seal_short_pn1(entry, tx, dcid, packet_number, largest_acked,
                                          _PING_1, spin, out, offset)
            if sealed is not None:
                return sealed
        pn_length = _pn_length(packet_number, largest_acked)
        if min_packet_size:
            payload = ping_payload(pn_length, len(dcid), min_packet_size)
        else:
            payload = _PING_PAYLOADS[pn_length]
        first = (0x60 if spin else 0x40) | (pn_length - 1)
        return self._seal_short(entry, first, dcid, packet_number, pn_length, payload, out, offset)

    def _seal_short_pn1(self, entry: _Slot, tx: _SendState | None, dcid: bytes,
                        packet_number: int, largest_acked: int, payload: bytes, spin: bool,
                        out: bytearray | memoryview | None, offset: int) -> bytes | int | None:
        """The common keepalive case, sealed without the general path's bookkeeping: a
        1-byte packet number and a payload long enough that the header-protection sample
        falls inside it.  ``None`` when the packet needs the general path."""
        if not (0 < packet_number - largest_acked < 128
                and entry.next_send_pn <= packet_number <= _PN_MAX
                and len(dcid) <= MAX_CID_LENGTH):
            return None
        if tx is None:
            tx = self._send_state(entry)
        else:
            entry.used = True
        first = tx.first | 0x20 if spin else tx.first
        truncated = packet_number & 0xFF
        header = _BYTE[first] + dcid + _BYTE[truncated]
        sealed = tx.encrypt((tx.iv ^ packet_number).to_bytes(12), payload, header)
        entry.next_send_pn = packet_number + 1
        mask = tx.mask(sealed[3:19])
        packet = b"".join(
            (_BYTE[first ^ (mask[0] & 0x1F)], dcid, _BYTE[truncated ^ mask[1]], sealed)
        )
        if out is None:
            return packet
        end = offset + len(packet)
        if offset < 0 or end > len(out):
            raise _does_not_fit(packet, offset)
        out[offset:end] = packet
        return end - offset

    def seal_ack(
        self,
        slot: int,
        dcid: bytes,
        packet_number: int,
        largest_acked: int | None,
        ranges: Sequence[AckRange],
        ack_delay_us: int,
        ack_delay_exponent: int = 3,
        ping: bool = False,
        spin: bool = False,
        ecn_counts: tuple[int, int, int] | None = None,
        max_ranges: int | None = 64,
        min_packet_size: int = 0,
        out: bytearray | memoryview | None = None,
        offset: int = 0,
    ) -> bytes | int:
        """A complete protected ACK-only packet (or PING+ACK with ``ping=True``).

        ``ranges`` are the received packet numbers as ``(smallest, largest)`` inclusive
        pairs, newest first; ``ack_delay_us`` is encoded with ``ack_delay_exponent``, the
        exponent *this* endpoint advertised (the ACK sender's, RFC 9000 §19.3).
        """
        try:
            entry = self._slots[slot]
            tx = entry.tx
        except (IndexError, TypeError, AttributeError):
            raise self._slot_error(slot) from None
        if slot < 0:
            raise self._slot_error(slot)
        if not 0 <= ack_delay_exponent <= MAX_ACK_DELAY_EXPONENT:
            raise ValueError(
                f"ack_delay_exponent {ack_delay_exponent} is not 0..{MAX_ACK_DELAY_EXPONENT}"
            )
        payload = encode_ack_frame(
            ranges,
            ack_delay_us >> ack_delay_exponent if ack_delay_us > 0 else 0,
            ecn_counts=ecn_counts,
            max_ranges=max_ranges,
        )
        if ping:
            payload += b"\x01"
        if largest_acked is not None and not min_packet_size:
            # 1-byte packet number; an ACK frame is >= 5 bytes, so no padding is needed
            sealed = self._seal_short_pn1(entry, tx, dcid, packet_number, largest_acked,
                                          payload, spin, out, offset)
            if sealed is not None:
                return sealed
        pn_length = _pn_length(packet_number, largest_acked)
        minimum = (
            min_payload_length(pn_length, len(dcid), min_packet_size)
            if min_packet_size
            else SAMPLE_OFFSET - pn_length
        )
        if len(payload) < minimum:
            payload += bytes(minimum - len(payload))
        first = (0x60 if spin else 0x40) | (pn_length - 1)
        return self._seal_short(entry, first, dcid, packet_number, pn_length, payload, out, offset)

    def _seal_short(
        self,
        entry: _Slot,
        first: int,
        dcid: bytes,
        packet_number: int,
        pn_length: int,
        payload: bytes,
        out: bytearray | memoryview | None,
        offset: int,
    ) -> bytes | int:
        """Seal and protect one short-header packet: the general tail of every send path."""
        if packet_number < entry.next_send_pn:
            raise PacketNumberReuseError(
                f"slot {entry.index}: packet number {packet_number} is below "
                f"{entry.next_send_pn}, the next unused one"
            )
        if len(dcid) > MAX_CID_LENGTH:
            raise ValueError(f"connection ID of {len(dcid)} bytes is longer than 20")
        tx = entry.tx
        if tx is None:
            tx = self._send_state(entry)
        else:
            entry.used = True
        if entry.send_phase:
            first |= KEY_PHASE_BIT
        if pn_length == 1:
            truncated = packet_number & 0xFF
            header = _BYTE[first] + dcid + _BYTE[truncated]
        else:
            truncated = packet_number & ((1 << (pn_length << 3)) - 1)
            header = _BYTE[first] + dcid + truncated.to_bytes(pn_length)
        sealed = tx.encrypt((tx.iv ^ packet_number).to_bytes(12), payload, header)
        sample_at = SAMPLE_OFFSET - pn_length
        mask = tx.mask(sealed[sample_at : sample_at + SAMPLE_LENGTH])
        entry.next_send_pn = packet_number + 1
        if pn_length == 1:
            protected_pn = _BYTE[truncated ^ mask[1]]
        else:
            protected_pn = (truncated ^ _from_bytes(mask[1 : 1 + pn_length])).to_bytes(pn_length)
        packet = b"".join((_BYTE[first ^ (mask[0] & 0x1F)], dcid, protected_pn, sealed))
        if out is None:
            return packet
        return _write_out(packet, out, offset)

    # ------------------------------------------------------------------ opening

    def open(
        self, slot: int, packet: bytes | bytearray | memoryview, *, dcid_len: int, largest_pn: int
    ) -> OpenedPacket:
        """Remove header protection, recover the packet number against ``largest_pn``
        (-1 if nothing was received yet), AEAD-open and follow a key update.

        Raises :class:`~quic_offload.packet.errors.PacketError` subclasses for bad input:
        ``DatagramTooShortError``, ``LongHeaderError``, ``FixedBitError``,
        ``SampleUnavailableError``, :class:`DecryptionError`, and ``ReservedBitsError``
        (the packet was authentic, and the keys may have moved on).
        """
        entry = self._lookup(slot)
        packet_number_offset(packet, dcid_len)  # raises the precise header error
        opened = self._open_short(entry, packet, dcid_len, largest_pn)
        if opened is None:
            raise DecryptionError(
                f"slot {slot}: packet of {len(packet)} bytes failed authentication"
            )
        pn, first, header, payload, key_updated = opened
        if first & RESERVED_BITS:
            raise ReservedBitsError(
                f"packet {pn} has reserved bits {(first & RESERVED_BITS) >> 3:#04b} set"
            )
        return OpenedPacket(
            pn,
            (first >> 2) & 1,
            bool(first & 0x20),
            header,
            payload,
            key_updated,
        )

    def open_datagram(
        self,
        slot: int,
        datagram: bytes | bytearray | memoryview,
        dcid_len: int,
        largest_pn: int,
        peer_ack_delay_exponent: int = 3,
    ) -> ReceivedPacket:
        """Open the short-header packet a datagram starts with and classify its frames.

        Never raises for bad network input; see :class:`RxStatus` for the verdicts.  A
        datagram is one packet here: coalescing is only legal with long-header packets
        first, which are handed on whole.  ``largest_pn`` is the largest PN received so
        far (-1 if none); ``peer_ack_delay_exponent`` decodes the peer's ACK Delay.
        """
        try:
            entry = self._slots[slot]
            rx = entry.rx
        except (IndexError, TypeError, AttributeError):
            raise self._slot_error(slot) from None
        if slot < 0:
            raise self._slot_error(slot)
        size = len(datagram)
        if size < 21 + dcid_len or datagram[0] & 0xC0 != 0x40:
            return _unopened_verdict(datagram, size)
        if rx is None:
            rx = self._recv_state(entry)
        else:
            entry.used = True
        pn_offset = dcid_len + 1
        mask = rx.mask(datagram[pn_offset + 4 : pn_offset + 20])
        first = datagram[0] ^ (mask[0] & 0x1F)
        pn_bits = first & 0x03
        if pn_bits == 1:
            high = datagram[pn_offset] ^ mask[1]
            low = datagram[pn_offset + 1] ^ mask[2]
            truncated = high << 8 | low
            header = _BYTE[first] + datagram[1:pn_offset] + _BYTE[high] + _BYTE[low]
            payload_at = pn_offset + 2
            window = 0x10000
        elif not pn_bits:
            truncated = datagram[pn_offset] ^ mask[1]
            header = _BYTE[first] + datagram[1:pn_offset] + _BYTE[truncated]
            payload_at = pn_offset + 1
            window = 0x100
        else:
            pn_length = pn_bits + 1
            payload_at = pn_offset + pn_length
            truncated = _from_bytes(datagram[pn_offset:payload_at]) ^ (
                _from_bytes(mask[1:5]) >> ((4 - pn_length) << 3)
            )
            header = _BYTE[first] + datagram[1:pn_offset] + truncated.to_bytes(pn_length)
            window = 1 << (pn_length << 3)
        # packet number recovery, RFC 9000 Appendix A.3
        expected = largest_pn + 1
        pn = (expected & -window) | truncated
        if pn <= expected - (window >> 1):
            if pn < (1 << 62) - window:
                pn += window
        elif pn > expected + (window >> 1) and pn >= window:
            pn -= window
        if first & 0x04 == entry.recv_phase_bit:
            try:
                payload = rx.decrypt((rx.iv ^ pn).to_bytes(12), datagram[payload_at:], header)
            except InvalidTag:
                return _UNDECRYPTABLE
            if pn < entry.recv_first_pn:
                entry.recv_first_pn = pn
            key_updated = False
        else:
            opened = self._open_other_phase(entry, rx, datagram, payload_at, header, pn, first)
            if opened is None:
                return _UNDECRYPTABLE
            payload, key_updated = opened[3], opened[4]
        if first & RESERVED_BITS:
            return _new_tuple(
                ReceivedPacket,
                (_PROTOCOL_ERROR, pn, (first >> 2) & 1, first & 0x20 != 0, key_updated,
                 False, None, 0, None, PROTOCOL_VIOLATION),
            )  # fmt: skip
        common = classify_common_payload(payload)
        if common is not None:
            ack_eliciting, ack = common
            return _new_tuple(
                ReceivedPacket,
                (_CONTROL_ONLY, pn, (first >> 2) & 1, first & 0x20 != 0, key_updated,
                 ack_eliciting, ack, 0 if ack is None else ack[1] << peer_ack_delay_exponent,
                 None, None),
            )  # fmt: skip
        try:
            kind, ack_eliciting, ack, close = classify_payload(payload)
        except PacketError as exc:
            return _new_tuple(
                ReceivedPacket,
                (_PROTOCOL_ERROR, pn, (first >> 2) & 1, first & 0x20 != 0, key_updated,
                 False, None, 0, None, exc.error_code),
            )  # fmt: skip
        return _new_tuple(
            ReceivedPacket,
            (_STATUS_FOR_KIND[kind], pn, (first >> 2) & 1, first & 0x20 != 0, key_updated,
             ack_eliciting, ack, 0 if ack is None else ack[1] << peer_ack_delay_exponent,
             close, None),
        )  # fmt: skip

    def _open_short(
        self,
        entry: _Slot,
        packet: bytes | bytearray | memoryview,
        dcid_len: int,
        largest_pn: int,
    ) -> tuple[int, int, bytes, bytes, bool] | None:
        """Core of :meth:`open`, on a packet whose length and first byte were checked.

        Returns ``(packet number, unprotected first byte, unprotected header, payload,
        key_updated)``, or None when authentication fails.
        """
        rx = entry.rx
        if rx is None:
            rx = self._recv_state(entry)
        else:
            entry.used = True
        pn_offset = 1 + dcid_len
        mask = rx.mask(packet[pn_offset + SAMPLE_OFFSET : pn_offset + 20])
        first = packet[0] ^ (mask[0] & 0x1F)
        pn_length = (first & 0x03) + 1
        payload_at = pn_offset + pn_length
        truncated = _from_bytes(packet[pn_offset:payload_at]) ^ _from_bytes(mask[1 : 1 + pn_length])
        header = _BYTE[first] + packet[1:pn_offset] + truncated.to_bytes(pn_length)
        # packet number recovery, RFC 9000 Appendix A.3
        expected = largest_pn + 1
        window = 1 << (pn_length << 3)
        half = window >> 1
        pn = (expected & -window) | truncated
        if pn <= expected - half:
            if pn < (1 << 62) - window:
                pn += window
        elif pn > expected + half and pn >= window:
            pn -= window
        if first & KEY_PHASE_BIT == entry.recv_phase_bit:
            try:
                payload = rx.decrypt((rx.iv ^ pn).to_bytes(12), packet[payload_at:], header)
            except InvalidTag:
                return None
            if pn < entry.recv_first_pn:
                entry.recv_first_pn = pn
            return pn, first, header, payload, False
        return self._open_other_phase(entry, rx, packet, payload_at, header, pn, first)

    def _open_other_phase(
        self,
        entry: _Slot,
        rx: _RecvState,
        packet: bytes | bytearray | memoryview,
        payload_at: int,
        header: bytes,
        pn: int,
        first: int,
    ) -> tuple[int, int, bytes, bytes, bool] | None:
        """A packet whose key phase differs from the current one: previous or next keys."""
        body = packet[payload_at:]
        if entry.previous is not None and pn < entry.recv_first_pn:
            if rx.previous_decrypt is None:
                self._build_previous(entry, rx)
            try:
                payload = rx.previous_decrypt((rx.previous_iv ^ pn).to_bytes(12), body, header)
            except InvalidTag:
                return None
            return pn, first, header, payload, False
        if rx.next_decrypt is None:
            self._build_next(entry, rx)
        try:
            payload = rx.next_decrypt((rx.next_iv ^ pn).to_bytes(12), body, header)
        except InvalidTag:
            return None
        self._commit_recv_update(entry, rx, pn)
        return pn, first, header, payload, True

    # ------------------------------------------------------------------ key update

    def _update_send(self, entry: _Slot) -> None:
        layout = entry.layout
        spec, labels = layout.spec, version_labels(entry.version)
        view = memoryview(entry.material)
        scratch = bytearray(layout.key)
        derive_next_secret_into(spec, labels, view[: layout.key], memoryview(scratch))
        view[: layout.key] = scratch
        _erase(scratch)
        derive_key_iv_into(
            spec,
            labels,
            view[: layout.key],
            view[layout.key : layout.iv],
            view[layout.iv : layout.hp],
        )
        entry.send_phase ^= 1
        entry.send_generation += 1
        tx = entry.tx
        if tx is not None:
            tx.encrypt = spec.aead_factory(view[layout.key : layout.iv]).encrypt
            tx.iv = int.from_bytes(view[layout.iv : layout.hp], "big")
            tx.first = 0x40 | entry.send_phase << 2
        view.release()

    def _next_recv_material(self, entry: _Slot) -> bytearray:
        """``secret ‖ key ‖ iv`` of the next receive generation (derived once)."""
        if entry.next_recv is None:
            layout = entry.layout
            spec, labels = layout.spec, version_labels(entry.version)
            base = layout.size
            material = bytearray(layout.hp)
            view = memoryview(material)
            current = memoryview(entry.material)[base : base + layout.key]
            derive_next_secret_into(spec, labels, current, view[: layout.key])
            current.release()
            derive_key_iv_into(
                spec, labels, view[: layout.key], view[layout.key : layout.iv], view[layout.iv :]
            )
            view.release()
            entry.next_recv = material
        return entry.next_recv

    def _build_next(self, entry: _Slot, rx: _RecvState) -> None:
        material = self._next_recv_material(entry)
        layout = entry.layout
        view = memoryview(material)
        rx.next_decrypt = layout.spec.aead_factory(view[layout.key : layout.iv]).decrypt
        rx.next_iv = int.from_bytes(view[layout.iv :], "big")

    def _build_previous(self, entry: _Slot, rx: _RecvState) -> None:
        spec = entry.layout.spec
        key_len = spec.key_length
        view = memoryview(entry.previous)
        rx.previous_decrypt = spec.aead_factory(view[:key_len]).decrypt
        rx.previous_iv = int.from_bytes(view[key_len:], "big")

    def _commit_recv_update(self, entry: _Slot, rx: _RecvState, pn: int) -> None:
        layout = entry.layout
        base = layout.size
        material = entry.material
        _erase(entry.previous)
        entry.previous = material[base + layout.key : base + layout.hp]
        nxt = entry.next_recv
        material[base : base + layout.hp] = nxt
        _erase(nxt)
        entry.next_recv = None
        entry.recv_phase_bit ^= KEY_PHASE_BIT
        entry.recv_generation += 1
        entry.recv_first_pn = pn
        rx.previous_decrypt, rx.previous_iv = rx.decrypt, rx.iv
        rx.decrypt, rx.iv = rx.next_decrypt, rx.next_iv
        rx.next_decrypt = None
        if entry.send_generation < entry.recv_generation:
            self._update_send(entry)  # the peer initiated: answer in the new phase

    # ------------------------------------------------------------------ internals

    def _lookup(self, slot: int) -> _Slot:
        try:
            entry = self._slots[slot]
        except (IndexError, TypeError):
            entry = None
        else:
            if entry is not None and slot >= 0:
                return entry
        raise self._slot_error(slot)

    def _slot_error(self, slot: object) -> SlotError:
        """The error for a slot that holds no keys (out of range, or empty)."""
        if isinstance(slot, int) and 0 <= slot < len(self._slots):
            return EmptySlotError(f"slot {slot} holds no keys; install() them first")
        return SlotRangeError(f"slot {slot!r} out of range (table has {len(self._slots)})")

    def _lookup_maybe(self, slot: int) -> _Slot | None:
        if not isinstance(slot, int) or not 0 <= slot < len(self._slots):
            raise SlotRangeError(f"slot {slot!r} out of range (table has {len(self._slots)})")
        return self._slots[slot]

    def _send_state(self, entry: _Slot) -> _SendState:
        """Send-direction state of a slot that has none: kept if the slot is (or becomes)
        warm, else built for one packet with a one-shot header-protection mask."""
        keep = entry.ring_pos != _COLD or self._admit(entry, _SEND)
        tx = _SendState()
        aead, tx.iv, tx.mask = _build_direction(entry, 0, keep)
        tx.encrypt = aead.encrypt
        tx.first = 0x40 | entry.send_phase << 2
        if keep:
            entry.tx = tx
            entry.used = True
        return tx

    def _recv_state(self, entry: _Slot) -> _RecvState:
        """Receive-direction counterpart of :meth:`_send_state`."""
        keep = entry.ring_pos != _COLD or self._admit(entry, _RECV)
        rx = _RecvState()
        aead, rx.iv, rx.mask = _build_direction(entry, entry.layout.size, keep)
        rx.decrypt = aead.decrypt
        if keep:
            entry.rx = rx
            entry.used = True
        return rx

    def _admit(self, entry: _Slot, direction: int) -> bool:
        """Whether contexts built now for a cold ``entry`` are kept; it joins the warm set
        if so."""
        limit = self._warm_limit
        if limit is None:
            entry.ring_pos = _WARM_UNBOUNDED
            self._warm_count += 1
            return True
        if limit == 0:
            return False
        ring = self._ring
        if self._free:
            position = self._free.pop()
        elif len(ring) < limit:
            position = len(ring)
            ring.append(None)
        else:
            # full: only a slot that shows it is busy displaces another one
            recent = self._recent
            key = 2 * entry.index + direction
            if key not in recent:
                recent[key] = None
                if len(recent) > limit:
                    recent.popitem(last=False)
                return False
            del recent[key]
            position = self._evict()
        ring[position] = entry
        entry.ring_pos = position
        entry.used = True
        self._warm_count += 1
        return True

    def _evict(self) -> int:
        """CLOCK: make cold the first slot not used since the hand last passed it, and
        return its ring position."""
        ring = self._ring
        hand = self._hand
        size = len(ring)
        while True:
            victim = ring[hand]
            assert victim is not None  # a full ring with no free positions has no holes
            if not victim.used:
                break
            victim.used = False
            hand = hand + 1 if hand + 1 < size else 0
        self._hand = hand + 1 if hand + 1 < size else 0
        self._make_cold(victim)
        return hand

    def _make_cold(self, entry: _Slot) -> int:
        """Drop a slot's cipher contexts; return the ring position it held (or < 0)."""
        entry.tx = entry.rx = None
        position = entry.ring_pos
        if position != _COLD:
            entry.ring_pos = _COLD
            self._warm_count -= 1
        return position

    def warm_slot_count(self) -> int:
        """Slots currently holding live cipher contexts."""
        return self._warm_count


def _build_direction(entry: _Slot, base: int, keep: bool) -> tuple[Any, int, MaskFunction]:
    """AEAD object, IV and header-protection mask function of the direction whose keys
    start at ``base`` in the slot's material.  Unless ``keep``, the mask function builds
    its cipher on each call (one packet of a cold slot: cheaper than a kept context)."""
    layout = entry.layout
    view = memoryview(entry.material)
    aead = layout.spec.aead_factory(view[base + layout.key : base + layout.iv])
    iv = _from_bytes(view[base + layout.iv : base + layout.hp])
    hp_key = view[base + layout.hp : base + layout.subkey]
    if keep:
        return aead, iv, layout.spec.mask_factory(hp_key)
    if not layout.subkey_length:
        return aead, iv, partial(chacha20_mask_once, hp_key)
    subkey_bytes = view[base + layout.subkey : base + layout.size]
    subkey = _from_bytes(subkey_bytes)
    if not subkey:  # first one-shot use of this key: derive K1 once, keep it with the key
        subkey = aes_cmac_subkey(hp_key)
        subkey_bytes[:] = subkey.to_bytes(16, "big")
    return aead, iv, partial(aes_mask_once, hp_key, subkey)


def _unopened_verdict(datagram: bytes | bytearray | memoryview, size: int) -> ReceivedPacket:
    """Verdict for a datagram the receive path does not try to open: too short, long
    header, fixed bit clear, or no header-protection sample for the DCID length."""
    if size < 21:
        return _DROPPED
    first = datagram[0]
    if first & 0x80:
        return _LONG_HEADER
    if not first & 0x40:
        return _DROPPED
    return _UNDECRYPTABLE


def _write_out(packet: bytes, out: bytearray | memoryview, offset: int) -> int:
    end = offset + len(packet)
    if offset < 0 or end > len(out):
        raise _does_not_fit(packet, offset)
    out[offset:end] = packet
    return len(packet)


def _does_not_fit(packet: bytes, offset: int) -> ValueError:
    return ValueError(f"packet of {len(packet)} bytes does not fit at offset {offset}")


def _pn_length(packet_number: int, largest_acked: int | None) -> int:
    """:func:`~quic_offload.packet.packet_number.packet_number_length`, with a shortcut
    for the usual case of fewer than 128 packets in flight."""
    if (
        largest_acked is not None
        and 0 < packet_number - largest_acked < 128
        and packet_number <= PACKET_NUMBER_MAX
    ):
        return 1
    unacked = packet_number + 1 if largest_acked is None else packet_number - largest_acked
    if unacked <= 0 or packet_number > PACKET_NUMBER_MAX:
        raise PacketNumberError(
            f"packet number {packet_number} is not above the largest acknowledged "
            f"{largest_acked} (or exceeds 2**62 - 1)"
        )
    length = ((2 * unacked - 1).bit_length() + 7) >> 3
    if length > 4:
        raise PacketNumberError(
            f"packet number {packet_number} is {unacked} past the largest acknowledged "
            f"{largest_acked}: more than a 4-byte packet number can cover"
        )
    return length


def _erase(buffer: bytearray | None) -> None:
    if buffer is not None:
        buffer[:] = bytes(len(buffer))
