"""Bad command lines exit with status 2 before anything starts, and the message names the
option and what to do instead (checked in-process for each case, and once through a real
``python -m quic_offload demo`` process)."""

from __future__ import annotations

import pytest
from demo_command import run_demo

from quic_offload.cli import main

CASES = {
    "serve and connect": (["--serve", "127.0.0.1:0", "--connect", "127.0.0.1:4433"],
                          "exclude each other"),
    "no connections": (["--connections", "0"], "--connections"),
    "too many connections": (["--connections", "999999"], "--connections"),
    "zero interval": (["--interval", "0"], "--interval"),
    "interval beyond idle timeout": (["--interval", "5", "--idle-timeout", "3"],
                                     "shorter than --idle-timeout"),
    "negative park-after": (["--park-after", "-1"], "--park-after"),
    "negative requests": (["--requests", "-1"], "--requests"),
    "endpoint without port": (["--connect", "localhost"], "HOST:PORT"),
    "bare IPv6 endpoint": (["--connect", "::1:4433"], "[ADDR]:PORT"),
    "port zero to connect to": (["--connect", "127.0.0.1:0"], "port must be 1..65535"),
    "cert without key": (["--serve", "127.0.0.1:0", "--cert", "cert.pem"], "--key"),
    "insecure without connect": (["--insecure"], "--connect"),
    "ca with serve": (["--serve", "127.0.0.1:0", "--ca", "ca.pem"], "--connect"),
    "endless run without serve": (["--duration", "0"], "--serve"),
    "client offload while serving": (["--serve", "127.0.0.1:0", "--offload", "client"],
                                      "--offload server"),
    "unknown backend": (["--backend", "nope"], "--backend"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_usage_error_exits_2(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, needle = CASES[case]
    try:
        status = main(["demo", *argv])
    except SystemExit as exc:  # argparse's own checks
        status = exc.code
    assert status == 2
    assert needle in capsys.readouterr().err


def test_process_exit_status_is_2() -> None:
    result = run_demo(["--json", "--connections", "0"], timeout=30)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--connections" in result.stderr
