// SPDX-License-Identifier: GPL-2.0
/* tc direct-action classifiers on a pod's host-side veth.
 *
 * process_tc (tc ingress: every frame the pod sends) and process_tc_egress (tc egress: every
 * frame delivered to the pod, after the node's Service DNAT). Both first check the veth is a
 * registered endpoint and, on ingress, that the frame carries the pod's own address (ARP
 * included), so no pod can borrow another's identity. IPv6 other than what the link needs
 * and ethertypes other than IPv4, ARP and IPv6 are dropped.
 *
 * config_map picks the mode of the pin directory:
 *  - identity (the original): on ingress, both addresses must resolve to identities and the
 *    pair must be allowed, in policy_map (all traffic) or rule_map (by protocol and port);
 *    with conntrack on, replies of allowed connections pass;
 *  - kubernetes: NetworkPolicy semantics, each direction on the node of the pod it belongs
 *    to, on the post-DNAT addresses. A flow to a Service address or to a local pod passes the
 *    sender's hook and is judged where it is delivered (the source's egress when the source
 *    is a local pod, and the destination's ingress); a flow to a remote pod is judged for
 *    egress at the sender, one DNATed to a remote backend as it leaves the node
 *    (process_tc_to_node); flows to anything else (the node, the world, CIDRs) are judged at
 *    the sender. Replies pass; the node (only this one) reaches its pods.
 * No pinning here: user space pins the maps and the programs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ebpfcni.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/policy.h"
#include "lib/conntrack.h"
#include "lib/events.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

char LICENSE[] SEC("license") = "GPL";

/* Never called, so never loaded: its parameter keeps struct ebpfcni_abi (every type user
 * space needs) in the object's BTF, where scripts/gen_bpf.ts reads it. A global variable
 * would do the same but costs a .bss map. */
static __attribute__((used)) int ebpfcni_abi(struct ebpfcni_abi *abi)
{
	return 0;
}

struct verdict_ctx {
	const struct dp_config *cfg;
	struct pkt p;
	__u32 ifindex;
	__u64 now;
	__u8 hook;
};

static __always_inline const struct dp_config *datapath_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&config_map, &zero);
}

static __always_inline int pass(__u32 stat)
{
	count(stat);
	return TC_ACT_OK;
}

/* A policy decision: counted per reason and per pair, and reported to the monitor. */
static __always_inline int decide(struct verdict_ctx *v, __u32 src, __u32 dst, int allow,
				  __u32 stat)
{
	count(stat);
	count_pair(src, dst, v->p.len);
	emit(v->cfg, &v->p, v->ifindex, src, dst, allow ? VERDICT_ALLOW : VERDICT_DROP, stat,
	     v->hook, v->now);
	return allow ? TC_ACT_OK : TC_ACT_SHOT;
}

/* Refused before any identity is known (spoofing, no endpoint, IPv6...): counted and
 * reported with what the frame says. */
static __always_inline int refuse(struct verdict_ctx *v, __u32 stat)
{
	count(stat);
	emit(v->cfg, &v->p, v->ifindex, 0, 0, VERDICT_DROP, stat, v->hook, v->now);
	return TC_ACT_SHOT;
}

static __always_inline int veth_owns(const struct veth_info *veth, __u32 addr)
{
	for (int i = 0; i < VETH_MAX_IPS; i++) {
		if (i >= veth->n_ips)
			break;
		if (veth->ips[i] == addr)
			return 1;
	}
	return 0;
}

/* Fills the ports of a later fragment from its first one; false when that is unknown. */
static __always_inline int frag_ports(struct pkt *p)
{
	struct frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id,
			      .proto = p->proto };
	struct frag_ports *fp = bpf_map_lookup_elem(&frag_map, &k);

	if (!fp)
		return 0;
	p->sport = fp->sport;
	p->dport = fp->dport;
	return 1;
}

static __always_inline void remember_frag(const struct pkt *p)
{
	struct frag_key k = { .saddr = p->saddr, .daddr = p->daddr, .id = p->ip_id,
			      .proto = p->proto };
	struct frag_ports fp = { .sport = p->sport, .dport = p->dport };

	bpf_map_update_elem(&frag_map, &k, &fp, BPF_ANY);
}

