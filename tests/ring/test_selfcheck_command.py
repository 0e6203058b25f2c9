"""``quic-offload selfcheck --backend <b>`` passes on every available backend, printing one
``ok`` line per check (NOP, TIMEOUT, SENDMSG+RECVMSG, built-in BPF, compiled example)."""

from __future__ import annotations

import pytest

from quic_offload.cli import main


@pytest.mark.parametrize("threaded", [False, True])
def test_selfcheck_passes(backend: str, threaded: bool, capsys: pytest.CaptureFixture[str]
                          ) -> None:
    argv = ["selfcheck", "--backend", backend] + (["--threaded"] if threaded else [])
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    checks = [line.split()[1] for line in lines if line.startswith("ok ")]
    assert checks == ["backend", "ring", "nop", "timeout", "sendmsg+recvmsg", "bpf", "bpf-vm"]
    assert lines[-1] == "selfcheck passed"
    assert f"{backend} backend" in lines[1]
