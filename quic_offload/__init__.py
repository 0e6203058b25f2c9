"""quic-offload: keep idle QUIC connections alive without waking the application."""

__version__ = "0.1.0"
