"""The in-process demo (both ends offloaded to one engine) keeps every connection alive past
several idle timeouts on each backend: the engine sends and ACKs PINGs, no loop callback
reaches a parked connection, the post-park echo requests are all answered, exit status 0."""

from __future__ import annotations

import pytest
from demo_command import FAST, run_demo


@pytest.mark.slow
def test_demo_keeps_idle_connections_alive(backend: str) -> None:
    result = run_demo(["--json", "--backend", backend, "--connections", "6", "--duration", "6",
                       "--requests", "4", "--seed", "1", *FAST])
    report = result.report
    assert report is not None, result.stderr
    assert result.returncode == 0, report["verdict"]
    assert report["backend"] == backend
    assert report["connections"] == report["alive"] == 6
    assert report["clients_alive"] == report["server_alive"] == 6
    assert report["ended"] == {}
    assert report["pings_sent"] > 0
    assert report["acks_received"] > 0
    assert report["acks_sent"] > 0  # each side ACKs the other side's PINGs
    assert report["app_wakeups_while_parked"] == 0
    assert report["requests"] == report["requests_ok"] == 4
    assert report["requests_failed"] == 0
    assert report["wakes"]["DATA"] >= 1  # a parked server end woke for a request
    assert report["resumes"] >= 4
    assert report["parks"] >= 12  # every end (6 clients, 6 server sides) parked
    assert report["ok"] is True and report["verdict"].startswith("OK")
