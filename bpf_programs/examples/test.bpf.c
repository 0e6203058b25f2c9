/* Conformance example `test` (after the 2021 BPF-requests prototype's first example).
 *
 * First run: emit one CQE on CQ 0 and one on CQ 1, reap both back and record what came
 * out, queue a NOP whose completion goes to CQ 0, and wait for one CQE on CQ 0.  The NOP's
 * completion wakes the request for a second run, which copies a value from user memory,
 * adds 2 and copies it back (29 -> 31), then lets the request complete.  So the program
 * runs exactly twice.
 */
#include "io_uring_bpf.h"

#define TEST_EMIT_UD0 0x7e570000ULL
#define TEST_EMIT_UD1 0x7e570001ULL
#define TEST_NOP_UD 0x7e570002ULL

/* The argument block at ctx->user_data (written by the application, updated here). */
struct test_args {
	__u32 in;          /* the application puts 29 here */
	__u32 out;         /* the second run writes in + 2 */
	__u32 runs;        /* runs so far */
	__s32 submit_res;  /* result of bpf_io_uring_submit */
	struct io_uring_cqe reaped[2]; /* what the first run reaped from CQ 0 and CQ 1 */
};

SEC("iouring")
int test(struct io_uring_bpf_ctx *ctx)
{
	struct test_args a;
	struct io_uring_sqe sqe;
	void *uargs = (void *)ctx->user_data;

	if (bpf_copy_from_user(&a, sizeof(a), uargs))
		return 0;
	a.runs++;
	if (a.runs == 1) {
		bpf_io_uring_emit_cqe(ctx, 0, TEST_EMIT_UD0, 1, 0);
		bpf_io_uring_emit_cqe(ctx, 1, TEST_EMIT_UD1, 2, 0);
		bpf_io_uring_reap_cqe(ctx, 0, &a.reaped[0], sizeof(a.reaped[0]));
		bpf_io_uring_reap_cqe(ctx, 1, &a.reaped[1], sizeof(a.reaped[1]));
		io_uring_prep_rw(&sqe, IORING_OP_NOP, -1, 0, 0, 0);
		sqe.user_data = TEST_NOP_UD;
		sqe.cq_idx = 0;
		a.submit_res = bpf_io_uring_submit(ctx, &sqe, sizeof(sqe));
		ctx->wait_nr = 1;
		ctx->wait_idx = 0;
	} else {
		a.out = a.in + 2;
	}
	bpf_copy_to_user(uargs, &a, sizeof(a));
	return 0;
}
