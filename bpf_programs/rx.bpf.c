/* `rx`: the long-lived request that reads the offloaded sockets.
 *
 * ctx->user_data is the address of the configuration block.  Each socket has a multishot
 * RECVMSG (user_data = its fd) completing on QO_CQ_RX with provided buffers; rx waits there.
 * For each datagram:
 *  - long header, unknown DCID, or a connection not parked: hand it to the application
 *    untouched (a QO_TAG_DATAGRAM CQE on CQ 0 naming the buffer);
 *  - a parked connection: the shim opens the packet.  PADDING/PING/ACK only: record the
 *    packet number, take an RTT sample when it acknowledges our PING, answer an
 *    ack-eliciting packet with an ACK right away.  Anything else -- other frames,
 *    CONNECTION_CLOSE, a stateless reset, a new peer address -- posts a wake with the
 *    reason and hands the datagram over; an undecryptable datagram that is no reset is
 *    dropped.
 * rx is the only producer of the provided-buffer ring: it recycles the buffers it consumed
 * and the ones the application returned through the return ring.
 */
#include "offload_state.h"

#define QO_RX_BATCH 256

struct rx_head {
	struct qo_recvmsg_out out;
	__u8 name[32];
	__u8 first; /* the payload's first byte, when name_cap is 32 */
	__u8 pad[7];
};

/* Give buffer `bid` back to the provided-buffer ring (published by publish_tail). */
static __always_inline void recycle(struct qo_engine *eng, __u32 bid)
{
	struct qo_ring_buf b;
	__u64 entry;

	b.addr = eng->config.buf_base + (__u64)bid * eng->config.buf_size;
	b.len = eng->config.buf_size;
	b.bid = (__u16)bid;
	entry = eng->config.buf_ring +
		(__u64)(eng->buf_tail & (eng->config.buf_count - 1)) * QO_RING_BUF_SIZE;
	bpf_copy_to_user((void *)entry, &b, QO_RING_BUF_WRITE);
	eng->buf_tail++;
}

static __always_inline void publish_tail(struct qo_engine *eng)
{
	__u16 tail = (__u16)eng->buf_tail;

	bpf_copy_to_user((void *)(eng->config.buf_ring + QO_RING_TAIL_OFFSET), &tail,
			 sizeof(tail));
}

/* Move the buffers the application is done with back into the provided-buffer ring. */
static __always_inline void drain_returns(struct qo_engine *eng)
{
	__u64 ring = eng->config.return_ring;
	__u32 idx[2], i, n;
	__u16 bid;

	if (bpf_copy_from_user(idx, sizeof(idx), (void *)ring))
		return;
	n = idx[1] - idx[0];
	if (!n || n > eng->config.return_entries)
		return;
#pragma clang loop unroll(disable)
	for (i = 0; i < QO_RX_BATCH * 4; i++) {
		if (i >= n)
			break;
		if (bpf_copy_from_user(&bid, sizeof(bid),
				       (void *)(ring + 8 +
						2 * (__u64)((idx[0] + i) &
							    (eng->config.return_entries - 1)))))
			break;
		recycle(eng, bid);
	}
	idx[0] += i;
	bpf_copy_to_user((void *)ring, &idx[0], sizeof(idx[0]));
}

static __always_inline void hand_over(struct io_uring_bpf_ctx *ctx, struct qo_stats *st,
				      struct io_uring_cqe *cqe)
{
	st->datagrams_passed++;
	bpf_io_uring_emit_cqe(ctx, QO_CQ_APP,
			      (QO_TAG_DATAGRAM << QO_TAG_SHIFT) | (__u32)cqe->user_data, cqe->res,
			      cqe->flags & ~IORING_CQE_F_MORE);
}

/* Same peer address as the one the connection was parked with?  Family, port and address
 * bytes of a sockaddr_in / sockaddr_in6 (flow label and scope are not compared). */
