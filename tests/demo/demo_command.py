"""Run ``python -m quic_offload demo`` as a user would, in a fresh interpreter, bounded by a
timeout; shared by the demo tests."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

#: Settings short enough for a test: a 1.5 s idle timeout kills an idle connection well
#: inside a 6 s run unless something keeps it alive.
FAST = ["--interval", "0.5", "--park-after", "0.5", "--idle-timeout", "1.5"]
DEMO = [sys.executable, "-m", "quic_offload", "demo"]


@dataclass
class DemoResult:
    returncode: int
    report: dict[str, Any] | None
    stdout: str
    stderr: str


def run_demo(args: list[str], timeout: float = 60.0) -> DemoResult:
    """Exit status, the JSON report (when ``--json`` was given and printed) and the output."""
    proc = subprocess.run([*DEMO, *args], capture_output=True, text=True, timeout=timeout)
    report = None
    if "--json" in args and proc.stdout.strip():
        report = json.loads(proc.stdout)
    return DemoResult(proc.returncode, report, proc.stdout, proc.stderr)
