/* Conformance example `write_file` (after the 2021 BPF-requests prototype).
 *
 * Writes `total` blocks of `chunk` bytes (block i from user memory at buf + i*chunk to file
 * offset i*chunk) keeping at most `depth` WRITEs in flight.  Write completions go to
 * completion queue `cq`; each run reaps them all, tops the queue up and waits for the next
 * one, until every block is written.  The in-flight count lives in a map.
 */
#include "io_uring_bpf.h"

#define WF_MAX_DEPTH 16

struct write_file_args {
	__s32 fd;
	__u32 chunk;
	__u64 buf;
	__u32 total;
	__u32 depth;
	__u32 cq;
	__u32 pad;
};

struct write_file_state {
	__u32 next;         /* next block to submit */
	__u32 inflight;     /* WRITEs submitted and not yet reaped */
	__u32 done;         /* WRITEs reaped */
	__u32 max_inflight; /* highest in-flight count seen */
	__u32 errors;       /* completions whose res was not `chunk` */
	__u32 runs;
};

BPF_MAP(write_file_state, BPF_MAP_TYPE_ARRAY, __u32, struct write_file_state, 1);

SEC("iouring")
int write_file(struct io_uring_bpf_ctx *ctx)
{
	struct write_file_args a;
	struct io_uring_cqe cqe;
	struct io_uring_sqe sqe;
	struct write_file_state *s;
	__u32 key = 0;
	int i;

	if (bpf_copy_from_user(&a, sizeof(a), (void *)ctx->user_data))
		return 0;
	s = bpf_map_lookup_elem(&write_file_state, &key);
	if (!s)
		return 0;
	s->runs++;
	for (i = 0; i < WF_MAX_DEPTH; i++) {
		if (bpf_io_uring_reap_cqe(ctx, a.cq, &cqe, sizeof(cqe)) != 0)
			break;
		s->inflight--;
		s->done++;
		if (cqe.res != (__s32)a.chunk)
			s->errors++;
	}
	for (i = 0; i < WF_MAX_DEPTH; i++) {
		if (s->inflight >= a.depth || s->next >= a.total)
			break;
		io_uring_prep_rw(&sqe, IORING_OP_WRITE, a.fd, a.buf + (__u64)s->next * a.chunk,
				 a.chunk, (__u64)s->next * a.chunk);
		sqe.user_data = s->next;
		sqe.cq_idx = a.cq;
		if (bpf_io_uring_submit(ctx, &sqe, sizeof(sqe)))
			break;
		s->next++;
		s->inflight++;
	}
	if (s->inflight > s->max_inflight)
		s->max_inflight = s->inflight;
	if (s->done < a.total) {
		ctx->wait_nr = 1;
		ctx->wait_idx = a.cq;
	}
	return 0;
}