/* Parses the IPv4 packet into v->p. Returns -1 to go on, else the tc verdict. */
static __always_inline int ipv4_of(struct __sk_buff *skb, struct verdict_ctx *v)
{
	int rc = parse_ipv4(skb, &v->p);

	if (rc == PARSE_SHORT)
		return pass(STAT_PASS_SHORT);
	if (rc == PARSE_LATER_FRAG) {
		if (!frag_ports(&v->p))
			return refuse(v, STAT_DROP_FRAGMENT);
	} else if (v->p.first_frag) {
		remember_frag(&v->p);
	}
	return -1;
}

static __always_inline int identity_from_pod(struct verdict_ctx *v)
{
	const struct pkt *p = &v->p;
	int conntrack = v->cfg->flags & CFG_CONNTRACK;
	__u32 *sid = bpf_map_lookup_elem(&endpoint_map, &p->saddr);
	struct ct_entry *e;
	__u32 src, dst;
	int unknown;

	if (!sid)
		return refuse(v, STAT_DROP_UNKNOWN_SRC);
	src = *sid;
	if (conntrack && ct_lookup(v->cfg, p, &e, v->now, v->ifindex, p->saddr, src) != CT_NEW) {
		count_pair(e->src_id, e->dst_id, p->len);
		return pass(STAT_ALLOW_CT);
	}
	dst = identity_of(v->cfg, p->daddr, &unknown);
	if (!pair_allows(src, dst, p->proto, p->dport))
		return decide(v, src, dst, 0, unknown ? STAT_DROP_UNKNOWN_DST : STAT_DROP_POLICY);
	if (conntrack)
		ct_create(v->cfg, p, src, dst, CT_AT_SRC, v->ifindex, v->now);
	return decide(v, src, dst, 1, STAT_ALLOW);
}

static __always_inline int k8s_from_pod(struct verdict_ctx *v)
{
	const struct pkt *p = &v->p;
	struct ipcache_entry *se = bpf_map_lookup_elem(&ipcache_map, &p->saddr);
	struct ipcache_entry *de;
	struct ct_entry *e;
	__u32 src, dst;

	if (!se)
		return refuse(v, STAT_DROP_UNKNOWN_SRC);
	src = se->identity;
	if (ct_lookup(v->cfg, p, &e, v->now, v->ifindex, p->saddr, src) != CT_NEW) {
		count_pair(e->src_id, e->dst_id, p->len);
		return pass(STAT_ALLOW_CT);
	}
	if (in_service_cidrs(v->cfg, p->daddr)) {
		/* Its replies come back from the Service address, before the node's reverse NAT
		 * reaches the backend's entry: remember it so they pass. */
		ct_create(v->cfg, p, src, 0, CT_PENDING | CT_SERVICE | CT_AT_SRC, v->ifindex,
			  v->now);
		return pass(STAT_PASS_SERVICE);
	}
	de = bpf_map_lookup_elem(&ipcache_map, &p->daddr);
	if (de && de->identity != IDENTITY_HOST) {
		/* A local pod's hook judges both directions and records the connection. A remote
		 * pod's node judges only its ingress: the egress is this node's, here (its address
		 * is final: no DNAT on the way), and the entry lets the replies in. */
		if (de->flags & IPCACHE_LOCAL)
			return pass(STAT_PASS_TO_POD);
		dst = de->identity;
		if (!direction_allows(src, DIR_EGRESS, dst, cidr_identity(p->daddr), p->proto,
				      p->dport))
			return decide(v, src, dst, 0, STAT_DROP_EGRESS);
		ct_create(v->cfg, p, src, dst, CT_AT_SRC, v->ifindex, v->now);
		return decide(v, src, dst, 1, STAT_ALLOW);
	}
	dst = (de || is_host(p->daddr)) ? IDENTITY_HOST : IDENTITY_WORLD;
	if (!direction_allows(src, DIR_EGRESS, dst, cidr_identity(p->daddr), p->proto, p->dport))
		return decide(v, src, dst, 0, STAT_DROP_EGRESS);
	ct_create(v->cfg, p, src, dst, CT_AT_SRC, v->ifindex, v->now);
	return decide(v, src, dst, 1, STAT_ALLOW);
}

