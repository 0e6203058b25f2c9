"""Exceptions of the eBPF runtime.

Load-time problems (a malformed object, a rejected program) raise :class:`BpfLoadError`
subclasses before anything runs; run-time aborts raise :class:`uring.program.BpfRunError`,
which the engine turns into a failed request.
"""

from __future__ import annotations

from uring.program import BpfRunError

__all__ = ["BpfLoadError", "BpfRunError", "ElfFormatError", "MapError", "VerifierError"]


class BpfLoadError(Exception):
    """An object could not be loaded."""


class ElfFormatError(BpfLoadError):
    """The ELF file is not a BPF object this loader understands (the message says why)."""


class MapError(BpfLoadError):
    """A map definition is invalid or clashes with a shared map of the same name."""


class VerifierError(BpfLoadError):
    """The load-time verifier rejected a program.

    ``insn`` is the instruction index the rule failed at (``None`` for whole-program rules),
    ``rule`` a short name of the rule, ``log`` the verifier log up to and including the
    rejection, one line per instruction checked.
    """

    def __init__(self, program: str, insn: int | None, rule: str, message: str,
                 log: list[str] | None = None) -> None:
        where = f"insn {insn}: " if insn is not None else ""
        super().__init__(f"program {program!r} rejected: {where}{message} [{rule}]")
        self.program = program
        self.insn = insn
        self.rule = rule
        self.detail = message
        self.log = log or []
