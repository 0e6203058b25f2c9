"""IORING_OP_BPF checks: ioprio/len/addr must be 0 (-EINVAL), an empty or out-of-range slot
is -EFAULT, the table has 100 slots and refuses re-registration with EBUSY until the slot is
unregistered, a bad wait_idx fails the request with -EINVAL, and a program fault fails only
its own request."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from uring.abi import BPF_MAX_PROGRAMS, EBUSY, EFAULT, EINVAL, ENOENT, prep_bpf, prep_nop
from uring.engine import RegistrationError
from uring.program import BpfProgram
from uring.ring import Ring

LoadProgram = Callable[[str], BpfProgram]


def _one(ring: Ring, sqe) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    ring.queue(sqe)
    ring.submit(1, timeout=5)
    cqe = ring.reap_cqe()
    assert cqe is not None
    return cqe.user_data, cqe.res


@pytest.mark.parametrize("field", ["ioprio", "len", "addr"])
def test_nonzero_ioprio_len_addr_is_einval(
    load_program: LoadProgram, ring: Ring, field: str,
) -> None:
    ring.register_bpf(0, load_program("waiter"))
    sqe = prep_bpf(0, user_data=5)
    setattr(sqe, field, 1)
    assert _one(ring, sqe) == (5, -EINVAL)
    assert ring.engine.stats.bpf_runs == 0


@pytest.mark.parametrize("slot", [1, BPF_MAX_PROGRAMS, 1 << 40])
def test_empty_or_out_of_range_slot_is_efault(
    load_program: LoadProgram, ring: Ring, slot: int,
) -> None:
    ring.register_bpf(0, load_program("waiter"))
    assert _one(ring, prep_bpf(slot, user_data=6)) == (6, -EFAULT)


def test_table_has_100_slots_and_refuses_reregistration(
    load_program: LoadProgram, ring: Ring,
) -> None:
    ring.register_bpf(BPF_MAX_PROGRAMS - 1, load_program("waiter"))
    with pytest.raises(RegistrationError) as busy:
        ring.register_bpf(BPF_MAX_PROGRAMS - 1, load_program("faulting"))
    assert busy.value.errno == EBUSY
    assert "already holds program 'waiter'" in str(busy.value)
    with pytest.raises(RegistrationError) as out_of_range:
        ring.register_bpf(BPF_MAX_PROGRAMS, load_program("waiter"))
    assert out_of_range.value.errno == EINVAL
    assert ring.unregister_bpf(BPF_MAX_PROGRAMS - 1).name == "waiter"
    with pytest.raises(RegistrationError) as empty:
        ring.unregister_bpf(BPF_MAX_PROGRAMS - 1)
    assert empty.value.errno == ENOENT
    ring.register_bpf(BPF_MAX_PROGRAMS - 1, load_program("waiter"))
    with pytest.raises(TypeError, match="BpfProgram"):
        ring.register_bpf(3, object())  # type: ignore[arg-type]


def test_invalid_wait_idx_fails_the_request(load_program: LoadProgram, ring: Ring) -> None:
    ring.register_bpf(2, load_program("waiter"))
    args = ring.alloc.alloc(16)
    ring.user.write(args, (1).to_bytes(4, "little") + (3).to_bytes(4, "little"))  # CQ 3
    assert _one(ring, prep_bpf(2, user_data=args)) == (args, -EINVAL)


def test_program_fault_fails_its_request_and_the_engine_goes_on(
    load_program: LoadProgram, ring: Ring,
) -> None:
    ring.register_bpf(7, load_program("faulting"))
    ring.queue(prep_bpf(7, user_data=1))
    ring.queue(prep_nop(user_data=2))
    ring.submit(2, timeout=5)
    assert sorted((c.user_data, c.res) for c in ring.reap_cqes()) == [(1, -13), (2, 0)]
    assert ring.engine.stats.bpf_faults == 1