SEC("tc")
int process_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct verdict_ctx v = { .hook = HOOK_FROM_POD };
	struct veth_info *veth;
	__u32 ifindex = skb->ifindex;
	int rc;

	v.cfg = datapath_config();
	if (!v.cfg) /* never: an array's element always exists */
		return TC_ACT_SHOT;
	v.ifindex = ifindex;
	v.now = bpf_ktime_get_ns();
	veth = bpf_map_lookup_elem(&veth_map, &ifindex);
	if (!veth)
		return refuse(&v, STAT_DROP_NO_VETH);
	if ((void *)(eth + 1) > data_end)
		return pass(STAT_PASS_SHORT);
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		__u32 spa;

		if (arp_sender(skb, &spa))
			return pass(STAT_PASS_SHORT);
		if (spa != 0 && !veth_owns(veth, spa))
			return refuse(&v, STAT_DROP_SPOOFED);
		return pass(STAT_PASS_NON_IPV4);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return ipv6_link_only(skb) ? pass(STAT_PASS_NON_IPV4) : refuse(&v, STAT_DROP_IPV6);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return refuse(&v, STAT_DROP_ETHERTYPE);
	rc = ipv4_of(skb, &v);
	if (rc >= 0)
		return rc;
	if (!veth_owns(veth, v.p.saddr))
		return refuse(&v, STAT_DROP_SPOOFED);
	if (v.cfg->mode == MODE_KUBERNETES)
		return k8s_from_pod(&v);
	return identity_from_pod(&v);
}

/* The identity of an address arriving at a pod; *is_pod: a pod of this node (1) or of
 * another (2), else 0. */
static __always_inline __u32 k8s_peer(__u32 addr, int *is_pod)
{
	struct ipcache_entry *e = bpf_map_lookup_elem(&ipcache_map, &addr);

	*is_pod = 0;
	if (e) {
		if (e->identity != IDENTITY_HOST)
			*is_pod = e->flags & IPCACHE_LOCAL ? 1 : 2;
		return e->identity;
	}
	return is_host(addr) ? IDENTITY_HOST : IDENTITY_WORLD;
}

SEC("tc")
int process_tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct verdict_ctx v = { .hook = HOOK_TO_POD };
	struct veth_info *veth;
	struct ipcache_entry *de;
	struct ct_entry *e = NULL;
	__u32 ifindex = skb->ifindex;
	__u32 src, dst, pod_addr;
	int rc, ct, src_is_pod, to_pod;

	v.cfg = datapath_config();
	if (!v.cfg || v.cfg->mode != MODE_KUBERNETES)
		return TC_ACT_OK;
	v.ifindex = ifindex;
	v.now = bpf_ktime_get_ns();
	veth = bpf_map_lookup_elem(&veth_map, &ifindex);
	if (!veth)
		return refuse(&v, STAT_DROP_NO_VETH);
	if ((void *)(eth + 1) > data_end)
		return pass(STAT_PASS_SHORT);
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return pass(STAT_PASS_NON_IPV4);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return ipv6_link_only(skb) ? pass(STAT_PASS_NON_IPV4) : refuse(&v, STAT_DROP_IPV6);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return refuse(&v, STAT_DROP_ETHERTYPE);
	rc = ipv4_of(skb, &v);
	if (rc >= 0)
		return rc;

	/* A broadcast reaches the pod whatever its destination address says: judge it as
	 * addressed to the pod, every time (its entry would name the broadcast address). */
	to_pod = veth_owns(veth, v.p.daddr);
	pod_addr = to_pod ? v.p.daddr : veth->ips[0];
	ct = ct_lookup(v.cfg, &v.p, &e, v.now, ifindex, pod_addr, 0);
	if (e && (ct == CT_REPLY || !(e->flags & CT_PENDING))) {
		count_pair(e->src_id, e->dst_id, v.p.len);
		return pass(STAT_ALLOW_CT);
	}
	if (e)
		ct_forget(&v.p);
	de = bpf_map_lookup_elem(&ipcache_map, &pod_addr);
	if (!de)
		return refuse(&v, STAT_DROP_UNKNOWN_DST);
	dst = de->identity;
	src = k8s_peer(v.p.saddr, &src_is_pod);
	if (src == IDENTITY_HOST) {
		if (to_pod)
			ct_create(v.cfg, &v.p, src, dst, CT_AT_DST, ifindex, v.now);
		return decide(&v, src, dst, 1, STAT_ALLOW_HOST);
	}
	/* A remote pod's egress was judged on its own node, as it left (process_tc_to_node). */
	if (src_is_pod == 1 && !direction_allows(src, DIR_EGRESS, dst, cidr_identity(pod_addr),
						      v.p.proto, v.p.dport))
		return decide(&v, src, dst, 0, STAT_DROP_EGRESS);
	if (!direction_allows(dst, DIR_INGRESS, src, cidr_identity(v.p.saddr), v.p.proto,
			      v.p.dport))
		return decide(&v, src, dst, 0, STAT_DROP_INGRESS);
	/* New, or recorded pending by the sender: now judged. */
	if (to_pod)
		ct_create(v.cfg, &v.p, src, dst, CT_AT_DST, ifindex, v.now);
	return decide(&v, src, dst, 1, STAT_ALLOW);
}

