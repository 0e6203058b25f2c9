/* Conformance example `pingpong` (after the 2021 BPF-requests prototype).
 *
 * Two BPF requests bounce a counter: `ping` waits on CQ 1 and answers on CQ 2, `pong`
 * waits on CQ 2 and answers on CQ 1.  Each reaps the counter (a CQE's res), and answers
 * with counter + 1 until PINGPONG_LIMIT is reached.  A NOP with cq_idx = 1 starts the game
 * (its CQE carries res 0).  Per side, a map keeps the number of runs and the last counter.
 */
#include "io_uring_bpf.h"

#define PINGPONG_LIMIT 20

struct side_state {
	__u32 runs;
	__s32 last;
	__u32 answered;
	__u32 pad;
};

BPF_MAP(pingpong_sides, BPF_MAP_TYPE_ARRAY, __u32, struct side_state, 2);

static __always_inline int play(struct io_uring_bpf_ctx *ctx, __u32 side, __u32 my_cq,
				__u32 peer_cq)
{
	struct io_uring_cqe cqe;
	struct side_state *s = bpf_map_lookup_elem(&pingpong_sides, &side);
	__s32 value;

	if (!s)
		return 0;
	s->runs++;
	if (bpf_io_uring_reap_cqe(ctx, my_cq, &cqe, sizeof(cqe)) != 0)
		goto wait; /* woken without a CQE (first run before the ball arrived) */
	value = cqe.res;
	s->last = value;
	if (value >= PINGPONG_LIMIT)
		return 0;
	bpf_io_uring_emit_cqe(ctx, peer_cq, side, value + 1, 0);
	s->answered++;
	if (value + 1 >= PINGPONG_LIMIT)
		return 0;
wait:
	ctx->wait_nr = 1;
	ctx->wait_idx = my_cq;
	return 0;
}

SEC("iouring")
int ping(struct io_uring_bpf_ctx *ctx)
{
	return play(ctx, 0, 1, 2);
}

SEC("iouring")
int pong(struct io_uring_bpf_ctx *ctx)
{
	return play(ctx, 1, 2, 1);
}
