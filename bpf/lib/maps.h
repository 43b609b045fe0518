/* The datapath's maps (BTF-defined). No pinning here: user space pins them and the programs
 * under the pin directory. Layouts are in ebpfcni.h. */
#ifndef EBPFCNI_MAPS_H
#define EBPFCNI_MAPS_H

/* IPv4 address in host byte order -> identity (identity mode). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINT_MAP_MAX);
	__type(key, __u32);
	__type(value, __u32);
} endpoint_map SEC(".maps");

/* {src_id, dst_id} -> action; POLICY_ALLOW allows all traffic of the pair (identity mode). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_MAP_MAX);
	__type(key, struct policy_key);
	__type(value, __u8);
} policy_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_config);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VETH_MAP_MAX);
	__type(key, __u32);
	__type(value, struct veth_info);
} veth_map SEC(".maps");

/* Addresses of the node (host byte order): the reserved identity "host". */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HOST_MAP_MAX);
	__type(key, __u32);
	__type(value, __u32);
} host_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPCACHE_MAP_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct ipcache_entry);
} ipcache_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CIDR_MAP_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cidr_key);
	__type(value, __u32);
} cidr_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, RULE_MAP_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rule_key);
	__type(value, __u32);
} rule_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ISOLATION_MAP_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
} isolation_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CT_MAP_MAX);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} ct_map SEC(".maps");

/* Not an LRU: nothing evicts an established connection; see conntrack.h. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_EST_MAP_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} ct_est_map SEC(".maps");

/* Local pod address (host order) -> its entries in ct_est_map (signed: see ct_charge). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_QUOTA_MAP_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
} ct_quota_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FRAG_MAP_MAX);
	__type(key, struct frag_key);
	__type(value, struct frag_ports);
} frag_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, PAIR_STATS_MAP_MAX);
	__type(key, struct policy_key);
	__type(value, struct pair_stats);
} pair_stats_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RING_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_state);
} rate_map SEC(".maps");

#endif