static __always_inline int same_peer(struct qo_conn *c, struct rx_head *h)
{
	__u32 i, len = 8;

	if (h->out.namelen != c->tx.peer_addr_len)
		return 0;
	if (*(__u32 *)&h->name[0] != *(__u32 *)&c->tx.peer_addr[0])
		return 0; /* family + port */
	if (c->tx.peer_addr_len == 16)
		return *(__u32 *)&h->name[4] == *(__u32 *)&c->tx.peer_addr[4];
	if (c->tx.peer_addr_len != 28)
		return 0;
#pragma clang loop unroll(full)
	for (i = 0; i < 16; i += 4)
		if (*(__u32 *)&h->name[len + i] != *(__u32 *)&c->tx.peer_addr[len + i])
			return 0;
	return 1;
}

/* A peer ACK: keep its ranges for the write-back, and if it covers our latest PING, the
 * peer is alive (reset the unanswered count) and the round trip is an RTT sample. */
static __always_inline void on_ack(struct qo_engine *eng, struct qo_stats *st,
				   struct qo_conn *c, struct qo_rx *rx, __u64 now)
{
	__u64 rtt, delay_ns, due;
	__u32 i, n = rx->n_ack_ranges, acked = 0;

	/* an ACK of a packet number never sent is the peer's bug or a forgery: ignore it
	 * rather than let it move our packet-number encoding or the RTT */
	if (rx->ack_largest >= c->tx.pn) {
		st->dropped_bogus_ack++;
		return;
	}
	if (c->tx.largest_acked == QO_NO_PN || rx->ack_largest > c->tx.largest_acked)
		c->tx.largest_acked = rx->ack_largest;
	if (n > QO_MAX_PEER_ACK_RANGES)
		n = QO_MAX_PEER_ACK_RANGES;
	c->n_peer_ack_ranges = n;
	delay_ns = rx->ack_delay_us * 1000;
	c->peer_ack_delay_ns = delay_ns;
	/* the whole array: constant offsets for the VM, and what is past n is never read */
	__builtin_memcpy(c->peer_ack_ranges, rx->ack_ranges, sizeof(c->peer_ack_ranges));
#pragma clang loop unroll(full)
	for (i = 0; i < QO_MAX_PEER_ACK_RANGES; i++) {
		if (i < n && c->last_ping_pn != QO_NO_PN &&
		    c->last_ping_pn >= rx->ack_ranges[i].smallest &&
		    c->last_ping_pn <= rx->ack_ranges[i].largest)
			acked = 1;
	}
	if (!acked)
		return;
	c->unanswered = 0;
	c->pings_acked++;
	st->acks_received++;
	/* the idle deadline moved.  If it held the next PING back (interval longer than idle
	 * timeout - PTO), that PING can now wait: move its due time.  The connection stays in
	 * its bucket; when that tick comes the wheel sees the later due time and moves it on
	 * (cheaper than relinking here on every ACK).  Smaller moves -- within the jitter -- are
	 * not worth a second visit. */
	due = qo_next_due(c, now, eng->config.tick_ns);
	if (due > c->due_ns + (c->interval_ns >> 3))
		c->due_ns = due;
	if (rx->ack_largest != c->last_ping_pn || now <= c->last_ping_ns)
		return;
	rtt = now - c->last_ping_ns;
	if (rtt > delay_ns && rtt - delay_ns >= c->min_rtt_ns && c->min_rtt_ns)
		rtt -= delay_ns;
	c->latest_rtt_ns = rtt;
	if (!c->min_rtt_ns || rtt < c->min_rtt_ns)
		c->min_rtt_ns = rtt;
	c->smoothed_rtt_ns = c->smoothed_rtt_ns ? (7 * c->smoothed_rtt_ns + rtt) / 8 : rtt;
	c->last_ping_pn = QO_NO_PN;
}

/* One received datagram in buffer `bid`.  Returns 1 if the buffer was consumed here (to be
 * recycled), 0 if it went to the application. */
