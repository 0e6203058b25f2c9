/* A keepalive-like policy loop, the workload of bench/bench_bpf_vm.py.
 *
 * Walks `count` connection slots of an array map from `first`; for every active
 * connection whose PING is due it either wakes the application (too many PINGs left
 * unacknowledged) or queues a SENDMSG for the PING, and schedules the next one with jitter.
 * Totals go to a stats map and back to the argument block.
 */
#include "io_uring_bpf.h"

#define MAX_SLOTS 4096
#define MAX_UNACKED 3
#define CONN_ACTIVE 1U
#define WAKE_UNRESPONSIVE 4

struct conn {
	__u64 next_ping_ns;
	__u64 interval_ns;
	__u64 token;         /* the application's handle, echoed in wake CQEs */
	__u64 next_pn;
	__u32 pings_unacked;
	__u32 flags;
	__u32 msg_off;       /* offset of this connection's msghdr from msg_base */
	__u32 pad;
};

struct scan_args {
	__u64 msg_base;      /* user address of the msghdr array */
	__u32 first;
	__u32 count;
	__s32 fd;
	__u32 send_cq;
	__u32 pings;         /* written back */
	__u32 wakes;         /* written back */
};

struct scan_stats {
	__u64 scans;
	__u64 pings;
	__u64 wakes;
};

BPF_MAP(conns, BPF_MAP_TYPE_ARRAY, __u32, struct conn, MAX_SLOTS);
BPF_MAP(scan_stats, BPF_MAP_TYPE_ARRAY, __u32, struct scan_stats, 1);

SEC("iouring")
int keepalive_scan(struct io_uring_bpf_ctx *ctx)
{
	struct scan_args a;
	struct io_uring_sqe sqe;
	struct scan_stats *stats;
	__u32 zero = 0, slot, i;
	__u32 pings = 0, wakes = 0;
	__u64 now;

	if (bpf_copy_from_user(&a, sizeof(a), (void *)ctx->user_data))
		return 0;
	if (a.count > MAX_SLOTS)
		a.count = MAX_SLOTS;
	now = bpf_ktime_get_ns();
#pragma clang loop unroll(disable)
	for (i = 0; i < a.count; i++) {
		struct conn *c;

		slot = a.first + i;
		c = bpf_map_lookup_elem(&conns, &slot);
		if (!c)
			break;
		if (!(c->flags & CONN_ACTIVE) || c->next_ping_ns > now)
			continue;
		if (c->pings_unacked >= MAX_UNACKED) {
			bpf_io_uring_emit_cqe(ctx, 0, c->token, WAKE_UNRESPONSIVE, 0);
			c->flags &= ~CONN_ACTIVE;
			wakes++;
			continue;
		}
		io_uring_prep_rw(&sqe, IORING_OP_SENDMSG, a.fd, a.msg_base + c->msg_off, 1, 0);
		sqe.user_data = c->token;
		sqe.cq_idx = a.send_cq;
		sqe.flags = IOSQE_CQE_SKIP_SUCCESS;
		if (bpf_io_uring_submit(ctx, &sqe, sizeof(sqe)))
			break;
		c->next_ping_ns = now + c->interval_ns - bpf_get_prandom_u32() % (c->interval_ns >> 3 | 1);
		c->pings_unacked++;
		c->next_pn++;
		pings++;
	}
	stats = bpf_map_lookup_elem(&scan_stats, &zero);
	if (stats) {
		stats->scans++;
		stats->pings += pings;
		stats->wakes += wakes;
	}
	a.pings = pings;
	a.wakes = wakes;
	bpf_copy_to_user((void *)ctx->user_data, &a, sizeof(a));
	return 0;
}
