"""The crypto helper shim: QUIC 1-RTT packet protection by key slot.

:mod:`.hkdf_label` (HKDF-Expand-Label), :mod:`.suites` (cipher suites, QUIC versions),
:mod:`.key_schedule` (key / IV / HP / key-update derivations), :mod:`.key_table` (the
slot table the engine's BPF helpers call), :mod:`.received_packet` (receive verdicts) and
:mod:`.errors`.
"""

from .errors import (
    DecryptionError,
    EmptySlotError,
    KeyUpdateError,
    PacketNumberReuseError,
    SlotError,
    SlotInUseError,
    SlotRangeError,
    UnsupportedSuiteError,
    UnsupportedVersionError,
)
from .key_table import ExportedKeys, KeyTable, OpenedPacket
from .received_packet import ReceivedPacket, RxStatus
from .suites import CipherSuite, QuicVersion

__all__ = [
    "CipherSuite",
    "DecryptionError",
    "EmptySlotError",
    "ExportedKeys",
    "KeyTable",
    "KeyUpdateError",
    "OpenedPacket",
    "PacketNumberReuseError",
    "QuicVersion",
    "ReceivedPacket",
    "RxStatus",
    "SlotError",
    "SlotInUseError",
    "SlotRangeError",
    "UnsupportedSuiteError",
    "UnsupportedVersionError",
]
