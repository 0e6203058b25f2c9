"""park_blockers() names what stands between an aioquic connection and the engine: not yet
connected, data or PINGs pending or in flight, a close, a key update; a connection that has
settled has no blockers."""

from __future__ import annotations

from offload_scenario import SansIoPair

from quic_offload.aioquic.quiescence import park_blockers


def test_fresh_connection_cannot_park(certs) -> None:
    from aioquic.quic.connection import QuicConnection
    from offload_scenario import client_configuration

    assert park_blockers(QuicConnection(configuration=client_configuration())) == \
        ["state is FIRSTFLIGHT"]


def test_settled_connection_can_park_and_pending_work_blocks_it(certs) -> None:
    pair = SansIoPair(certs)
    pair.drain_events()
    assert park_blockers(pair.client) == []
    assert park_blockers(pair.server) == []

    pair.client.send_stream_data(0, b"payload")
    assert park_blockers(pair.client) == ["stream 0 has data pending"]
    pair.exchange()  # sent, not yet acknowledged
    assert "ack-eliciting packets in flight" in park_blockers(pair.client)
    pair.settle()
    pair.drain_events()
    assert park_blockers(pair.client) == []

    pair.client.send_ping(7)
    assert park_blockers(pair.client) == ["PING pending"]
    pair.settle()
    pair.drain_events()
    assert park_blockers(pair.client) == []

    pair.client.request_key_update()
    assert park_blockers(pair.client) == ["key update in progress"]
    pair.settle()
    pair.drain_events()

    pair.server.close(error_code=0, reason_phrase="bye")
    assert park_blockers(pair.server)[0] in ("closing", "state is CLOSING")


def test_undelivered_events_block_parking(certs) -> None:
    pair = SansIoPair(certs)
    pair.drain_events()
    pair.client.send_stream_data(0, b"x", end_stream=True)
    pair.settle()
    assert "events not yet delivered to the application" in park_blockers(pair.server)
