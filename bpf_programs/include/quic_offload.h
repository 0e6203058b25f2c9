/* The keepalive offload's program ABI: what the application writes for the programs (the
 * configuration block and the park record), what the programs keep in maps, what they write
 * back, the wake reasons and CQ 0 tags they post, and the crypto-shim helpers they call.
 *
 * Every struct here is mirrored byte for byte in quic_offload/offload_abi.py; the
 * _Static_asserts pin sizes and offsets, and a test checks the Python side against them.
 *
 * Key material never passes through programs: the park record's key block is read and wiped
 * by bpf_quic_key_install, and written again by bpf_quic_key_export at reclaim; programs only
 * ever pass its user address along.
 */
#ifndef QUIC_OFFLOAD_H
#define QUIC_OFFLOAD_H

#include "io_uring_bpf.h"

/* ---------------------------------------------------------------------------------------
 * Completion queues of an offload ring.
 * ------------------------------------------------------------------------------------- */
#define QO_CQ_APP 0   /* the application's: wakes, handed-over datagrams, park/reclaim done */
#define QO_CQ_TIMER 1 /* the keepalive tick's TIMEOUT completions (keepalive waits on it) */
#define QO_CQ_RX 2    /* the sockets' multishot RECVMSG completions (rx waits on it) */
#define QO_CQ_SEND 3  /* failed keepalive/ACK sends (successes are skipped) */

/* ---------------------------------------------------------------------------------------
 * CQ 0 entries posted by the programs.  user_data carries a tag in its top byte; user
 * addresses (park/reclaim completions) never have the top bit set.
 * ------------------------------------------------------------------------------------- */
#define QO_TAG_SHIFT 56
#define QO_TAG_DATAGRAM 0x80ULL /* | socket fd: a datagram handed over untouched */
#define QO_TAG_WAKE 0x81ULL     /* | connection slot: res = reason; maybe a datagram too */
#define QO_VALUE_MASK ((1ULL << QO_TAG_SHIFT) - 1)

/* Wake reasons (res of a QO_TAG_WAKE CQE). */
#define QO_WAKE_DATA 1            /* a datagram with frames other than PING/ACK/PADDING */
#define QO_WAKE_CLOSED 2          /* the peer sent CONNECTION_CLOSE */
#define QO_WAKE_STATELESS_RESET 3 /* an undecryptable datagram ended in a reset token */
#define QO_WAKE_UNRESPONSIVE 4    /* k PINGs unacknowledged, or the idle deadline passed */
#define QO_WAKE_PATH_CHANGE 5     /* an authenticated packet from a new address/socket */
#define QO_WAKE_KEY_UPDATE 6      /* a key phase the engine could not follow */
#define QO_WAKE_RECLAIMED 7       /* the application asked for the connection back */
#define QO_WAKE_ERROR 8           /* the engine could not keep the connection */
#define QO_WAKE_REASONS 9

/* A wake CQE carries the datagram that caused it (if any) like a RECVMSG completion does. */
#define QO_F_BUFFER IORING_CQE_F_BUFFER
#define QO_BUFFER_SHIFT 16

/* ---------------------------------------------------------------------------------------
 * Limits.
 * ------------------------------------------------------------------------------------- */
#define QO_MAX_CONNS 16384     /* connection slots (the conns map) */
#define QO_MAX_CID_LEN 20
#define QO_MAX_RESET_TOKENS 8
#define QO_MAX_RANGES 8        /* received-PN ranges a connection tracks */
#define QO_MAX_PEER_ACK_RANGES 4
#define QO_WHEEL_SLOTS 4096    /* timer-wheel buckets */
#define QO_SECRET_MAX 48
#define QO_HP_KEY_MAX 32
#define QO_SOCKADDR_MAX 28
#define QO_NO_PN 0xFFFFFFFFFFFFFFFFULL

#ifndef ENOBUFS
#define ENOBUFS 105
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

/* ---------------------------------------------------------------------------------------
 * Shared value types.
 * ------------------------------------------------------------------------------------- */
struct qo_cid {
	__u8 len;
	__u8 bytes[QO_MAX_CID_LEN];
	__u8 pad[3];
};

/* A range of packet numbers, both ends inclusive. */
struct qo_range {
	__u64 smallest;
	__u64 largest;
};

/* ---------------------------------------------------------------------------------------
 * The configuration block (user memory), copied into the engine map by the `adopt` program's
 * first run and by `rx`/`keepalive` when they start.
 * ------------------------------------------------------------------------------------- */
