/* Base definitions for quic-offload BPF programs: integer types, sections, map
 * definitions and the standard helpers the runtime offers.
 *
 * Programs are freestanding: they include only this header and io_uring_bpf.h, never
 * system or kernel headers, so the same source compiles on any host with clang.
 *
 * Helpers are declared the classic way, as a constant function pointer whose value is the
 * helper ID; clang turns a call through it into a BPF `call ID` instruction.  Declaring a
 * new helper (for example one added by a program type with extra helpers) is one line:
 *
 *     BPF_HELPER(151, long, bpf_my_helper, (void *buf, __u32 size));
 */
#ifndef QUIC_OFFLOAD_BPF_BASE_H
#define QUIC_OFFLOAD_BPF_BASE_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;

#ifndef NULL
#define NULL ((void *)0)
#endif

/* Put a program, a map definition or a global into the named ELF section. */
#define SEC(name) __attribute__((section(name), used))

/* Small functions should be inlined into their caller; bpf-to-bpf calls cost a frame. */
#define __always_inline inline __attribute__((always_inline))
/* Keep a function a real bpf-to-bpf call (or a callback for bpf_loop). */
#define __noinline __attribute__((noinline))

/* Declare helper NAME with helper ID ID, return type RET and parenthesised arguments ARGS. */
#define BPF_HELPER(id, ret, name, args) static ret(*const name) args = (void *)(id)

/* ---------------------------------------------------------------------------------------
 * Maps.  Convention: one `struct bpf_map_def` per map in the ELF section "maps"; the map's
 * name is its symbol name.  Write them with BPF_MAP(), never by hand.
 * ------------------------------------------------------------------------------------- */

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_LRU_HASH 9

/* Flags of bpf_map_update_elem(). */
#define BPF_ANY 0     /* create or replace */
#define BPF_NOEXIST 1 /* create only */
#define BPF_EXIST 2   /* replace only */

struct bpf_map_def {
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
};

/* BPF_MAP(conns, BPF_MAP_TYPE_HASH, __u64, struct conn, 1024); */
#define BPF_MAP(name, map_type, key_type, value_type, entries)                                  \
	struct bpf_map_def SEC("maps") name = {                                                 \
		.type = (map_type),                                                             \
		.key_size = sizeof(key_type),                                                   \
		.value_size = sizeof(value_type),                                               \
		.max_entries = (entries),                                                       \
		.map_flags = 0,                                                                 \
	}

/* ---------------------------------------------------------------------------------------
 * Standard helpers (Linux helper IDs).
 * ------------------------------------------------------------------------------------- */

/* Pointer to the value stored under *key, or NULL. */
BPF_HELPER(1, void *, bpf_map_lookup_elem, (void *map, const void *key));
/* 0, -ENOENT / -EEXIST (flags BPF_NOEXIST / BPF_EXIST), -E2BIG when the map is full. */
BPF_HELPER(2, long, bpf_map_update_elem, (void *map, const void *key, const void *value,
					   __u64 flags));
/* 0, or -ENOENT when the key is absent (always -EINVAL on array maps). */
BPF_HELPER(3, long, bpf_map_delete_elem, (void *map, const void *key));
/* The engine's monotonic clock in nanoseconds. */
BPF_HELPER(5, __u64, bpf_ktime_get_ns, (void));
/* A pseudo-random 32-bit number. */
BPF_HELPER(7, __u32, bpf_get_prandom_u32, (void));
/* Copy size bytes of user memory at user_ptr into dst; 0 or a negative errno (dst zeroed). */
BPF_HELPER(148, long, bpf_copy_from_user, (void *dst, __u32 size, const void *user_ptr));
/* Call callback(i, callback_ctx) for i in 0..nr_loops-1 until it returns 1; flags must be 0.
 * Returns the number of calls made, or a negative errno. */
BPF_HELPER(181, long, bpf_loop, (__u32 nr_loops, void *callback, void *callback_ctx,
				 __u64 flags));

#endif /* QUIC_OFFLOAD_BPF_BASE_H */
