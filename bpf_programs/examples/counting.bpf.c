/* Conformance example `counting` (after the 2021 BPF-requests prototype).
 *
 * Every run counts itself in a map, reaps the TIMEOUT completion that woke it (if any) and,
 * until `limit` runs are reached, queues a new TIMEOUT whose completion goes to completion
 * queue `cq` and waits for it.  With limit 11 and a 200 ms timespec the request runs 11
 * times over about two seconds and then completes.
 */
#include "io_uring_bpf.h"

struct counting_args {
	__u64 ts_addr; /* user address of a struct __kernel_timespec */
	__u32 limit;   /* runs before the request completes */
	__u32 cq;      /* completion queue of the timeouts */
};

enum { COUNT_RUNS, COUNT_REAPED, COUNT_TIMED_OUT, COUNT_NR };

BPF_MAP(counting_stats, BPF_MAP_TYPE_ARRAY, __u32, __u64, COUNT_NR);

static __always_inline void bump(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&counting_stats, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("iouring")
int counting(struct io_uring_bpf_ctx *ctx)
{
	struct counting_args a;
	struct io_uring_cqe cqe;
	struct io_uring_sqe sqe;
	__u32 key = COUNT_RUNS;
	__u64 *runs;

	if (bpf_copy_from_user(&a, sizeof(a), (void *)ctx->user_data))
		return 0;
	bump(COUNT_RUNS);
	if (bpf_io_uring_reap_cqe(ctx, a.cq, &cqe, sizeof(cqe)) == 0) {
		bump(COUNT_REAPED);
		if (cqe.res == -ETIME)
			bump(COUNT_TIMED_OUT);
	}
	runs = bpf_map_lookup_elem(&counting_stats, &key);
	if (!runs || *runs >= a.limit)
		return 0;
	io_uring_prep_rw(&sqe, IORING_OP_TIMEOUT, -1, a.ts_addr, 1, 0);
	sqe.user_data = *runs;
	sqe.cq_idx = a.cq;
	if (bpf_io_uring_submit(ctx, &sqe, sizeof(sqe)))
		return 0;
	ctx->wait_nr = 1;
	ctx->wait_idx = a.cq;
	return 0;
}
