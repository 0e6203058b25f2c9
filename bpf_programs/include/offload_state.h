/* State shared by the offload programs (adopt, keepalive, rx, reclaim): the maps, and the
 * small pieces of policy more than one program needs -- the timer wheel, received-PN
 * ranges, sending a sealed packet, posting a wake, handing a datagram over.
 *
 * Every program object defines the same maps; the engine loads the objects with one set of
 * maps shared by name, so all four programs see one state.
 */
#ifndef QUIC_OFFLOAD_STATE_H
#define QUIC_OFFLOAD_STATE_H

#include "quic_offload.h"

BPF_MAP(qo_conns, BPF_MAP_TYPE_ARRAY, __u32, struct qo_conn, QO_MAX_CONNS);
BPF_MAP(qo_cids, BPF_MAP_TYPE_HASH, struct qo_cid_key, __u32, QO_MAX_CONNS * 2);
BPF_MAP(qo_wheel, BPF_MAP_TYPE_ARRAY, __u32, __u32, QO_WHEEL_SLOTS);
/* Sockets that belong to one parked connection (a client's): fd -> slot.  What arrives on
 * them and names no connection is noise (or a reset), never the application's business. */
BPF_MAP(qo_sock_owner, BPF_MAP_TYPE_HASH, __s32, __u32, QO_MAX_CONNS);
BPF_MAP(qo_engine_map, BPF_MAP_TYPE_ARRAY, __u32, struct qo_engine, 1);
BPF_MAP(qo_stats_map, BPF_MAP_TYPE_ARRAY, __u32, struct qo_stats, 1);
/* The open helper's verdict: a map value is cheaper for the VM to read than the stack. */
BPF_MAP(qo_rx_result, BPF_MAP_TYPE_ARRAY, __u32, struct qo_rx, 1);
/* Scratch space for structs too large for the 512-byte stack (one run at a time). */
BPF_MAP(qo_scratch, BPF_MAP_TYPE_ARRAY, __u32, struct qo_park_record, 1);

/* struct io_uring_recvmsg_out: what a multishot RECVMSG puts first in each buffer. */
struct qo_recvmsg_out {
	__u32 namelen;
	__u32 controllen;
	__u32 payloadlen;
	__u32 flags;
};
#define QO_MSG_TRUNC 0x20

/* struct io_uring_buf: one provided-buffer ring entry (the ring's tail sits in entry 0's
 * last two bytes, so entries are written without them). */
struct qo_ring_buf {
	__u64 addr;
	__u32 len;
	__u16 bid;
};
#define QO_RING_BUF_SIZE 16
#define QO_RING_BUF_WRITE 14
#define QO_RING_TAIL_OFFSET 14

static __always_inline struct qo_engine *qo_engine(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&qo_engine_map, &zero);
}

static __always_inline struct qo_stats *qo_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&qo_stats_map, &zero);
}

static __always_inline struct qo_conn *qo_conn(__u32 slot)
{
	return bpf_map_lookup_elem(&qo_conns, &slot);
}

