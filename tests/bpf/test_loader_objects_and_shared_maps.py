"""Loading real objects: programs by name and section, globals, subprograms and callbacks,
maps shared between objects by name, and clear errors for objects that are not BPF."""

from __future__ import annotations

import struct

import pytest
from recording_env import PROGRAMS, USER_BASE, RecordingEnv

from uring.bpf import ElfFormatError, MapError, load_object
from uring.bpf.isa import BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, OP_CALL, OP_LD_IMM64

FEATURES = PROGRAMS / "selftest" / "features.bpf.o"


def test_globals_become_array_maps_with_their_initial_values() -> None:
    obj = load_object(FEATURES)
    assert {".data", ".bss", ".rodata"} <= set(obj.maps)
    assert obj.maps[".rodata"].frozen
    data = obj.maps[".data"].lookup(0)
    assert struct.pack("<Q", 0x1234) in data  # seed


def test_subprogram_and_callback_are_linked(mode: str) -> None:
    obj = load_object(FEATURES, mode=mode)
    prog = obj.program("iouring")  # by section name
    names = [f.name for f in prog.verified.functions]
    assert names[0] == "features" and {"visit", "mix"} <= set(names)
    insns = prog.verified.insns
    assert any(i.opcode == OP_CALL and i.src == BPF_PSEUDO_CALL for i in insns)
    assert any(i.opcode == OP_LD_IMM64 and i.src == BPF_PSEUDO_FUNC for i in insns)
    env = RecordingEnv()
    prog.run(bytearray(struct.pack("<QII", USER_BASE, 0, 0)), env)
    assert obj.maps[".bss"].lookup(0)[:8] == struct.pack("<Q", 1)  # runs
    assert len(obj.maps["feat_hash"]) == 3  # keys 0, 1, 2 created by the callback


def test_maps_shared_by_name_across_objects() -> None:
    first = load_object(PROGRAMS / "keepalive_scan.bpf.o")
    second = load_object(PROGRAMS / "keepalive_scan.bpf.o", maps=first.maps)
    assert second.maps["conns"] is first.maps["conns"]
    assert second.maps["scan_stats"] is first.maps["scan_stats"]


def test_shared_map_with_a_different_shape_is_refused() -> None:
    from uring.bpf import ArrayMap

    with pytest.raises(MapError, match="differs"):
        load_object(PROGRAMS / "keepalive_scan.bpf.o", maps={"conns": ArrayMap("conns", 4, 8, 1)})


def test_not_a_bpf_object() -> None:
    with pytest.raises(ElfFormatError, match="not a valid ELF"):
        load_object(b"hello")
    with pytest.raises(ElfFormatError, match="cannot read"):
        load_object("/nonexistent/prog.bpf.o")


def test_unknown_program_name_lists_the_programs() -> None:
    obj = load_object(PROGRAMS / "examples" / "pingpong.bpf.o")
    assert set(obj.programs) == {"ping", "pong"}
    with pytest.raises(KeyError, match="several programs"):
        obj.program("iouring")
    with pytest.raises(KeyError, match="ping"):
        obj.program("nope")
