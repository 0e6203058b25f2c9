"""Keep a connection's first 1-RTT traffic secrets, for its header-protection keys.

Header protection keeps the key derived from the *first* 1-RTT secret for the whole
connection (RFC 9001 §6: a key update changes only the AEAD keys).  aioquic overwrites its
stored secret on every key update and does not expose its header-protection key, so once a
connection has updated its keys, neither can be recovered from it.  Installing this hook
before the handshake starts records the first secrets as aioquic receives them from TLS.
"""

from __future__ import annotations

from collections.abc import Callable

from aioquic.quic.connection import QuicConnection
from aioquic.tls import CipherSuite, Direction, Epoch

from quic_offload.crypto.key_schedule import derive_packet_keys


class FirstSecrets:
    """The first 1-RTT secret of each direction, once TLS produced it."""

    __slots__ = ("suite", "send", "recv")

    def __init__(self) -> None:
        self.suite: CipherSuite | None = None
        self.send: bytes | None = None
        self.recv: bytes | None = None

    def __repr__(self) -> str:
        return f"<FirstSecrets suite={self.suite!r} complete={self.complete}>"

    @property
    def complete(self) -> bool:
        return self.send is not None and self.recv is not None

    def hp_keys(self, version: int) -> tuple[bytes, bytes]:
        """``(send_hp_key, recv_hp_key)``."""
        if not self.complete or self.suite is None:
            raise LookupError("the 1-RTT secrets were not captured (handshake not done, or "
                              "the hook was installed after it started)")
        return (derive_packet_keys(self.suite, self.send, version)[2],
                derive_packet_keys(self.suite, self.recv, version)[2])


def capture_first_secrets(quic: QuicConnection) -> FirstSecrets:
    """Hook ``quic`` so it records its first 1-RTT secrets; call before the handshake."""
    if quic._cryptos:
        raise RuntimeError("capture_first_secrets() must run before the connection starts")
    secrets = FirstSecrets()
    original: Callable[..., None] = quic._update_traffic_key

    def update_traffic_key(direction: Direction, epoch: Epoch, cipher_suite: CipherSuite,
                           secret: bytes) -> None:
        if epoch == Epoch.ONE_RTT:
            secrets.suite = cipher_suite
            if direction == Direction.ENCRYPT and secrets.send is None:
                secrets.send = secret
            elif direction == Direction.DECRYPT and secrets.recv is None:
                secrets.recv = secret
        original(direction, epoch, cipher_suite, secret)

    quic._update_traffic_key = update_traffic_key  # type: ignore[method-assign]
    return secrets