/* Copy the configuration block at `cfg_addr` into the engine map (once). 0 or -errno. */
static __always_inline int qo_configure(struct qo_engine *eng, __u64 cfg_addr)
{
	__u16 tail = 0;

	if (eng->configured)
		return 0;
	if (bpf_copy_from_user(&eng->config, sizeof(eng->config), (void *)cfg_addr))
		return -EFAULT;
	if (eng->config.magic != QO_CONFIG_MAGIC || !eng->config.tick_ns ||
	    !eng->config.send_slots || !eng->config.buf_count || !eng->config.return_entries ||
	    eng->config.send_slot_size < sizeof(struct qo_send_slot))
		return -EINVAL;
	if (bpf_copy_from_user(&tail, sizeof(tail), (void *)(eng->config.buf_ring +
							       QO_RING_TAIL_OFFSET)))
		return -EFAULT;
	eng->buf_tail = tail;
	eng->configured = 1;
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Timer wheel: QO_WHEEL_SLOTS buckets of tick_ns each; a bucket is a doubly linked list of
 * connection slots threaded through struct qo_conn (slot + 1, so 0 means "none").  A
 * connection due beyond one turn of the wheel sits in its bucket and is skipped until its
 * turn comes, so the cost of a tick is the number of entries in its bucket.
 * ------------------------------------------------------------------------------------- */

static __always_inline void qo_wheel_link(struct qo_conn *c, __u32 slot, __u64 tick_ns)
{
	__u32 bucket = (__u32)(c->due_ns / tick_ns) & (QO_WHEEL_SLOTS - 1);
	__u32 *head = bpf_map_lookup_elem(&qo_wheel, &bucket);
	struct qo_conn *first;

	if (!head)
		return;
	c->wheel_bucket = bucket;
	c->wheel_prev = 0;
	c->wheel_next = *head;
	if (*head) {
		first = qo_conn(*head - 1);
		if (first)
			first->wheel_prev = slot + 1;
	}
	*head = slot + 1;
	c->in_wheel = 1;
}

static __always_inline void qo_wheel_unlink(struct qo_conn *c)
{
	struct qo_conn *other;
	__u32 bucket = c->wheel_bucket;
	__u32 *head;

	if (!c->in_wheel)
		return;
	if (c->wheel_prev) {
		other = qo_conn(c->wheel_prev - 1);
		if (other)
			other->wheel_next = c->wheel_next;
	} else {
		head = bpf_map_lookup_elem(&qo_wheel, &bucket);
		if (head)
			*head = c->wheel_next;
	}
	if (c->wheel_next) {
		other = qo_conn(c->wheel_next - 1);
		if (other)
			other->wheel_prev = c->wheel_prev;
	}
	c->wheel_next = 0;
	c->wheel_prev = 0;
	c->in_wheel = 0;
}

/* When the next PING is due: one interval from now less up to 1/8 of it (jitter, so
 * connections parked together spread out), but never closer to the idle deadline than one
 * PTO; while a PING is unanswered, not before its ACK had one PTO to come back; and never
 * before the next tick. */
static __always_inline __u64 qo_next_due(struct qo_conn *c, __u64 now, __u64 tick_ns)
{
	__u64 jitter = c->interval_ns >> 3;
	__u64 due = now + c->interval_ns;
	__u64 deadline;

	if (jitter)
		due -= bpf_get_prandom_u32() % jitter;
	deadline = c->last_receive_ns + c->idle_timeout_ns;
	if (deadline > c->pto_ns && deadline - c->pto_ns < due)
		due = deadline - c->pto_ns;
	if (c->unanswered && due < now + c->pto_ns)
		due = now + c->pto_ns;
	if (due < now + tick_ns)
		due = now + tick_ns;
	return due;
}

/* ---------------------------------------------------------------------------------------
 * Received packet numbers: up to QO_MAX_RANGES inclusive ranges, newest first.
 * ------------------------------------------------------------------------------------- */

/* Record `pn`; 1 if it was new, 0 if it is a duplicate (or older than what we track). */
static __always_inline int qo_ranges_add(struct qo_tx *tx, __u64 pn)
{
	__u32 n = tx->n_ranges, i, j;

	if (n > QO_MAX_RANGES)
		n = QO_MAX_RANGES;
	if (n == 0) {
		tx->ranges[0].smallest = pn;
		tx->ranges[0].largest = pn;
		tx->n_ranges = 1;
		return 1;
	}
	/* The usual case: the next packet number in sequence. */
	if (pn == tx->ranges[0].largest + 1) {
		tx->ranges[0].largest = pn;
		return 1;
	}
#pragma clang loop unroll(disable)
	for (i = 0; i < QO_MAX_RANGES; i++) {
		if (i >= n)
			break;
		if (pn >= tx->ranges[i].smallest && pn <= tx->ranges[i].largest)
			return 0;
		if (pn > tx->ranges[i].largest) {
			if (pn == tx->ranges[i].largest + 1) {
				tx->ranges[i].largest = pn;
				/* cannot touch the newer range i-1 (pn + 1 < its smallest) */
				return 1;
			}
			break; /* a new range goes in at i */
		}
		if (pn + 1 == tx->ranges[i].smallest) {
			tx->ranges[i].smallest = pn;
			/* merge with the older neighbour if they now touch */
			if (i + 1 < n && i + 1 < QO_MAX_RANGES &&
			    tx->ranges[i + 1].largest + 1 == pn) {
				tx->ranges[i].smallest = tx->ranges[i + 1].smallest;
#pragma clang loop unroll(disable)
				for (j = i + 1; j + 1 < QO_MAX_RANGES; j++) {
					if (j + 1 >= n)
						break;
					tx->ranges[j] = tx->ranges[j + 1];
				}
				tx->n_ranges = n - 1;
			}
			return 1;
		}
	}
	if (i >= QO_MAX_RANGES)
		return 0; /* older than every range we keep: treat as a duplicate */
	/* insert a new single-PN range at i, dropping the oldest when full */
	if (n == QO_MAX_RANGES)
		n--;
#pragma clang loop unroll(disable)
	for (j = QO_MAX_RANGES - 1; j > 0; j--) {
		if (j <= i)
			break;
		if (j <= n)
			tx->ranges[j] = tx->ranges[j - 1];
	}
	tx->ranges[i].smallest = pn;
	tx->ranges[i].largest = pn;
	tx->n_ranges = n + 1;
	return 1;
}

/* The CID index key of `cid`: its bytes, zero padded. */
static __always_inline void qo_cid_key_of(struct qo_cid_key *key, const struct qo_cid *cid)
{
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->bytes, cid->bytes, QO_MAX_CID_LEN);
}