struct qo_config {
	__u64 magic;           /* QO_CONFIG_MAGIC */
	__u64 buf_base;        /* user address of provided buffer 0 */
	__u64 buf_ring;        /* user address of the provided-buffer ring */
	__u64 return_ring;     /* user address of the buffer-return ring (app -> engine) */
	__u64 recv_msghdr;     /* user address of the multishot RECVMSG msghdr template */
	__u64 send_base;       /* user address of send slot 0 */
	__u64 tick_ts;         /* user address of the keepalive tick's timespec */
	__u64 tick_ns;         /* the tick, in ns (timer-wheel granularity) */
	__u32 buf_size;        /* bytes per provided buffer */
	__u32 buf_count;       /* buffers (a power of two: the ring's size) */
	__u32 return_entries;  /* entries of the return ring (a power of two) */
	__u32 send_slots;      /* send slots (a power of two) */
	__u32 send_slot_size;
	__u32 name_cap;        /* msg_namelen of the RECVMSG template */
	__u16 bgid;            /* provided-buffer group */
	__u8 host_cid_len;     /* length of our connection IDs (short-header DCID length) */
	__u8 ack_delay_exponent; /* ours, for the ACK frames we send */
	__u32 reserved;
};
#define QO_CONFIG_MAGIC 0x31474643514f4651ULL /* "QOFQCFG1" */

/* The buffer-return ring: the application pushes IDs of provided buffers it is done with;
 * rx (the only producer of the provided-buffer ring) moves them back into it. */
struct qo_return_ring {
	__u32 head; /* consumer (engine) */
	__u32 tail; /* producer (application) */
	/* followed by __u16 bids[return_entries] */
};

/* One send slot: a msghdr with one iovec, the peer address and the packet.  Slots are used
 * round robin; the application fills the constant pointers once. */
struct qo_send_slot {
	__u64 msg_name;       /* -> name */
	__u32 msg_namelen;    /* set per send */
	__u32 pad0;
	__u64 msg_iov;        /* -> iov */
	__u64 msg_iovlen;     /* 1 */
	__u64 msg_control;    /* 0 */
	__u64 msg_controllen; /* 0 */
	__u32 msg_flags;
	__u32 pad1;
	__u64 iov_base;       /* -> packet */
	__u64 iov_len;        /* set per send */
	__u8 name[32];
	__u8 packet[128];
};
#define QO_SEND_SLOT_PACKET_MAX 128

/* ---------------------------------------------------------------------------------------
 * The park record (user memory, only while a park or a reclaim is in flight).  For `adopt`
 * the application writes the snapshot and the key block; for `reclaim`, a record whose
 * snapshot names the slot and park id, which reclaim overwrites with the write-back and the
 * current keys.  user_data of both requests is the record's address.
 * ------------------------------------------------------------------------------------- */

/* Key material: read (and wiped) only by bpf_quic_key_install, written only by
 * bpf_quic_key_export.  Programs never load it. */
struct qo_keys {
	__u16 suite;          /* TLS cipher suite code (0x1301, 0x1302, 0x1303) */
	__u8 key_phase;
	__u8 secret_len;
	__u32 version;        /* QUIC version */
	__u32 send_generation;
	__u32 recv_generation;
	__u8 send_secret[QO_SECRET_MAX];
	__u8 recv_secret[QO_SECRET_MAX];
	__u8 send_hp[QO_HP_KEY_MAX];
	__u8 recv_hp[QO_HP_KEY_MAX];
	__u8 hp_len;
	__u8 n_reset_tokens;
	__u8 pad[6];
	__u8 reset_tokens[QO_MAX_RESET_TOKENS][16];
	__u64 next_pn;        /* the table refuses to seal below it (nonce-reuse guard) */
};

