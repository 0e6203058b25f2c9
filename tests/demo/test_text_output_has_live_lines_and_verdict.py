"""Without ``--json`` the demo prints what it sets up, one live line per second when stdout
is not a terminal (alive / parked / PINGs / ACKs / wakes / app wake-ups), the wakes by reason
and a final ``verdict: OK`` line; stderr stays empty."""

from __future__ import annotations

import re

import pytest
from demo_command import FAST, run_demo

LIVE = re.compile(r"^\[\s*\d+\.\ds\]\s+alive (\d+)/3\s+parked (\d+)/6\s+PINGs (\d+)\s+"
                  r"ACKs rx (\d+) tx (\d+)\s+wakes (\d+)\s+app wake-ups (\d+)$")


@pytest.mark.slow
def test_text_output_has_live_lines_and_verdict() -> None:
    result = run_demo(["--connections", "3", "--duration", "4", "--requests", "1", *FAST])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("quic-offload demo: 3 QUIC connections on loopback")
    live = [m for m in map(LIVE.match, lines) if m]
    assert len(live) >= 4  # about one a second, plus the final one
    last = live[-1]
    assert last.group(1) == "3" and last.group(2) == "6"
    assert int(last.group(3)) > 0 and last.group(7) == "0"
    assert any("sending 1 echo request(s)" in line for line in lines)
    assert lines[-1].startswith("verdict: OK -- 3/3 connections alive")
