"""Ring engine: io_uring-faithful submission/completion rings with BPF requests.

Read it top-down: :mod:`uring.abi` (the SQE/CQE layout and constants), then the rings, the
request life cycle, the ops and the backends; :mod:`uring.bpf` is the eBPF runtime that
executes ``IORING_OP_BPF`` requests.
"""
