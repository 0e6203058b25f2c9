"""A request's life: from an SQE to its final CQE, through links, link timeouts and re-runs.

Every SQE the engine consumes (from the SQ or from a BPF program's ``bpf_io_uring_submit``)
becomes one :class:`Request`.  Its states::

    QUEUED ──issue──▶ ISSUED ──(op finishes / is cancelled)──▶ DONE
                        │  ▲
          (BPF run) RUNNING ┘   a BPF request is RUNNING while its program executes and
                                ISSUED while it waits for CQEs to re-run

Rules the engine applies when a request reaches DONE (see :mod:`uring.engine`):

* The CQE ``(user_data, res, flags)`` goes to the request's CQ, unless
  ``IOSQE_CQE_SKIP_SUCCESS`` is set and the request did not fail.  "Failed" is decided by the
  op: normally ``res < 0``; a TIMEOUT that expires fails unless
  ``IORING_TIMEOUT_ETIME_SUCCESS``; a short READ/WRITE fails too.
* ``IOSQE_IO_LINK``: the next request of the chain is issued only once this one is DONE, and
  only if it did not fail; otherwise every remaining request of the chain completes with
  ``-ECANCELED``.  ``IOSQE_IO_HARDLINK`` issues the next one even after a failure.
* A ``LINK_TIMEOUT`` is not a chain member of its own: it attaches to the request before it
  and is armed when that request is issued.  If the guarded request finishes first, the link
  timeout completes with ``-ECANCELED`` (not a failure); if the timer fires first, the link
  timeout completes with ``-ETIME`` and the guarded request is cancelled (``-ECANCELED``,
  which fails the rest of the chain).
* Multishot requests post CQEs with ``IORING_CQE_F_MORE`` while they stay ISSUED; the final
  CQE lacks the flag.
* A BPF request whose program leaves ``ctx.wait_nr != 0`` stays ISSUED and re-runs later
  (:mod:`uring.ops.bpf`); it reaches DONE only after a run that leaves ``wait_nr == 0``.
"""

from __future__ import annotations

from uring.abi import IOSQE_IO_HARDLINK, IOSQE_IO_LINK

QUEUED = 0
ISSUED = 1
RUNNING = 2
DONE = 3

#: How an ISSUED request waits, which decides how a cancel reaches it.
WAIT_NONE = 0
WAIT_IO = 1       # inside the backend (socket, file, kernel ring)
WAIT_TIMER = 2    # on an engine timer (TIMEOUT)
WAIT_BPF = 3      # a BPF request waiting for CQEs

LINK_FLAGS = IOSQE_IO_LINK | IOSQE_IO_HARDLINK

STATE_NAMES = {QUEUED: "queued", ISSUED: "issued", RUNNING: "running", DONE: "done"}


class Request:
    """One in-flight SQE plus the engine's bookkeeping for it.

    The SQE fields are copied out of the ring at consumption time (the application may reuse
    the slot as soon as the SQ head moves).  ``io`` holds op-specific state kept alive until
    the final completion (a kernel-facing msghdr, a timeout's deadline, ...).
    """

    __slots__ = (
        "opcode", "flags", "ioprio", "fd", "off", "addr", "len", "op_flags", "user_data",
        "buf_index", "file_index", "cq_idx",
        "state", "wait", "failed", "prep_error", "link", "link_timeout", "guarded",
        "io", "token", "timer", "watch", "runs", "tracked",
    )

    def __init__(self, sqe: tuple) -> None:
        (self.opcode, self.flags, self.ioprio, self.fd, self.off, self.addr, self.len,
         self.op_flags, self.user_data, self.buf_index, _personality, self.file_index,
         self.cq_idx) = sqe
        self.state = QUEUED
        self.wait = WAIT_NONE
        self.failed = False
        self.prep_error = 0
        self.link: Request | None = None
        self.link_timeout: Request | None = None
        self.guarded: Request | None = None
        self.io: object = None
        self.token = 0
        self.timer: object = None
        self.watch: list | None = None
        self.runs = 0
        self.tracked = False

    def __repr__(self) -> str:
        from uring.abi import OPCODE_NAMES

        return (f"Request({OPCODE_NAMES.get(self.opcode, self.opcode)} "
                f"user_data={self.user_data} cq_idx={self.cq_idx} "
                f"state={STATE_NAMES.get(self.state, self.state)})")


class ChainBuilder:
    """Groups the requests of one submission batch into link chains.

    The kernel starts a chain only when its last SQE (the first one without a link flag)
    has been seen; a batch that ends inside a chain closes it.  :meth:`add` returns the chain
    head to issue, or ``None`` while the chain is still open.  A ``LINK_TIMEOUT`` attaches to
    the request before it; one with nothing to attach to is returned with ``prep_error``
    set, so the caller fails it.
    """

    __slots__ = ("head", "tail")

    def __init__(self) -> None:
        self.head: Request | None = None
        self.tail: Request | None = None

    def add(self, req: Request, is_link_timeout: bool) -> Request | None:
        from uring.abi import EINVAL

        tail = self.tail
        if is_link_timeout:
            if tail is None or tail.link_timeout is not None:
                # nothing linked before it (or already guarded): fail it on its own
                req.prep_error = EINVAL
                return req
            tail.link_timeout = req
            req.guarded = tail
            if req.flags & LINK_FLAGS:
                return None
            return self.close()
        if tail is None:
            self.head = self.tail = req
        else:
            tail.link = req
            self.tail = req
        if req.flags & LINK_FLAGS:
            return None
        return self.close()

    def close(self) -> Request | None:
        head = self.head
        self.head = self.tail = None
        return head
