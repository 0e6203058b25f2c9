/* `keepalive`: the long-lived request that sends the parked connections' PINGs.
 *
 * ctx->user_data is the address of the configuration block.  The request re-arms itself
 * with a one-tick TIMEOUT on QO_CQ_TIMER; each run walks the timer-wheel buckets whose tick
 * has come (cost: the connections in them, not all parked ones).  For each due connection
 * it posts an UNRESPONSIVE wake when k PINGs went unanswered or the idle deadline passed,
 * otherwise it seals a PING -- a PING+ACK when received packets are still unreported, so the
 * peer can retire its ACK-only packets -- sends it from the connection's socket, and
 * schedules the next one with jitter.  It also counts failed sends (QO_CQ_SEND), drops the
 * previous keys 3 PTOs after a peer key update, and re-arms a receive starved of buffers.
 */
#include "offload_state.h"

#define QO_BUCKET_GUARD QO_MAX_CONNS

static __always_inline void keep(struct io_uring_bpf_ctx *ctx, struct qo_engine *eng,
				 struct qo_stats *st, struct qo_conn *c, __u32 slot, __u64 now)
{
	__u32 kind;

	if (c->key_update_ns && now > c->key_update_ns + 3 * c->pto_ns) {
		bpf_quic_key_discard_previous(slot);
		c->key_update_ns = 0;
	}
	if (c->unanswered >= c->unresponsive_after ||
	    now >= c->last_receive_ns + c->idle_timeout_ns) {
		qo_wake(ctx, st, c, slot, QO_WAKE_UNRESPONSIVE, 0, 0);
		return;
	}
	if (now - c->due_ns > st->late_ping_ns_max && now > c->due_ns)
		st->late_ping_ns_max = now - c->due_ns;
	kind = c->ack_pending && c->tx.n_ranges ? QO_SEAL_PING_ACK : QO_SEAL_PING;
	c->last_ping_pn = c->tx.pn;
	if (qo_send(ctx, eng, st, c, slot, kind, now) == 0) {
		c->last_ping_ns = now;
		c->last_send_ns = now;
		c->unanswered++;
		c->pings_sent++;
		st->pings_sent++;
		if (kind == QO_SEAL_PING_ACK)
			st->ping_acks_sent++;
	} else {
		c->last_ping_pn = QO_NO_PN;
	}
	c->due_ns = qo_next_due(c, now, eng->config.tick_ns);
	qo_wheel_link(c, slot, eng->config.tick_ns);
}

/* Walk one bucket: detach its list, then keep the due connections and put back the ones
 * due on a later turn of the wheel. */
static __always_inline void run_bucket(struct io_uring_bpf_ctx *ctx, struct qo_engine *eng,
				       struct qo_stats *st, __u64 tick, __u64 now)
{
	__u32 bucket = (__u32)tick & (QO_WHEEL_SLOTS - 1);
	__u32 *head = bpf_map_lookup_elem(&qo_wheel, &bucket);
	__u32 next, slot, guard;
	struct qo_conn *c;

	if (!head || !*head)
		return;
	next = *head;
	*head = 0;
#pragma clang loop unroll(disable)
	for (guard = 0; guard < QO_BUCKET_GUARD && next; guard++) {
		slot = next - 1;
		c = qo_conn(slot);
		if (!c)
			break;
		st->wheel_visited++;
		next = c->wheel_next;
		c->wheel_next = 0;
		c->wheel_prev = 0;
		c->in_wheel = 0;
		if (c->state != QO_CONN_PARKED)
			continue;
		if (c->due_ns / eng->config.tick_ns > tick) {
			qo_wheel_link(c, slot, eng->config.tick_ns); /* a later turn */
			continue;
		}
		keep(ctx, eng, st, c, slot, now);
	}
}

SEC("iouring")
int keepalive(struct io_uring_bpf_ctx *ctx)
{
	struct qo_engine *eng = qo_engine();
	struct qo_stats *st = qo_stats();
	struct io_uring_cqe cqe;
	struct io_uring_sqe sqe;
	__u64 now, tick, t, first;
	__u32 i;

	if (!eng || !st)
		return 0;
	if (qo_configure(eng, ctx->user_data))
		return 0;
	/* the tick: one multishot TIMEOUT, armed on the first run and again if it ever ends
	 * (it posts each expiry with IORING_CQE_F_MORE; a CQE without it is the last one) */
#pragma clang loop unroll(disable)
	for (i = 0; i < 64; i++) {
		if (bpf_io_uring_reap_cqe(ctx, QO_CQ_TIMER, &cqe, sizeof(cqe)))
			break;
		if (!(cqe.flags & IORING_CQE_F_MORE) && cqe.res != -ECANCELED)
			eng->tick_armed = 0;
	}
	if (!eng->tick_armed) {
		io_uring_prep_rw(&sqe, IORING_OP_TIMEOUT, -1, eng->config.tick_ts, 1, 0);
		sqe.op_flags = IORING_TIMEOUT_MULTISHOT; /* off = 0: until cancelled */
		sqe.user_data = ctx->user_data;         /* cancelled with keepalive and rx */
		sqe.cq_idx = QO_CQ_TIMER;
		if (bpf_io_uring_submit(ctx, &sqe, sizeof(sqe)))
			return 0;
		eng->tick_armed = 1;
	}
#pragma clang loop unroll(disable)
	for (i = 0; i < 1024; i++) {
		if (bpf_io_uring_reap_cqe(ctx, QO_CQ_SEND, &cqe, sizeof(cqe)))
			break;
		st->send_failed++;
	}
	st->ticks++;
	now = bpf_ktime_get_ns();
	tick = now / eng->config.tick_ns;
	first = eng->last_tick ? eng->last_tick + 1 : tick;
	if (tick >= QO_WHEEL_SLOTS && first + QO_WHEEL_SLOTS <= tick)
		first = tick - QO_WHEEL_SLOTS + 1; /* fell a whole turn behind: one pass is enough */
#pragma clang loop unroll(disable)
	for (t = first; t <= tick; t++)
		run_bucket(ctx, eng, st, t, now);
	eng->last_tick = tick;
	if (eng->starved_fd_plus1 &&
	    qo_arm_recv(ctx, eng, st, (__s32)eng->starved_fd_plus1 - 1) == 0)
		eng->starved_fd_plus1 = 0;
	ctx->wait_nr = 1;
	ctx->wait_idx = QO_CQ_TIMER;
	return 0;
}