/* (Re-)submit socket `fd`'s multishot RECVMSG into the provided-buffer group, completing on
 * QO_CQ_RX with user_data = fd.  0 or -errno. */
static __always_inline int qo_arm_recv(struct io_uring_bpf_ctx *ctx, struct qo_engine *eng,
				       struct qo_stats *st, __s32 fd)
{
	struct io_uring_sqe sqe;

	io_uring_prep_rw(&sqe, IORING_OP_RECVMSG, fd, eng->config.recv_msghdr, 1, 0);
	sqe.ioprio = 2; /* IORING_RECV_MULTISHOT */
	sqe.flags = IOSQE_BUFFER_SELECT;
	sqe.buf_index = eng->config.bgid;
	sqe.user_data = (__u32)fd;
	sqe.cq_idx = QO_CQ_RX;
	if (bpf_io_uring_submit(ctx, &sqe, sizeof(sqe)))
		return -EBUSY;
	st->recv_rearmed++;
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Output: sending a sealed packet, waking the application, handing a datagram over.
 * ------------------------------------------------------------------------------------- */

/* Seal a `kind` packet for connection `slot` into the next send slot and queue a SENDMSG
 * from the connection's own socket.  Successful sends post nothing; failures land on
 * QO_CQ_SEND.  0 or -errno. */
static __always_inline int qo_send(struct io_uring_bpf_ctx *ctx, struct qo_engine *eng,
				   struct qo_stats *st, struct qo_conn *c, __u32 slot,
				   __u32 kind, __u64 now)
{
	struct io_uring_sqe sqe;
	__u64 send_slot;
	long len;

	if (kind != QO_SEAL_PING) {
		c->tx.ack_delay_us = now > c->largest_received_ns ?
					     (now - c->largest_received_ns) / 1000 : 0;
		c->tx.ack_delay_exponent = eng->config.ack_delay_exponent;
	}
	send_slot = eng->config.send_base +
		    (__u64)(eng->send_seq & (eng->config.send_slots - 1)) *
			    eng->config.send_slot_size;
	len = bpf_quic_seal(slot, &c->tx, sizeof(c->tx), send_slot, kind);
	if (len < 0) {
		st->seal_failed++;
		return (int)len;
	}
	eng->send_seq++;
	io_uring_prep_rw(&sqe, IORING_OP_SENDMSG, c->sock_fd, send_slot, 1, 0);
	sqe.flags = IOSQE_CQE_SKIP_SUCCESS;
	sqe.user_data = slot;
	sqe.cq_idx = QO_CQ_SEND;
	if (bpf_io_uring_submit(ctx, &sqe, sizeof(sqe))) {
		st->send_failed++;
		return -EBUSY;
	}
	c->tx.pn++;
	if (kind != QO_SEAL_PING)
		c->ack_pending = 0;
	return 0;
}

/* Post a wake for connection `slot` (with the datagram in buffer `bid` if has_buf) and stop
 * keeping it: from now on its datagrams go to the application untouched. */
static __always_inline void qo_wake(struct io_uring_bpf_ctx *ctx, struct qo_stats *st,
				    struct qo_conn *c, __u32 slot, __u32 reason, int has_buf,
				    __u32 bid)
{
	__u32 flags = has_buf ? (QO_F_BUFFER | (bid << QO_BUFFER_SHIFT)) : 0;

	qo_wheel_unlink(c);
	c->state = QO_CONN_WAKING;
	c->wake_reason = reason;
	if (reason < QO_WAKE_REASONS)
		st->wakes[reason]++;
	bpf_io_uring_emit_cqe(ctx, QO_CQ_APP, (QO_TAG_WAKE << QO_TAG_SHIFT) | slot, reason, flags);
}

#endif /* QUIC_OFFLOAD_STATE_H */