static __always_inline int on_datagram(struct io_uring_bpf_ctx *ctx, struct qo_engine *eng,
				       struct qo_stats *st, struct io_uring_cqe *cqe, __u32 bid,
				       __u64 now)
{
	struct rx_head h;
	struct qo_rx *rx;
	struct qo_cid_key key;
	struct qo_conn *c;
	__u64 buf, pkt;
	__u32 name_cap = eng->config.name_cap, cid_len = eng->config.host_cid_len, *slotp, slot;
	__u32 len, *owner, zero = 0;
	__s32 fd = (__s32)cqe->user_data;
	__u8 first;
	long verdict;

	if (name_cap > 32 || cid_len > QO_MAX_CID_LEN)
		goto pass;
	buf = eng->config.buf_base + (__u64)bid * eng->config.buf_size;
	/* header, address and the payload's first byte in one copy (no control data is
	 * asked for, so the payload follows the address area directly) */
	if (bpf_copy_from_user(&h, sizeof(h.out) + name_cap + 1, (void *)buf))
		goto pass;
	first = ((__u8 *)&h)[sizeof(h.out) + name_cap];
	len = h.out.payloadlen;
	pkt = buf + sizeof(h.out) + name_cap;
	if (h.out.controllen || h.out.flags & QO_MSG_TRUNC || len < 1 + cid_len)
		goto pass;
	owner = bpf_map_lookup_elem(&qo_sock_owner, &fd);
	if (first & 0x80) {
		/* long header: handshake-era or version negotiation -- stale for a parked
		 * connection that owns the socket, someone else's otherwise */
		if (owner)
			goto noise;
		goto pass;
	}
	__builtin_memset(&key, 0, sizeof(key));
	if (bpf_copy_from_user(key.bytes, cid_len, (void *)(pkt + 1)))
		goto pass;
	slotp = bpf_map_lookup_elem(&qo_cids, &key);
	if (!slotp) {
		/* a stateless reset carries a random DCID: only its last 16 bytes tell */
		verdict = bpf_quic_match_reset(pkt, len);
		if (verdict > 0) {
			slot = (__u32)verdict - 1;
			c = qo_conn(slot);
			if (c && c->state == QO_CONN_PARKED) {
				qo_wake(ctx, st, c, slot, QO_WAKE_STATELESS_RESET, 1, bid);
				st->datagrams_passed++;
				return 0;
			}
		}
		if (owner)
			goto noise;
		goto pass;
	}
	slot = *slotp;
	c = qo_conn(slot);
	if (!c || c->state != QO_CONN_PARKED)
		goto pass;

	/* the helper fills every output field: only the inputs are set here */
	/* the verdict goes into a map value, which the VM reads field by field in place */
	rx = bpf_map_lookup_elem(&qo_rx_result, &zero);
	if (!rx)
		goto pass;
	rx->largest_received = c->tx.n_ranges ? c->tx.ranges[0].largest : QO_NO_PN;
	rx->dcid_len = cid_len;
	rx->peer_ack_delay_exponent = c->peer_ack_delay_exponent;
	verdict = bpf_quic_open(slot, pkt, len, rx, sizeof(*rx));
	if (verdict < 0) {
		st->dropped_malformed++;
		return 1;
	}
	switch (rx->status) {
	case QO_RX_UNDECRYPTABLE:
		if (bpf_quic_check_reset(slot, pkt, len) == 1) {
			qo_wake(ctx, st, c, slot, QO_WAKE_STATELESS_RESET, 1, bid);
			st->datagrams_passed++;
			return 0;
		}
		st->dropped_undecryptable++;
		return 1;
	case QO_RX_CONTROL_ONLY:
	case QO_RX_CLOSE:
	case QO_RX_OTHER:
	case QO_RX_PROTOCOL_ERROR:
		break;
	default:
		st->dropped_malformed++;
		return 1;
	}
	/* authenticated from here on */
	if ((__s32)cqe->user_data != c->sock_fd || !same_peer(c, &h)) {
		qo_wake(ctx, st, c, slot, QO_WAKE_PATH_CHANGE, 1, bid);
		st->datagrams_passed++;
		return 0;
	}
	if (rx->status != QO_RX_CONTROL_ONLY) {
		qo_wake(ctx, st, c, slot, rx->status == QO_RX_CLOSE ? QO_WAKE_CLOSED : QO_WAKE_DATA, 1,
			bid);
		st->datagrams_passed++;
		return 0;
	}
	if (!qo_ranges_add(&c->tx, rx->pn)) {
		st->dropped_duplicate++;
		return 1;
	}
	if (rx->key_updated) {
		c->key_update_ns = now;
		st->key_updates++;
	}
	if (rx->pn == c->tx.ranges[0].largest) {
		c->largest_received_ns = now;
		/* RFC 9000 §17.4: the server echoes the spin bit, the client inverts it */
		c->tx.spin = c->role ? rx->spin : !rx->spin;
	}
	c->last_receive_ns = now;
	c->packets_received++;
	c->ack_pending = 1;
	st->packets_received++;
	if (rx->has_ack)
		on_ack(eng, st, c, rx, now);
	if (rx->ack_eliciting && qo_send(ctx, eng, st, c, slot, QO_SEAL_ACK, now) == 0) {
		c->acks_sent++;
		st->acks_sent++;
	}
	return 1;
noise:
	c = qo_conn(*owner);
	if (c && c->state == QO_CONN_PARKED) {
		st->dropped_unknown++;
		return 1;
	}
pass:
	hand_over(ctx, st, cqe);
	return 0;
}

