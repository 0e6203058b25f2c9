"""The engine side of the offload: the four compiled programs, their shared maps, their slots.

``adopt``, ``keepalive``, ``rx`` and ``reclaim`` are separate objects
(``bpf_programs/*.bpf.o``) that define the same maps; they are loaded with one set of maps
shared by name, so all four see one connection table.  They are registered in fixed slots of
the engine's program table (:data:`PROGRAM_SLOTS`), which is what the application side puts
in ``sqe.off``.  The engine must run with :class:`~quic_offload.shim_helpers.ShimEnv` as its
helper environment.

Nothing here touches sockets or threads: this module is the same for an engine embedded in
the application's process and for one in a separate daemon.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from quic_offload.offload_abi import CONN_FREE, QoConn, QoStats
from quic_offload.shim_helpers import ShimEnv, offload_helpers
from uring.bpf import load_object
from uring.bpf.bpf_object import BpfObject, LoadedProgram
from uring.bpf.maps import Map
from uring.engine import Engine

PROGRAM_DIR = Path(__file__).resolve().parents[1] / "bpf_programs"

#: Program-table slot of each offload program.
PROGRAM_SLOTS: dict[str, int] = {"adopt": 10, "keepalive": 11, "rx": 12, "reclaim": 13}


@dataclass
class OffloadPrograms:
    """The loaded programs and the maps they share."""

    objects: dict[str, BpfObject]
    programs: dict[str, LoadedProgram]
    maps: dict[str, Map]

    def stats(self) -> QoStats:
        """A snapshot of the engine-wide counters (``qo_stats_map``)."""
        return QoStats.from_bytes(self.maps["qo_stats_map"].lookup(0))

    def conn(self, slot: int) -> QoConn:
        """A copy of one connection's engine state (``qo_conns[slot]``)."""
        return QoConn.from_bytes(self.maps["qo_conns"].lookup(slot))

    def parked(self) -> Iterator[tuple[int, QoConn]]:
        """``(slot, state)`` of every connection the engine holds (parked or waking)."""
        for key, value in self.maps["qo_conns"].items():
            conn = QoConn.from_bytes(value)
            if conn.state != CONN_FREE:
                yield int.from_bytes(key, "little"), conn


def load_offload_programs(mode: str = "translator") -> OffloadPrograms:
    """Load and verify the four offload objects with shared maps."""
    helpers = offload_helpers()
    objects: dict[str, BpfObject] = {}
    programs: dict[str, LoadedProgram] = {}
    maps: dict[str, Map] | None = None
    for name in PROGRAM_SLOTS:
        obj = load_object(PROGRAM_DIR / f"{name}.bpf.o", helpers=helpers, mode=mode, maps=maps)
        maps = obj.maps if maps is None else maps
        objects[name] = obj
        programs[name] = obj.programs[name]
    assert maps is not None
    return OffloadPrograms(objects, programs, dict(maps))


def attach_offload_programs(engine: Engine, programs: OffloadPrograms) -> None:
    """Register the programs in their slots of ``engine`` (which must use :class:`ShimEnv`)."""
    if not isinstance(engine.env, ShimEnv):
        raise TypeError(
            f"the engine's helper environment is {type(engine.env).__name__}; create it with "
            f"env_factory=ShimEnv so the programs can reach the crypto shim"
        )
    for name, slot in PROGRAM_SLOTS.items():
        engine.register_bpf(slot, programs.programs[name])
