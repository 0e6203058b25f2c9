"""Key material never shows in repr() of the table, its slots or an export, nor in the
message of any error the shim raises on bad input or misuse."""

import os

import pytest

from quic_offload.crypto import CipherSuite, KeyTable
from quic_offload.crypto.key_schedule import derive_packet_keys


def secrets_as_text(*values: bytes) -> list[str]:
    texts = []
    for value in values:
        texts += [value.hex(), value.hex()[:16], repr(value)[2:18]]
    return texts


def test_reprs_and_errors_hold_no_key_bytes() -> None:
    send, recv = os.urandom(32), os.urandom(32)
    table = KeyTable(2)
    table.install(0, CipherSuite.AES_128_GCM_SHA256, send, recv)
    keys = [*derive_packet_keys(CipherSuite.AES_128_GCM_SHA256, send)]
    keys += derive_packet_keys(CipherSuite.AES_128_GCM_SHA256, recv)
    forbidden = secrets_as_text(send, recv, *keys)

    shown = [repr(table), repr(table._slots[0]), repr(table.export(0)), str(table.export(0))]
    errors = []
    for call in (
        lambda: table.install(0, CipherSuite.AES_128_GCM_SHA256, send, recv),
        lambda: table.install(1, CipherSuite.AES_128_GCM_SHA256, send, recv[:20]),
        lambda: table.install(1, 0x1304, send, recv),
        lambda: table.open(0, os.urandom(40), dcid_len=8, largest_pn=0),
        lambda: table.open(0, b"\x40" + os.urandom(10), dcid_len=8, largest_pn=0),
        lambda: table.seal_ping(0, b"", 5, 5),
        lambda: table.seal_ping(3, b"", 5, None),
    ):
        with pytest.raises(Exception) as info:  # noqa: B017 - any error, checked below
            call()
        errors.append(str(info.value))
    table.seal_ping(0, b"", 10, None)
    with pytest.raises(ValueError) as info:
        table.seal_ping(0, b"", 10, None)
    errors.append(str(info.value))

    for text in shown + errors:
        for secret in forbidden:
            assert secret not in text, text
    assert all(errors)