/* What the application hands over at park. */
struct qo_snapshot {
	__u64 magic;                 /* QO_SNAPSHOT_MAGIC */
	__s32 status;                /* written by adopt: 0 parked, or -errno */
	__u32 park_id;               /* the application's name for this park; reclaim repeats it */
	__u32 slot;                  /* connection slot (also the key slot) */
	__s32 sock_fd;               /* the connection's UDP socket */
	__u8 role;                   /* 0 client, 1 server */
	__u8 spin;                   /* spin bit value we send */
	__u8 n_ranges;               /* received ranges below */
	__u8 reserved;
	__u8 unresponsive_after;     /* k: unacknowledged PINGs before UNRESPONSIVE */
	__u8 peer_ack_delay_exponent;
	__u8 ack_pending;            /* received packets not yet reported in an ACK */
	__u8 ack_eliciting_pending;  /* ... and one of them was ack-eliciting (ACK owed) */
	__u64 next_pn;
	__u64 largest_acked;         /* largest PN the peer acknowledged (QO_NO_PN: none) */
	__u64 largest_received;      /* largest PN received (QO_NO_PN: none) */
	__u64 largest_received_ns;   /* engine clock */
	__u64 last_receive_ns;       /* last processed packet (idle timer start) */
	__u64 last_send_ns;          /* last ack-eliciting packet sent */
	__u64 interval_ns;           /* keepalive interval */
	__u64 idle_timeout_ns;       /* effective idle timeout */
	__u64 pto_ns;                /* probe timeout: PINGs keep this far from the deadline */
	__u64 max_ack_delay_ns;      /* ours: how long we may hold an ACK */
	struct qo_cid dcid;          /* the peer's CID we send to */
	__u32 peer_addr_len;
	__u8 peer_addr[QO_SOCKADDR_MAX];
	struct qo_range ranges[QO_MAX_RANGES];      /* newest first */
	struct qo_cid host_cid;      /* our CID the peer sends to: the engine listens for it */
};
#define QO_SNAPSHOT_MAGIC 0x31504e53514f4651ULL /* "QOFQSNP1" */

/* What reclaim writes back over the snapshot. */
struct qo_writeback {
	__u64 magic;                 /* QO_WRITEBACK_MAGIC */
	__s32 status;                /* written by reclaim: 0, or -errno (nothing written back) */
	__u32 slot;
	__u64 next_pn;
	__u64 largest_acked;
	__u64 largest_received;
	__u64 largest_received_ns;
	__u64 last_receive_ns;
	__u64 last_send_ns;
	__u64 latest_rtt_ns;         /* 0: no sample */
	__u64 smoothed_rtt_ns;
	__u64 min_rtt_ns;
	__u32 pings_sent;
	__u32 pings_acked;
	__u32 acks_sent;
	__u32 packets_received;
	__u32 wake_reason;
	__u8 n_ranges;
	__u8 n_peer_ack_ranges;
	__u8 spin;
	__u8 ack_pending;
	__u64 peer_ack_delay_ns;     /* ack delay of the peer's latest ACK */
	struct qo_range ranges[QO_MAX_RANGES];                 /* newest first */
	struct qo_range peer_ack_ranges[QO_MAX_PEER_ACK_RANGES]; /* the peer's latest ACK */
};
#define QO_WRITEBACK_MAGIC 0x31424b57514f4651ULL /* "QOFQWKB1" */

struct qo_park_record {
	union {
		struct qo_snapshot snapshot;
		struct qo_writeback writeback;
	};
	struct qo_keys keys;
};

/* ---------------------------------------------------------------------------------------
 * Engine-side state (maps).
 * ------------------------------------------------------------------------------------- */

/* What bpf_quic_seal needs; kept inside struct qo_conn so its address can be passed. */
struct qo_tx {
	__u64 pn;                    /* packet number to use */
	__u64 largest_acked;         /* for the PN length (QO_NO_PN: none) */
	__u64 ack_delay_us;          /* ACK delay to report */
	__u8 spin;
	__u8 n_ranges;
	__u8 ack_delay_exponent;
	__u8 pad0;
	__u32 peer_addr_len;
	struct qo_cid dcid;
	__u8 peer_addr[QO_SOCKADDR_MAX];
	__u32 pad1;
	struct qo_range ranges[QO_MAX_RANGES]; /* newest first */
};

/* Packet kinds bpf_quic_seal builds. */
#define QO_SEAL_PING 1     /* PING, padded */
#define QO_SEAL_ACK 2      /* ACK only */
#define QO_SEAL_PING_ACK 3 /* PING + ACK */

#define QO_CONN_FREE 0
#define QO_CONN_PARKED 1
#define QO_CONN_WAKING 2 /* a wake was posted: datagrams go to the application untouched */

