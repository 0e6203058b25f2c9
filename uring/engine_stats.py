"""Counters an engine keeps about itself, for tests, logs and the metrics exporter.

Plain integers updated on the engine's own thread; readers on other threads see a recent
value (each field is a single Python int, so a read never tears).
"""

from __future__ import annotations


class EngineStats:
    """Engine-wide counters; the per-CQ ones are lists indexed by ``cq_idx``."""

    __slots__ = (
        "sqes_consumed", "helper_sqes", "cqes_posted", "cq_dropped", "cq0_overflowed",
        "cq0_overflow_max", "bpf_runs", "bpf_rearms", "bpf_faults", "bpf_completed",
        "helper_submit_rejected", "invalid_cq_idx", "msg_ring_delivered",
    )

    def __init__(self, n_cqs: int) -> None:
        #: SQEs taken from the SQ ring.
        self.sqes_consumed = 0
        #: SQEs queued by BPF programs through ``bpf_io_uring_submit``.
        self.helper_sqes = 0
        #: CQEs that reached each CQ ring (CQ 0 counts them when they leave the overflow list).
        self.cqes_posted = [0] * n_cqs
        #: CQEs lost because an extra CQ was full (always 0 for CQ 0).
        self.cq_dropped = [0] * n_cqs
        #: CQEs that had to wait on CQ 0's overflow list (none is ever lost).
        self.cq0_overflowed = 0
        #: Longest the overflow list has been.
        self.cq0_overflow_max = 0
        #: Program runs of BPF requests (first runs and re-runs).
        self.bpf_runs = 0
        #: Runs that left ``wait_nr != 0``, i.e. re-armed their request.
        self.bpf_rearms = 0
        #: Runs aborted by the runtime (``BpfRunError``).
        self.bpf_faults = 0
        #: BPF requests that reached their final completion.
        self.bpf_completed = 0
        #: ``bpf_io_uring_submit`` calls refused because the engine's queue was full.
        self.helper_submit_rejected = 0
        #: Requests failed with ``-EINVAL`` on CQ 0 for naming a CQ that does not exist.
        self.invalid_cq_idx = 0
        #: MSG_RING messages this engine delivered into its own CQ 0.
        self.msg_ring_delivered = 0

    def as_dict(self) -> dict[str, int | list[int]]:
        return {name: getattr(self, name) if not isinstance(getattr(self, name), list)
                else list(getattr(self, name)) for name in self.__slots__}

    def __repr__(self) -> str:
        return "EngineStats(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"
