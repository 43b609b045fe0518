// SPDX-License-Identifier: GPL-2.0
/* tc direct-action classifier on the ingress hook of a pod's host-side veth: it sees every
 * frame the pod sends and enforces identity-based default deny.
 *
 * Non-IPv4 frames (ARP, IPv6 ND) and frames too short to parse pass. For IPv4 both the
 * source and the destination must be registered endpoints and the pair of their identities
 * must be allowed in policy_map; anything else is dropped. No pinning here: user space
 * pins the maps and the program. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ebpfcni.h"

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

char LICENSE[] SEC("license") = "GPL";

/* IPv4 address in host byte order -> identity. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINT_MAP_MAX);
	__type(key, __u32);
	__type(value, __u32);
} endpoint_map SEC(".maps");

/* {src_id, dst_id} -> action; POLICY_ALLOW allows, anything else denies. */
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

static __always_inline int count(__u32 stat, int verdict)
{
	__u64 *n = bpf_map_lookup_elem(&stats_map, &stat);

	if (n)
		*n += 1;
	return verdict;
}

SEC("tc")
int process_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	struct policy_key key;
	__u32 saddr, daddr;
	__u32 *src_id, *dst_id;
	__u8 *action;

	if ((void *)(eth + 1) > data_end)
		return count(STAT_PASS_SHORT, TC_ACT_OK);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(STAT_PASS_NON_IPV4, TC_ACT_OK);
	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) > data_end)
		return count(STAT_PASS_SHORT, TC_ACT_OK);

	saddr = bpf_ntohl(iph->saddr);
	daddr = bpf_ntohl(iph->daddr);
	src_id = bpf_map_lookup_elem(&endpoint_map, &saddr);
	if (!src_id)
		return count(STAT_DROP_UNKNOWN_SRC, TC_ACT_SHOT);
	dst_id = bpf_map_lookup_elem(&endpoint_map, &daddr);
	if (!dst_id)
		return count(STAT_DROP_UNKNOWN_DST, TC_ACT_SHOT);

	key.src_id = *src_id;
	key.dst_id = *dst_id;
	action = bpf_map_lookup_elem(&policy_map, &key);
	if (!action || *action != POLICY_ALLOW)
		return count(STAT_DROP_POLICY, TC_ACT_SHOT);
	return count(STAT_ALLOW, TC_ACT_OK);
}
