"""Every committed BPF object is what the build command produces from its source now.

Rebuilds with clang into a temporary directory and compares bytes; skipped (with the reason)
when clang is missing or of another major version than the one the objects were built with,
since another clang emits different but equally valid code.
"""

from __future__ import annotations

import pytest

from bpf_programs import build


def test_every_source_has_an_object() -> None:
    for source in build.sources():
        assert build.object_path(source).exists(), (
            f"{source.name}: run python -m bpf_programs.build")


def test_committed_objects_match_a_fresh_build() -> None:
    clang = build.find_clang()
    if clang is None:
        pytest.skip("clang not installed: cannot rebuild the BPF objects")
    major = build.clang_major(clang)
    if major != build.CLANG_MAJOR:
        pytest.skip(f"clang {major} differs from clang {build.CLANG_MAJOR} used for the "
                    "committed objects; byte comparison only holds for the same major")
    stale = [r.output.name for r in build.build(check=True) if r.changed]
    assert not stale, f"stale objects {stale}: run python -m bpf_programs.build"