SEC("iouring")
int rx(struct io_uring_bpf_ctx *ctx)
{
	struct qo_engine *eng = qo_engine();
	struct qo_stats *st = qo_stats();
	struct io_uring_cqe cqe;
	__u32 i, bid, start_tail;
	__u64 now;

	if (!eng || !st)
		return 0;
	if (qo_configure(eng, ctx->user_data))
		return 0;
	start_tail = eng->buf_tail;
	drain_returns(eng);
	now = bpf_ktime_get_ns();
#pragma clang loop unroll(disable)
	for (i = 0; i < QO_RX_BATCH; i++) {
		if (bpf_io_uring_reap_cqe(ctx, QO_CQ_RX, &cqe, sizeof(cqe)))
			break;
		if (cqe.flags & IORING_CQE_F_BUFFER) {
			bid = cqe.flags >> QO_BUFFER_SHIFT;
			st->datagrams_received++;
			if (cqe.res >= 0 && on_datagram(ctx, eng, st, &cqe, bid, now))
				recycle(eng, bid);
			else if (cqe.res < 0)
				recycle(eng, bid);
		}
		if (!(cqe.flags & IORING_CQE_F_MORE)) {
			/* the multishot receive ended.  Out of buffers: re-arm, unless none came
			 * back yet (keepalive's tick retries then).  Cancelled or a dead socket:
			 * leave it.  Anything else (the kernel may end a multishot at will): re-arm. */
			if (cqe.res == -ENOBUFS) {
				if (eng->buf_tail == start_tail) {
					st->buffers_starved++;
					eng->starved_fd_plus1 = (__u32)cqe.user_data + 1;
				} else {
					qo_arm_recv(ctx, eng, st, (__s32)cqe.user_data);
				}
			} else if (cqe.res >= 0 || cqe.res == -EINTR || cqe.res == -EAGAIN) {
				qo_arm_recv(ctx, eng, st, (__s32)cqe.user_data);
			}
		}
	}
	if (eng->buf_tail != start_tail)
		publish_tail(eng);
	ctx->wait_nr = 1;
	ctx->wait_idx = QO_CQ_RX;
	return 0;
}
