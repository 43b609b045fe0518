/* Policy lookups: identities of addresses, and whether rules allow a flow, in identity mode
 * (one rule per pair) and in kubernetes mode (the source's egress and the destination's
 * ingress, each allowing everything unless the subject is isolated for that direction). */
#ifndef EBPFCNI_POLICY_H
#define EBPFCNI_POLICY_H

/* The identity of the longest registered prefix holding `addr` (host order), or 0. */
static __always_inline __u32 cidr_identity(__u32 addr)
{
	struct cidr_key k = { .prefixlen = 32, .addr = bpf_htonl(addr) };
	__u32 *id = bpf_map_lookup_elem(&cidr_map, &k);

	return id ? *id : 0;
}

static __always_inline int is_host(__u32 addr)
{
	return bpf_map_lookup_elem(&host_map, &addr) != NULL;
}

/* Does a rule allow `subject` to talk to `peer` (in `dir`) on this protocol and port? */
static __always_inline int rule_allows(__u32 subject, __u8 dir, __u32 peer, __u8 proto,
				       __u16 dport)
{
	struct rule_key k = {
		.prefixlen = RULE_PREFIX_FULL,
		.subject = subject,
		.peer = peer,
		.dir = dir,
		.proto = proto,
		.dport = bpf_htons(dport),
	};
	__u32 *v = bpf_map_lookup_elem(&rule_map, &k);

	return v && (*v & 1);
}

/* What an address is now, as the hooks judge it. Kubernetes mode: a pod's identity
 * (ipcache_map, local or remote), else the node or the world. Identity mode: a registered
 * endpoint, the node, a CIDR identity or the world; *unknown when none of the first three. */
static __always_inline __u32 identity_of(const struct dp_config *cfg, __u32 addr, int *unknown)
{
	__u32 *id;
	__u32 cidr;

	*unknown = 0;
	if (cfg->mode == MODE_KUBERNETES) {
		struct ipcache_entry *e = bpf_map_lookup_elem(&ipcache_map, &addr);

		if (e)
			return e->identity;
		return is_host(addr) ? IDENTITY_HOST : IDENTITY_WORLD;
	}
	id = bpf_map_lookup_elem(&endpoint_map, &addr);
	if (id)
		return *id;
	if (is_host(addr))
		return IDENTITY_HOST;
	cidr = cidr_identity(addr);
	if (cidr)
		return cidr;
	*unknown = 1;
	return IDENTITY_WORLD;
}

/* Identity mode: the pair's all-traffic entry in the original policy_map, or an L4 rule. */
static __always_inline int pair_allows(__u32 src, __u32 dst, __u8 proto, __u16 dport)
{
	struct policy_key k = { .src_id = src, .dst_id = dst };
	__u8 *action = bpf_map_lookup_elem(&policy_map, &k);

	if (action && *action == POLICY_ALLOW)
		return 1;
	return rule_allows(src, DIR_PAIR, dst, proto, dport);
}

/* Kubernetes mode: one direction of one subject. `peer` is the other end's identity and
 * `peer_cidr` the identity of the longest CIDR holding its address (0: none), which
 * ipBlock rules use even for pods. */
static __always_inline int direction_allows(__u32 subject, __u8 dir, __u32 peer,
					    __u32 peer_cidr, __u8 proto, __u16 dport)
{
	__u32 *iso = bpf_map_lookup_elem(&isolation_map, &subject);
	__u32 bit = dir == DIR_INGRESS ? ISOLATE_INGRESS : ISOLATE_EGRESS;

	if (!iso || !(*iso & bit))
		return 1;
	if (rule_allows(subject, dir, peer, proto, dport))
		return 1;
	if (peer_cidr && rule_allows(subject, dir, peer_cidr, proto, dport))
		return 1;
	return rule_allows(subject, dir, IDENTITY_ANY, proto, dport);
}

static __always_inline int in_service_cidrs(const struct dp_config *cfg, __u32 addr)
{
	for (int i = 0; i < MAX_SERVICE_CIDRS; i++) {
		if (i >= cfg->n_service_cidrs)
			break;
		if ((addr & cfg->service_cidrs[i].mask) == cfg->service_cidrs[i].addr)
			return 1;
	}
	return 0;
}

#endif
