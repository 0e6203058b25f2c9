"""Ring engine: io_uring-faithful submission/completion rings with BPF requests.

Read it top-down:

* :mod:`uring.abi` -- the SQE/CQE layout, opcodes and flags (the kernel's names and numbers);
* :mod:`uring.ring_memory`, :mod:`uring.rings` -- the shared region and the SQ/CQ rings in it;
* :mod:`uring.user_memory` (+ ``user_allocator``, ``user_structs``, ``buf_ring``) -- the memory
  SQEs and programs address by pointer;
* :mod:`uring.requests`, :mod:`uring.ops` -- a request's life cycle and what each op does;
* :mod:`uring.backends` -- the real kernel ring (``io_uring``) and ``portable`` (epoll);
* :mod:`uring.engine` (+ ``bpf_env``, ``engine_stats``) -- the "kernel side" that runs it all;
* :mod:`uring.ring` -- the application side;
* :mod:`uring.program` -- the contract with :mod:`uring.bpf`, the eBPF runtime that executes
  ``IORING_OP_BPF`` requests.
"""