/* tc egress of the device that carries pod traffic to other nodes (the vxlan device, or the
 * uplink in native routing): the egress of this node's pods, judged after the node's Service
 * DNAT on the address the packet really goes to, before it leaves. The remote node judges
 * only its pod's ingress. Anything not sent by a local pod passes untouched: the node's own
 * traffic, forwarded traffic, and pods' traffic already masqueraded (tc egress runs after
 * netfilter's POSTROUTING), which the pod's own hook judged. */
SEC("tc")
int process_tc_to_node(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct verdict_ctx v = { .hook = HOOK_TO_NODE };
	struct ipcache_entry *se;
	struct ct_entry *e = NULL;
	__u32 src, dst;
	int rc, ct, dst_is_pod;

	v.cfg = datapath_config();
	if (!v.cfg || v.cfg->mode != MODE_KUBERNETES)
		return TC_ACT_OK;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	rc = parse_ipv4(skb, &v.p);
	if (rc == PARSE_SHORT)
		return TC_ACT_OK;
	se = bpf_map_lookup_elem(&ipcache_map, &v.p.saddr);
	if (!se || !(se->flags & IPCACHE_LOCAL) || se->identity == IDENTITY_HOST)
		return TC_ACT_OK;
	v.ifindex = skb->ifindex;
	v.now = bpf_ktime_get_ns();
	if (rc == PARSE_LATER_FRAG) {
		if (!frag_ports(&v.p))
			return refuse(&v, STAT_DROP_FRAGMENT);
	} else if (v.p.first_frag) {
		remember_frag(&v.p);
	}
	src = se->identity;
	/* No pod sits behind this device: local 0 keeps the entries' veth bindings as they are. */
	ct = ct_lookup(v.cfg, &v.p, &e, v.now, v.ifindex, 0, 0);
	if (e && (ct == CT_REPLY || !(e->flags & CT_PENDING))) {
		count_pair(e->src_id, e->dst_id, v.p.len);
		return pass(STAT_ALLOW_CT);
	}
	dst = k8s_peer(v.p.daddr, &dst_is_pod);
	if (!direction_allows(src, DIR_EGRESS, dst, cidr_identity(v.p.daddr), v.p.proto,
			      v.p.dport)) {
		ct_forget(&v.p);
		return decide(&v, src, dst, 0, STAT_DROP_EGRESS);
	}
	if (e) {
		e->flags &= ~CT_PENDING; /* judged: its next packets pass on it */
	} else {
		/* The sender's entry (a bare SYN, which the lookup leaves to be judged) is kept;
		 * else a Service's backend, known only after DNAT: recorded here. */
		struct ct_key k;
		int pooled;

		ct_key_of(&k, v.p.saddr, v.p.daddr, v.p.sport,
			  v.p.proto == IPPROTO_ICMP ? 0 : v.p.dport, v.p.proto);
		e = ct_find(&k, &pooled);
		if (e)
			e->flags &= ~CT_PENDING;
		else
			ct_create(v.cfg, &v.p, src, dst, 0, v.ifindex, v.now);
	}
	return decide(&v, src, dst, 1, STAT_ALLOW);
}
