/* `reclaim`: give a connection back to the application.
 *
 * ctx->user_data is the address of a park record whose snapshot names the connection (slot
 * and park id).  The program removes the connection from the timer wheel and the CID index, writes its state back over the
 * snapshot (packet numbers, received and acknowledged ranges, times, RTT, counters, why it
 * was woken), has the shim export the current keys into the key block and wipe the slot,
 * and frees the slot.  Works for parked and for woken connections alike.
 */
#include "offload_state.h"

SEC("iouring")
int reclaim(struct io_uring_bpf_ctx *ctx)
{
	__u64 rec = ctx->user_data;
	struct qo_stats *st = qo_stats();
	struct qo_park_record *scratch;
	struct qo_writeback *wb;
	struct qo_snapshot *s;
	struct qo_cid_key key;
	struct qo_conn *c;
	__u32 zero = 0, slot, i, n;
	__s32 status;

	if (!st)
		return 0;
	scratch = bpf_map_lookup_elem(&qo_scratch, &zero);
	if (!scratch)
		return 0;
	s = &scratch->snapshot;
	if (bpf_copy_from_user(s, sizeof(*s), (void *)rec))
		return 0;
	slot = s->slot;
	c = qo_conn(slot);
	if (s->magic != QO_SNAPSHOT_MAGIC || !c || c->state == QO_CONN_FREE ||
	    c->token != s->park_id) {
		status = -ENOENT;
		bpf_copy_to_user((void *)(rec + __builtin_offsetof(struct qo_writeback, status)),
				 &status, sizeof(status));
		return 0;
	}
	qo_wheel_unlink(c);
	if (!c->role)
		bpf_map_delete_elem(&qo_sock_owner, &c->sock_fd);
	qo_cid_key_of(&key, &c->host_cid);
	bpf_map_delete_elem(&qo_cids, &key);

	wb = &scratch->writeback;
	__builtin_memset(wb, 0, sizeof(*wb));
	wb->magic = QO_WRITEBACK_MAGIC;
	wb->slot = slot;
	wb->next_pn = c->tx.pn;
	wb->largest_acked = c->tx.largest_acked;
	wb->largest_received = c->tx.n_ranges ? c->tx.ranges[0].largest : QO_NO_PN;
	wb->largest_received_ns = c->largest_received_ns;
	wb->last_receive_ns = c->last_receive_ns;
	wb->last_send_ns = c->last_send_ns;
	wb->latest_rtt_ns = c->latest_rtt_ns;
	wb->smoothed_rtt_ns = c->smoothed_rtt_ns;
	wb->min_rtt_ns = c->min_rtt_ns;
	wb->pings_sent = c->pings_sent;
	wb->pings_acked = c->pings_acked;
	wb->acks_sent = c->acks_sent;
	wb->packets_received = c->packets_received;
	wb->wake_reason = c->wake_reason ? c->wake_reason : QO_WAKE_RECLAIMED;
	wb->spin = c->tx.spin;
	wb->ack_pending = c->ack_pending;
	wb->peer_ack_delay_ns = c->peer_ack_delay_ns;
	n = c->tx.n_ranges;
	wb->n_ranges = n;
#pragma clang loop unroll(disable)
	for (i = 0; i < QO_MAX_RANGES; i++) {
		if (i >= n)
			break;
		wb->ranges[i] = c->tx.ranges[i];
	}
	n = c->n_peer_ack_ranges;
	wb->n_peer_ack_ranges = n;
#pragma clang loop unroll(disable)
	for (i = 0; i < QO_MAX_PEER_ACK_RANGES; i++) {
		if (i >= n)
			break;
		wb->peer_ack_ranges[i] = c->peer_ack_ranges[i];
	}
	status = (__s32)bpf_quic_key_export(slot,
					    rec + __builtin_offsetof(struct qo_park_record, keys),
					    sizeof(struct qo_keys));
	wb->status = status;
	bpf_quic_key_wipe(slot);
	c->state = QO_CONN_FREE;
	c->token = 0;
	st->reclaimed++;
	bpf_copy_to_user((void *)rec, wb, sizeof(*wb));
	return 0;
}
