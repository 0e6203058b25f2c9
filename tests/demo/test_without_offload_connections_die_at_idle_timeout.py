"""The demo's compressed settings are a real test: with ``--offload none`` (plain aioquic on
both ends, no keepalive) every connection dies of its idle timeout within the run, the
requests fail, and the exit status is 1."""

from __future__ import annotations

import pytest
from demo_command import FAST, run_demo


@pytest.mark.slow
def test_without_offload_connections_die_at_idle_timeout() -> None:
    result = run_demo(["--json", "--offload", "none", "--connections", "4", "--duration", "4",
                       "--requests", "2", *FAST])
    report = result.report
    assert report is not None, result.stderr
    assert result.returncode == 1
    assert report["alive"] == 0
    assert report["ended"] == {"Idle timeout": 8}  # both ends of all four connections
    assert report["requests_ok"] == 0 and report["requests_failed"] == 2
    assert report["pings_sent"] == 0 and report["backend"] is None
    assert report["verdict"].startswith("FAIL")
