/* Map key and value layouts shared by the datapath and user space.
 * The TypeScript side mirrors these in src/datapath/layout.ts; a test checks both against
 * the BTF of the built object. Keep the two in step. */
#ifndef EBPFCNI_H
#define EBPFCNI_H

#define ENDPOINT_MAP_MAX 16384
#define POLICY_MAP_MAX 65536
#define POLICY_ALLOW 1

/* Verdict counters in stats_map (per-CPU array), indexed by these. */
enum ebpfcni_stat {
	STAT_PASS_NON_IPV4 = 0,
	STAT_PASS_SHORT = 1,
	STAT_DROP_UNKNOWN_SRC = 2,
	STAT_DROP_UNKNOWN_DST = 3,
	STAT_DROP_POLICY = 4,
	STAT_ALLOW = 5,
	STAT_MAX = 6,
};

/* policy_map key: identities of the sending and the receiving endpoint. */
struct policy_key {
	__u32 src_id;
	__u32 dst_id;
} __attribute__((packed));

#endif
