"""Compile every ``*.bpf.c`` of this package into the ``*.bpf.o`` committed next to it.

Usage::

    python -m bpf_programs.build            # rebuild every object
    python -m bpf_programs.build --check    # exit 1 if a committed object is stale

Flags, chosen deliberately:

* ``-target bpf`` (little endian) ``-O2``: what the runtime is written against;
* ``-mcpu=v3``: JMP32 (32-bit compares, so fewer 64-bit masks) and the ALU32 forms; clang 14
  emits no signed division, sign-extending loads/moves or ``gotol`` (those are v4, clang
  >= 18), though the runtime implements them;
* no ``-g``: maps use the legacy ``SEC("maps")`` definitions, so no BTF is needed, and
  objects then carry no absolute paths — the same source gives the same bytes on any
  machine with the same clang major, which is what lets the staleness test compare bytes.

Sources are compiled from their own directory with relative paths, for the same reason.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = PACKAGE_DIR / "include"
#: clang major version the committed objects were built with.
CLANG_MAJOR = 14
CFLAGS = ("-target", "bpf", "-O2", "-mcpu=v3", "-Wall", "-Werror")


class BuildError(RuntimeError):
    """clang failed or is missing; the message carries its diagnostics."""


@dataclass
class BuildResult:
    source: Path
    output: Path
    changed: bool


def sources(root: Path = PACKAGE_DIR) -> list[Path]:
    """Every BPF source of the tree, sorted."""
    return sorted(root.rglob("*.bpf.c"))


def object_path(source: Path) -> Path:
    return source.with_suffix(".o")


def find_clang() -> str | None:
    return shutil.which("clang")


def clang_major(clang: str) -> int | None:
    """Major version of ``clang`` (``None`` if it cannot be told)."""
    try:
        out = subprocess.run([clang, "--version"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"clang version (\d+)", out)
    return int(match.group(1)) if match else None


def compile_source(source: Path, output: Path, clang: str | None = None) -> None:
    clang = clang or find_clang()
    if clang is None:
        raise BuildError("clang not found; install it (Debian: apt-get install -y clang)")
    rel_include = os.path.relpath(INCLUDE_DIR, source.parent)
    cmd = [clang, *CFLAGS, "-I", rel_include, "-c", source.name, "-o", str(output)]
    proc = subprocess.run(cmd, cwd=source.parent, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"clang failed on {source.name}:\n{proc.stderr.strip()}")


def build(check: bool = False, root: Path = PACKAGE_DIR) -> list[BuildResult]:
    """Rebuild every object (or, with ``check``, only compare against the committed ones)."""
    clang = find_clang()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources(root):
            fresh = Path(tmp) / (source.name + ".o")
            compile_source(source, fresh, clang)
            committed = object_path(source)
            data = fresh.read_bytes()
            changed = not committed.exists() or committed.read_bytes() != data
            if changed and not check:
                committed.write_bytes(data)
            results.append(BuildResult(source, committed, changed))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bpf_programs.build",
                                     description="Compile the BPF programs with clang.")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if any committed object is stale")
    args = parser.parse_args(argv)
    try:
        results = build(check=args.check)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    stale = [r for r in results if r.changed]
    for r in results:
        rel = r.output.relative_to(PACKAGE_DIR.parent)
        state = ("STALE" if args.check else "rebuilt") if r.changed else "up to date"
        print(f"{rel}: {state}")
    if args.check and stale:
        print(f"{len(stale)} object(s) stale: run python -m bpf_programs.build",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
