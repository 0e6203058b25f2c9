"""``demo --serve`` and ``demo --connect`` work as two processes with an engine each: the
client run verifies the server's certificate (``--ca``), keeps its connections alive and gets
its echo requests answered; the server, stopped with SIGINT, reports the connections it
served, the requests it echoed, PINGs sent by its engine, and none lost."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from demo_command import DEMO, FAST, run_demo

from quic_offload.self_signed import write_self_signed

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@pytest.mark.slow
def test_serve_and_connect_in_two_processes(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    server = subprocess.Popen(
        [*DEMO, "--serve", "127.0.0.1:0", "--cert", str(cert), "--key", str(key), "--json",
         "--duration", "40", *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port: list[int] = []
    listening = threading.Event()
    stderr_lines: list[str] = []

    def drain_stderr() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            stderr_lines.append(line)
            match = LISTENING.search(line)
            if match and not port:
                port.append(int(match.group(1)))
                listening.set()
        listening.set()

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    try:
        assert listening.wait(20) and port, "".join(stderr_lines)
        client = run_demo(["--connect", f"127.0.0.1:{port[0]}", "--ca", str(cert), "--json",
                           "--connections", "4", "--duration", "5", "--requests", "3",
                           *FAST])
        report = client.report
        assert report is not None, client.stderr
        assert client.returncode == 0, report["verdict"]
        assert report["mode"] == "connect" and report["offload"] == "client"
        assert report["connections"] == report["alive"] == 4
        assert report["pings_sent"] > 0 and report["acks_received"] > 0
        assert report["app_wakeups_while_parked"] == 0
        assert report["requests_ok"] == 3 and report["requests_failed"] == 0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        reader.join(5)
    assert server.stdout is not None
    served = json.loads(server.stdout.read())
    assert server.returncode == 0, served["verdict"]
    assert served["mode"] == "serve" and served["interrupted"] is True
    assert served["connections"] == 4
    assert served["lost"] == 0
    assert served["requests_ok"] == 3
    assert served["pings_sent"] > 0  # the server's engine kept its ends alive too
    assert served["app_wakeups_while_parked"] == 0
