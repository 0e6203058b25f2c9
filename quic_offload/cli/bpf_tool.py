"""``quic-offload bpf``: inspect BPF objects as bpftool would, and run the examples.

* ``verify OBJ``: load and verify every program; prints the verifier log; exit 0 when all
  are accepted, 1 when one is rejected (or the object cannot be read).
* ``dump OBJ``: maps, then the disassembly of every program (``--python`` adds the Python
  source the translator generates).
* ``run-example NAME``: run one of the 2021 prototype's examples on a real ring and print
  its result; exit 0 when it reached its expected result, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from uring.bpf import BpfLoadError, load_object
from uring.bpf.errors import VerifierError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bpf", help="verify, dump and run BPF programs",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bpf_command", metavar="ACTION")
    verify = sub.add_parser("verify", help="verifier verdict and log for every program")
    verify.add_argument("object", help="compiled BPF object (*.bpf.o)")
    verify.set_defaults(func=cmd_verify)
    dump = sub.add_parser("dump", help="maps and disassembly of every program")
    dump.add_argument("object", help="compiled BPF object (*.bpf.o)")
    dump.add_argument("--python", action="store_true",
                      help="also print the Python source the translator generates")
    dump.set_defaults(func=cmd_dump)
    run = sub.add_parser("run-example", help="run one conformance example on a ring")
    run.add_argument("name", help="test, counting, pingpong or write_file")
    run.add_argument("--backend", default="auto", choices=("auto", "portable", "io_uring"))
    run.add_argument("--mode", default="translator", choices=("translator", "interpreter"))
    run.set_defaults(func=cmd_run_example)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        obj = load_object(args.object, mode="interpreter")
    except VerifierError as exc:
        print("\n".join(exc.log))
        print(f"REJECTED: {exc}")
        return EXIT_FAIL
    except BpfLoadError as exc:
        print(f"REJECTED: {exc}")
        return EXIT_FAIL
    for prog in obj.programs.values():
        print("\n".join(prog.log))
    names = ", ".join(obj.programs)
    print(f"ACCEPTED: {len(obj.programs)} program(s): {names}")
    return EXIT_OK


def cmd_dump(args: argparse.Namespace) -> int:
    try:
        obj = load_object(args.object, mode="interpreter")
    except BpfLoadError as exc:
        print(f"cannot load {args.object}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    print(f"object {args.object}")
    print("maps:")
    for m in obj.maps.values():
        print(f"  {m.describe()}")
    for prog in obj.programs.values():
        v = prog.verified
        print(f"\nprogram {prog.name} (section {prog.section}), {len(v.insns)} insns")
        for f in v.functions:
            print(f"  function {f.name}: insns {f.start}..{f.end - 1}")
        for line in prog.disassemble():
            print(f"  {line}")
        if args.python:
            print(f"\n# --- translated Python for {prog.name} ---")
            print(prog.translated_source())
    return EXIT_OK


def cmd_run_example(args: argparse.Namespace) -> int:
    from uring.bpf.conformance import EXAMPLES, run_example

    if args.name not in EXAMPLES:
        print(f"no example {args.name!r}; examples: {', '.join(EXAMPLES)}", file=sys.stderr)
        return EXIT_USAGE
    result = run_example(args.name, args.backend, args.mode)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_FAIL
