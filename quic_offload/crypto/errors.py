"""Exceptions of the crypto shim.  None of them ever carries key material.

:class:`DecryptionError` is bad network input and, like every codec error, a
:class:`~quic_offload.packet.errors.PacketError`.  The others are caller errors: a slot
used wrongly, an unsupported suite, a packet number sealed twice.
"""

from __future__ import annotations

from ..packet.errors import PacketError


class DecryptionError(PacketError):
    """AEAD authentication failed: wrong keys, a forged or corrupted packet, or a
    stateless reset (test the tokens, RFC 9000 §10.3.1)."""


class SlotError(LookupError):
    """Base for misuse of a key-table slot."""


class SlotRangeError(SlotError):
    """The slot number is outside the table."""


class EmptySlotError(SlotError):
    """No keys are installed in the slot."""


class SlotInUseError(SlotError):
    """Keys are already installed in the slot; wipe it first."""


class UnsupportedSuiteError(ValueError):
    """A cipher suite or QUIC version the shim does not implement."""


class UnsupportedVersionError(UnsupportedSuiteError):
    """A QUIC version other than v1 (0x00000001) or v2 (0x6b3343cf)."""


class KeyUpdateError(RuntimeError):
    """A key update was requested while the previous one is not yet confirmed."""


class PacketNumberReuseError(ValueError):
    """Sealing a packet number not above the last one sealed under these keys would
    reuse an AEAD nonce (and break RFC 9000 §12.3)."""