struct qo_conn {
	struct qo_tx tx;
	__u64 token;                 /* the snapshot's park_id: reclaim must name it */
	__u32 state;
	__s32 sock_fd;
	__u32 wheel_next;            /* slot + 1 of the next connection in the bucket; 0 = end */
	__u32 wheel_prev;            /* slot + 1 of the previous one; 0 = bucket head */
	__u32 wheel_bucket;
	__u16 unanswered;            /* PINGs sent since the last one acknowledged */
	__u8 unresponsive_after;
	__u8 peer_ack_delay_exponent;
	__u8 ack_pending;
	__u8 n_peer_ack_ranges;
	__u8 in_wheel;
	__u8 wake_reason;            /* why it was woken (QO_WAKE_*), 0 while parked */
	__u8 role;                   /* 0 client, 1 server */
	__u8 pad[3];
	__u64 due_ns;                /* next PING */
	__u64 interval_ns;
	__u64 idle_timeout_ns;
	__u64 pto_ns;
	__u64 last_ping_pn;
	__u64 last_ping_ns;
	__u64 largest_received_ns;
	__u64 last_receive_ns;
	__u64 last_send_ns;
	__u64 latest_rtt_ns;
	__u64 smoothed_rtt_ns;
	__u64 min_rtt_ns;
	__u64 peer_ack_delay_ns;
	__u64 key_update_ns;         /* when the peer last updated keys (0: not pending) */
	__u32 pings_sent;
	__u32 pings_acked;
	__u32 acks_sent;
	__u32 packets_received;
	struct qo_range peer_ack_ranges[QO_MAX_PEER_ACK_RANGES];
	struct qo_cid host_cid;      /* the CID index entry to remove at reclaim */
};

/* Key of the CID index: the CID bytes padded with zeros. */
struct qo_cid_key {
	__u8 bytes[QO_MAX_CID_LEN];
};

/* Engine-wide counters (one array entry). */
struct qo_stats {
	__u64 adopted;
	__u64 reclaimed;
	__u64 adopt_failed;
	__u64 pings_sent;
	__u64 ping_acks_sent;        /* PING+ACK keepalives (subset of pings_sent) */
	__u64 acks_sent;             /* ACK-only answers to the peer's ack-eliciting packets */
	__u64 acks_received;         /* the peer's ACKs of our PINGs */
	__u64 packets_received;      /* authenticated PING/ACK/PADDING-only packets */
	__u64 datagrams_received;    /* every datagram the rx program saw */
	__u64 datagrams_passed;      /* handed to the application (not parked, or a wake) */
	__u64 dropped_undecryptable;
	__u64 dropped_duplicate;
	__u64 dropped_malformed;
	__u64 dropped_unknown;       /* noise on a parked client's own socket */
	__u64 dropped_bogus_ack;     /* ACK frames acknowledging packets never sent (ignored) */
	__u64 send_failed;
	__u64 seal_failed;
	__u64 recv_rearmed;          /* multishot RECVMSG re-submitted */
	__u64 buffers_starved;       /* the provided-buffer ring ran dry */
	__u64 ticks;
	__u64 key_updates;           /* peer key updates followed */
	__u64 late_ping_ns_max;      /* worst lateness of a PING against its due time */
	__u64 wheel_visited;         /* connections the timer wheel looked at (cost of ticks) */
	__u64 wakes[QO_WAKE_REASONS];
};

/* The engine's own bookkeeping (one array entry). */
struct qo_engine {
	struct qo_config config;
	__u64 last_tick;             /* last timer-wheel tick processed */
	__u32 send_seq;              /* next send slot (mod send_slots) */
	__u32 buf_tail;              /* provided-buffer ring tail as rx last published it */
	__u32 configured;
	__u32 starved_fd_plus1;      /* a socket whose receive waits for buffers (+1; 0 none) */
	__u32 tick_armed;            /* the keepalive tick's multishot TIMEOUT is running */
	__u32 pad;
};

/* Argument block of `rx` and `keepalive`: the configuration block's user address is their
 * ctx->user_data. */

/* ---------------------------------------------------------------------------------------
 * The crypto-shim helpers (IDs of this engine's `quic_offload` program type).
 * ------------------------------------------------------------------------------------- */

/* Install the key block at user address `keys` into key slot `slot`, then wipe the block.
 * 0, -EINVAL (bad block or suite), -EBUSY (slot in use), -EFAULT. */
BPF_HELPER(1000, long, bpf_quic_key_install, (__u32 slot, __u64 keys, __u32 len));

/* Build and seal a `kind` packet (QO_SEAL_*) from *tx for key slot `slot` into the send slot
 * at user address `send_slot` (packet, iov_len, msg_name, msg_namelen).  The packet length,
 * or -errno (-EINVAL, -EFAULT, -ENOENT: empty slot, -EEXIST: packet number reuse). */
