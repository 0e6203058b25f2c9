/* Exercises what the loader and both execution paths must get right, for the test suite:
 * named and static globals in .data/.rodata/.bss, array/hash/LRU maps (lookup, update,
 * delete, in-place updates), a bpf-to-bpf call, a bpf_loop callback reaching the caller's
 * stack, atomics (add, fetch-add, or, xchg, cmpxchg), 32- and 64-bit arithmetic with signed
 * compares, byte swaps and a division by a value that may be zero.
 */
#include "io_uring_bpf.h"

struct pair {
	__u64 a;
	__u64 b;
};

BPF_MAP(feat_array, BPF_MAP_TYPE_ARRAY, __u32, struct pair, 8);
BPF_MAP(feat_hash, BPF_MAP_TYPE_HASH, __u64, struct pair, 16);
BPF_MAP(feat_lru, BPF_MAP_TYPE_LRU_HASH, __u32, __u64, 4);

__u64 runs = 0;                         /* named .bss */
__u64 seed = 0x1234;                    /* named .data */
static __u64 hidden_total;              /* static .bss */
static __u32 hidden_scale = 3;          /* static .data */
const volatile __u32 rounds = 5;        /* named .rodata */

struct loop_ctx {
	__u64 acc;
	__u32 hits;
	__s32 last_update;
};

static long visit(__u32 i, void *data)
{
	struct loop_ctx *l = data;
	__u64 key = i % 3;
	struct pair *p = bpf_map_lookup_elem(&feat_hash, &key);

	if (!p) {
		struct pair fresh = { .a = i, .b = 1 };

		l->last_update = bpf_map_update_elem(&feat_hash, &key, &fresh, BPF_NOEXIST);
		return 0;
	}
	p->b++;
	l->acc += p->a * hidden_scale + i;
	l->hits++;
	if (l->hits > 7)
		return 1;
	return 0;
}

static __noinline __u64 mix(__u64 x, __u32 y)
{
	__s64 sx = (__s64)x;
	__u64 r = x ^ ((__u64)y << 7);

	if (sx < -5)
		r += 11;
	if ((__s32)y > 2)
		r = __builtin_bswap64(r);
	return r + (x / (y | 0)) + (x % (__u64)(y + 1));
}

SEC("iouring")
int features(struct io_uring_bpf_ctx *ctx)
{
	struct loop_ctx l = {};
	__u32 k, zero = 0;
	__u64 old, want;
	struct pair *slot;
	__u64 *lru;

	__sync_fetch_and_add(&runs, 1);
	bpf_loop(rounds * 2, visit, &l, 0);
	hidden_total += l.acc;
	k = (__u32)(seed & 7);
	slot = bpf_map_lookup_elem(&feat_array, &k);
	if (slot) {
		old = __sync_fetch_and_add(&slot->a, l.acc);
		__sync_fetch_and_or(&slot->b, 1ULL << (runs & 63));
		want = slot->a;
		__sync_val_compare_and_swap(&slot->a, want, want + 1);
		__sync_lock_test_and_set(&slot->b, old ^ slot->b);
	}
	for (k = 0; k < 6; k++) {
		__u64 v = runs * 10 + k;

		bpf_map_update_elem(&feat_lru, &k, &v, BPF_ANY);
	}
	lru = bpf_map_lookup_elem(&feat_lru, &zero);
	if (lru)
		*lru += 1;
	k = 1;
	if (runs % 2 == 0)
		bpf_map_delete_elem(&feat_hash, &k);
	seed = mix(seed * 6364136223846793005ULL + 1442695040888963407ULL, l.hits);
	ctx->wait_nr = (__u32)(hidden_total & 3);
	ctx->wait_idx = (__u32)__builtin_bswap16((__u16)l.last_update);
	return (int)(seed >> 33);
}
