"""Offloading only one end works against plain aioquic on the other: with ``--offload
server`` the server's engine keeps plain clients alive, with ``--offload client`` the
clients' engine keeps a plain server alive; requests resume the parked end."""

from __future__ import annotations

import pytest
from demo_command import FAST, run_demo


@pytest.mark.slow
@pytest.mark.parametrize("side", ["server", "client"])
def test_one_side_offloaded(side: str) -> None:
    result = run_demo(["--json", "--offload", side, "--backend", "portable", "--loop",
                       "asyncio", "--connections", "4", "--duration", "5", "--requests", "2",
                       *FAST])
    report = result.report
    assert report is not None, result.stderr
    assert result.returncode == 0, report["verdict"]
    assert report["loop"] == "asyncio"
    assert report["alive"] == 4 and report["ended"] == {}
    assert set(report["parked_by_side"]) == {side}
    assert report["offloaded_ends"] == 4
    assert report["pings_sent"] > 0 and report["acks_received"] > 0
    assert report["acks_sent"] == 0  # the plain peer never PINGs
    assert report["app_wakeups_while_parked"] == 0
    assert report["requests_ok"] == 2
    if side == "server":
        assert report["wakes"]["DATA"] >= 1  # the request reached a parked server end
    else:
        assert report["local_sends_while_parked"] >= 1  # the request resumed a parked client
