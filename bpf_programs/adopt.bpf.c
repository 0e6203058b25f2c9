/* `adopt`: take over the keepalive duty of one quiescent connection.
 *
 * ctx->user_data is the address of the connection's park record in user memory.  The
 * program copies the snapshot (never the key block), has the crypto shim install the keys
 * by slot (the shim reads and wipes the key block itself), creates the connection's state
 * and its CID index entry, answers an ACK the application still owed, and schedules the
 * first PING on the timer wheel.  The outcome goes into the record's `status` (0 or -errno) before
 * the request completes on its CQ.
 */
#include "offload_state.h"

static __always_inline void set_status(__u64 rec, __s32 status)
{
	bpf_copy_to_user((void *)(rec + __builtin_offsetof(struct qo_snapshot, status)), &status,
			 sizeof(status));
}

SEC("iouring")
int adopt(struct io_uring_bpf_ctx *ctx)
{
	__u64 rec = ctx->user_data;
	struct qo_engine *eng = qo_engine();
	struct qo_stats *st = qo_stats();
	struct qo_park_record *scratch;
	struct qo_snapshot *s;
	struct qo_cid_key key;
	struct qo_conn *c;
	__u32 zero = 0, slot, i, n;
	__u64 now;
	long err;

	if (!eng || !st)
		return 0;
	scratch = bpf_map_lookup_elem(&qo_scratch, &zero);
	if (!scratch)
		return 0;
	s = &scratch->snapshot;
	if (!eng->configured) {
		st->adopt_failed++;
		set_status(rec, -EAGAIN);
		return 0;
	}
	if (bpf_copy_from_user(s, sizeof(*s), (void *)rec)) {
		st->adopt_failed++;
		return 0; /* the record itself is unreachable: nothing to report into */
	}
	if (s->magic != QO_SNAPSHOT_MAGIC || s->dcid.len > QO_MAX_CID_LEN ||
	    s->n_ranges > QO_MAX_RANGES || s->host_cid.len > QO_MAX_CID_LEN ||
	    !s->host_cid.len || s->peer_addr_len > QO_SOCKADDR_MAX || !s->interval_ns) {
		st->adopt_failed++;
		set_status(rec, -EINVAL);
		return 0;
	}
	slot = s->slot;
	c = qo_conn(slot);
	if (!c) {
		st->adopt_failed++;
		set_status(rec, -EINVAL);
		return 0;
	}
	if (c->state != QO_CONN_FREE) {
		st->adopt_failed++;
		set_status(rec, -EBUSY);
		return 0;
	}
	err = bpf_quic_key_install(slot, rec + __builtin_offsetof(struct qo_park_record, keys),
				   sizeof(struct qo_keys));
	if (err) {
		st->adopt_failed++;
		set_status(rec, (__s32)err);
		return 0;
	}

	__builtin_memset(c, 0, sizeof(*c));
	c->tx.pn = s->next_pn;
	c->tx.largest_acked = s->largest_acked;
	c->tx.spin = s->spin;
	c->tx.dcid = s->dcid;
	c->tx.peer_addr_len = s->peer_addr_len;
	__builtin_memcpy(c->tx.peer_addr, s->peer_addr, QO_SOCKADDR_MAX);
	n = s->n_ranges;
#pragma clang loop unroll(disable)
	for (i = 0; i < QO_MAX_RANGES; i++) {
		if (i >= n)
			break;
		c->tx.ranges[i] = s->ranges[i];
	}
	c->tx.n_ranges = n;
	if (!n && s->largest_received != QO_NO_PN) {
		c->tx.ranges[0].smallest = s->largest_received;
		c->tx.ranges[0].largest = s->largest_received;
		c->tx.n_ranges = 1;
	}
	c->token = s->park_id;
	c->host_cid = s->host_cid;
	c->sock_fd = s->sock_fd;
	c->role = s->role;
	c->unresponsive_after = s->unresponsive_after ? s->unresponsive_after : 3;
	c->peer_ack_delay_exponent = s->peer_ack_delay_exponent;
	c->ack_pending = s->ack_pending;
	c->interval_ns = s->interval_ns;
	c->idle_timeout_ns = s->idle_timeout_ns;
	c->pto_ns = s->pto_ns;
	c->last_ping_pn = QO_NO_PN;
	c->largest_received_ns = s->largest_received_ns;
	c->last_receive_ns = s->last_receive_ns;
	c->last_send_ns = s->last_send_ns;
	c->state = QO_CONN_PARKED;

	qo_cid_key_of(&key, &c->host_cid);
	bpf_map_update_elem(&qo_cids, &key, &slot, BPF_ANY);
	if (!c->role) /* a client's socket is its own */
		bpf_map_update_elem(&qo_sock_owner, &c->sock_fd, &slot, BPF_ANY);

	now = bpf_ktime_get_ns();
	/* An ACK the application owed (an ack-eliciting packet arrived just before parking). */
	if (s->ack_eliciting_pending && qo_send(ctx, eng, st, c, slot, QO_SEAL_ACK, now) == 0) {
		c->acks_sent++;
		st->acks_sent++;
	}
	c->due_ns = qo_next_due(c, now, eng->config.tick_ns);
	qo_wheel_link(c, slot, eng->config.tick_ns);
	st->adopted++;
	set_status(rec, 0);
	return 0;
}
