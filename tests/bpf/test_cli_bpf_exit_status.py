"""`quic-offload bpf verify|dump|run-example`: output and exit status (0 ok, 1 fail, 2 usage)."""

from __future__ import annotations

from recording_env import PROGRAMS

from quic_offload.cli import main
from uring.bpf import isa


def test_verify_accepts_a_good_object(capsys) -> None:
    assert main(["bpf", "verify", str(PROGRAMS / "examples" / "test.bpf.o")]) == 0
    assert "ACCEPTED: 1 program(s): test" in capsys.readouterr().out


def test_verify_rejects_a_bad_object(tmp_path, capsys) -> None:
    data = bytearray((PROGRAMS / "examples" / "test.bpf.o").read_bytes())
    exit_insn = bytes([isa.OP_EXIT, 0, 0, 0, 0, 0, 0, 0])
    at = data.rfind(exit_insn)
    data[at] = 0xFF  # the program's exit becomes an invalid opcode
    bad = tmp_path / "bad.bpf.o"
    bad.write_bytes(bytes(data))
    assert main(["bpf", "verify", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "REJECTED" in out and "[opcode]" in out


def test_dump_shows_maps_disassembly_and_python(capsys) -> None:
    assert main(["bpf", "dump", "--python", str(PROGRAMS / "examples" / "counting.bpf.o")]) == 0
    out = capsys.readouterr().out
    assert "counting_stats: array" in out
    assert "call bpf_io_uring_submit#164" in out
    assert "def F0(" in out


def test_run_example_reports_success(capsys) -> None:
    assert main(["bpf", "run-example", "pingpong", "--backend", "portable"]) == 0
    assert "OK" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys) -> None:
    assert main(["bpf", "run-example", "nope"]) == 2
    assert main(["bpf"]) == 2