BPF_HELPER(1001, long, bpf_quic_seal, (__u32 slot, const struct qo_tx *tx, __u32 tx_len,
				      __u64 send_slot, __u32 kind));

/* Result of bpf_quic_open.  `largest_received`, `dcid_len` and `peer_ack_delay_exponent`
 * are inputs. */
struct qo_rx {
	__u64 largest_received;      /* in: for packet-number recovery (QO_NO_PN: none) */
	__u32 dcid_len;              /* in */
	__u32 status;                /* out: QO_RX_* */
	__u64 pn;
	__u64 ack_largest;
	__u64 ack_delay_us;
	__u8 ack_eliciting;
	__u8 has_ack;
	__u8 key_updated;
	__u8 spin;
	__u8 key_phase;
	__u8 n_ack_ranges;
	__u8 peer_ack_delay_exponent; /* in: decodes the peer's ACK Delay */
	__u8 pad;
	struct qo_range ack_ranges[QO_MAX_PEER_ACK_RANGES]; /* newest first */
};

#define QO_RX_CONTROL_ONLY 1   /* only PADDING / PING / ACK: the engine may answer */
#define QO_RX_CLOSE 2          /* CONNECTION_CLOSE */
#define QO_RX_OTHER 3          /* other frames: the application must see it */
#define QO_RX_UNDECRYPTABLE 4  /* failed authentication: check reset tokens */
#define QO_RX_PROTOCOL_ERROR 5 /* authenticated but malformed */
#define QO_RX_LONG_HEADER 6
#define QO_RX_DROPPED 7        /* too short / not QUIC: drop */

/* Open the datagram at user address `pkt` (`len` bytes) with key slot `slot`; fills *rx.
 * 0, or -errno for bad arguments (the verdict itself is rx->status). */
BPF_HELPER(1002, long, bpf_quic_open, (__u32 slot, __u64 pkt, __u32 len, struct qo_rx *rx,
				      __u32 rx_len));

/* 1 if the datagram's last 16 bytes match one of the slot's stateless-reset tokens (compared
 * in constant time), 0 if not, -errno for bad arguments. */
BPF_HELPER(1003, long, bpf_quic_check_reset, (__u32 slot, __u64 pkt, __u32 len));

/* Which connection, if any, does this datagram reset?  The slot + 1 of the connection one of
 * whose stateless-reset tokens the datagram's last 16 bytes equal (compared in constant
 * time), 0 if none.  For datagrams whose DCID names no parked connection: a reset carries
 * no usable connection ID (RFC 9000 §10.3). */
BPF_HELPER(1007, long, bpf_quic_match_reset, (__u64 pkt, __u32 len));

/* Write the slot's current keys into the key block at user address `keys`. 0 or -errno. */
BPF_HELPER(1004, long, bpf_quic_key_export, (__u32 slot, __u64 keys, __u32 len));

/* Erase the slot's keys.  0, or -ENOENT when it was empty. */
BPF_HELPER(1005, long, bpf_quic_key_wipe, (__u32 slot));

/* Forget the keys of the previous key phase (3 PTOs after a peer key update). 0 or -ENOENT. */
BPF_HELPER(1006, long, bpf_quic_key_discard_previous, (__u32 slot));

/* ---------------------------------------------------------------------------------------
 * Layout pins (mirrored in quic_offload/offload_abi.py).
 * ------------------------------------------------------------------------------------- */
_Static_assert(sizeof(struct qo_cid) == 24, "qo_cid");
_Static_assert(sizeof(struct qo_config) == 96, "qo_config");
_Static_assert(sizeof(struct qo_send_slot) == 232, "qo_send_slot");
_Static_assert(sizeof(struct qo_keys) == 320, "qo_keys");
_Static_assert(sizeof(struct qo_snapshot) == 320, "qo_snapshot");
_Static_assert(sizeof(struct qo_writeback) == 312, "qo_writeback");
_Static_assert(sizeof(struct qo_park_record) == 640, "qo_park_record");
_Static_assert(sizeof(struct qo_tx) == 216, "qo_tx");
_Static_assert(sizeof(struct qo_conn) == 472, "qo_conn");
_Static_assert(sizeof(struct qo_rx) == 112, "qo_rx");
_Static_assert(sizeof(struct qo_stats) == 256, "qo_stats");
_Static_assert(sizeof(struct qo_engine) == 128, "qo_engine");

#endif /* QUIC_OFFLOAD_H */
