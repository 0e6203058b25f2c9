"""The Python mirror of the offload ABI (quic_offload/offload_abi.py) agrees with the C header
the programs are compiled against: every struct's size and every field's offset, checked by
clang itself (skipped, with the reason, where clang is not installed)."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from quic_offload import offload_abi
from quic_offload.offload_abi import STRUCTS

INCLUDE = Path(offload_abi.__file__).resolve().parents[1] / "bpf_programs" / "include"


def layout_assertions() -> str:
    lines = ['#include "quic_offload.h"']
    for c_name, cls in STRUCTS.items():
        lines.append(f"_Static_assert(sizeof(struct {c_name}) == {ctypes.sizeof(cls)}, "
                     f'"sizeof {c_name}");')
        for field, _ in cls._fields_:
            if field in getattr(cls, "_anonymous_", ()):
                continue
            offset = getattr(cls, field).offset
            lines.append(f"_Static_assert(__builtin_offsetof(struct {c_name}, {field}) == "
                         f'{offset}, "{c_name}.{field}");')
    return "\n".join(lines) + "\n"


def test_python_mirror_matches_c_header(tmp_path: Path) -> None:
    clang = shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed (apt-get install clang)")
    source = tmp_path / "layout.c"
    source.write_text(layout_assertions())
    result = subprocess.run([clang, "-target", "bpf", "-fsyntax-only", "-I", str(INCLUDE),
                             str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_constants_match_header() -> None:
    header = (INCLUDE / "quic_offload.h").read_text()
    for name in ("MAX_CONNS", "MAX_CID_LEN", "MAX_RANGES", "WHEEL_SLOTS",
                 "CQ_APP", "CQ_TIMER", "CQ_RX", "CQ_SEND", "SEAL_PING", "SEAL_ACK",
                 "SEAL_PING_ACK"):
        value = getattr(offload_abi, name)
        assert re.search(rf"#define QO_{name}\s+{value}\b", header), name
    for reason in offload_abi.WakeReason:
        assert re.search(rf"#define QO_WAKE_{reason.name}\s+{reason.value}\b", header), reason
    for helper in ("KEY_INSTALL", "SEAL", "OPEN", "CHECK_RESET", "KEY_EXPORT", "KEY_WIPE",
                   "KEY_DISCARD_PREVIOUS", "MATCH_RESET"):
        assert f"BPF_HELPER({getattr(offload_abi, 'HELPER_' + helper)}," in header, helper
