/* The ring side of a BPF request: the program context, SQE/CQE layouts, opcodes and flags,
 * and the io_uring helpers (IDs 164..167 of the BPF-requests design).
 *
 * Layouts match uring/abi.py byte for byte: a 64-byte SQE with the completion-queue index
 * `cq_idx` (u16) at byte 48, a 16-byte CQE.
 */
#ifndef QUIC_OFFLOAD_IO_URING_BPF_H
#define QUIC_OFFLOAD_IO_URING_BPF_H

#include "bpf_base.h"

/* The context of one run.  The engine zeroes it before every run and copies the request's
 * user_data in; programs use user_data as the address of their argument block in user
 * memory.  Leaving wait_nr != 0 keeps the request alive: it runs again, from the start with
 * a fresh context, once completion queue wait_idx holds at least wait_nr unreaped CQEs. */
struct io_uring_bpf_ctx {
	__u64 user_data;
	__u32 wait_nr;
	__u32 wait_idx;
};

struct io_uring_sqe {
	__u8 opcode;
	__u8 flags;
	__u16 ioprio;
	__s32 fd;
	__u64 off;
	__u64 addr;
	__u32 len;
	__u32 op_flags; /* rw_flags, msg_flags, timeout_flags, cancel_flags, ... */
	__u64 user_data;
	__u16 buf_index;
	__u16 personality;
	__u32 file_index;
	__u16 cq_idx; /* completion queue that receives this request's CQE */
	__u16 __pad[7];
};

struct io_uring_cqe {
	__u64 user_data;
	__s32 res;
	__u32 flags;
};

/* What TIMEOUT's addr points to. */
struct __kernel_timespec {
	__s64 tv_sec;
	__s64 tv_nsec;
};

_Static_assert(sizeof(struct io_uring_bpf_ctx) == 16, "ctx is 16 bytes");
_Static_assert(sizeof(struct io_uring_sqe) == 64, "SQE is 64 bytes");
_Static_assert(__builtin_offsetof(struct io_uring_sqe, cq_idx) == 48, "cq_idx at byte 48");
_Static_assert(sizeof(struct io_uring_cqe) == 16, "CQE is 16 bytes");

/* Opcodes (the kernel's numbers; IORING_OP_BPF is the engine's own). */
#define IORING_OP_NOP 0
#define IORING_OP_READV 1
#define IORING_OP_WRITEV 2
#define IORING_OP_SENDMSG 9
#define IORING_OP_RECVMSG 10
#define IORING_OP_TIMEOUT 11
#define IORING_OP_TIMEOUT_REMOVE 12
#define IORING_OP_ASYNC_CANCEL 14
#define IORING_OP_LINK_TIMEOUT 15
#define IORING_OP_READ 22
#define IORING_OP_WRITE 23
#define IORING_OP_SEND 26
#define IORING_OP_RECV 27
#define IORING_OP_MSG_RING 40
#define IORING_OP_BPF 0xBF

/* SQE flags. */
#define IOSQE_FIXED_FILE (1U << 0)
#define IOSQE_IO_DRAIN (1U << 1)
#define IOSQE_IO_LINK (1U << 2)
#define IOSQE_IO_HARDLINK (1U << 3)
#define IOSQE_ASYNC (1U << 4)
#define IOSQE_BUFFER_SELECT (1U << 5)
#define IOSQE_CQE_SKIP_SUCCESS (1U << 6)

/* TIMEOUT op_flags. */
#define IORING_TIMEOUT_ABS (1U << 0)
#define IORING_TIMEOUT_ETIME_SUCCESS (1U << 5)
#define IORING_TIMEOUT_MULTISHOT (1U << 6)

/* CQE flags. */
#define IORING_CQE_F_BUFFER (1U << 0)
#define IORING_CQE_F_MORE (1U << 1)

/* Errno values programs compare helper results and CQE res against (negated). */
#define EPERM 1
#define ENOENT 2
#define EINTR 4
#define EAGAIN 11
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EINVAL 22
#define ENOSPC 28
#define E2BIG 7
#define ETIME 62
#define ECANCELED 125

/* Queue one SQE (len must be sizeof(struct io_uring_sqe)); 0 or a negative errno. */
BPF_HELPER(164, long, bpf_io_uring_submit, (struct io_uring_bpf_ctx * ctx,
					     struct io_uring_sqe *sqe, __u32 len));
/* Post a CQE on completion queue cq_idx; 0 or a negative errno (-EINVAL: no such CQ). */
BPF_HELPER(165, long, bpf_io_uring_emit_cqe, (struct io_uring_bpf_ctx * ctx, __u32 cq_idx,
					       __u64 user_data, __s32 res, __u32 flags));
/* Move the oldest CQE of cq_idx into *cqe (len >= 16); 0, or -ENOENT when it is empty. */
BPF_HELPER(166, long, bpf_io_uring_reap_cqe, (struct io_uring_bpf_ctx * ctx, __u32 cq_idx,
					       struct io_uring_cqe *cqe, __u32 len));
/* Copy size bytes from src to user memory at user_ptr; 0 or a negative errno. */
BPF_HELPER(167, long, bpf_copy_to_user, (void *user_ptr, const void *src, __u32 size));

/* Fill *sqe with a request that has no fields beyond the common ones set. */
static __always_inline void io_uring_prep_rw(struct io_uring_sqe *sqe, __u8 op, __s32 fd,
					     __u64 addr, __u32 len, __u64 off)
{
	__builtin_memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = addr;
	sqe->len = len;
	sqe->off = off;
}

#endif /* QUIC_OFFLOAD_IO_URING_BPF_H */
