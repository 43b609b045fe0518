/* Connection tracking: one entry per connection, keyed by the tuple of its first packet,
 * looked up in both directions; a reply (or an ICMP error about a tracked packet) passes
 * without policy. Lifetimes per protocol and TCP state come from config_map.
 *
 * New connections live in ct_map, an LRU any pod can churn. Once allowed and answered one
 * moves to ct_est_map, a plain hash the kernel never evicts from, so a flood of other flows
 * cannot push it out; each initiating address may hold CT_EST_PER_ADDR of its slots
 * (ct_quota_map counts them), so no pod can fill it. It goes back to the LRU when it closes
 * and leaves on expiry (here, lazily, or by the agent's sweep). */
#ifndef EBPFCNI_CONNTRACK_H
#define EBPFCNI_CONNTRACK_H

#define NSEC_PER_SEC 1000000000ULL

/* Defaults when config_map leaves a lifetime at 0. */
#define CT_TCP_SYN_S 60
#define CT_TCP_ESTABLISHED_S 21600
#define CT_TCP_CLOSE_S 10
#define CT_UDP_S 60
#define CT_OTHER_S 60

enum ct_result {
	CT_NEW = 0,
	CT_ESTABLISHED = 1, /* the connection's own direction */
	CT_REPLY = 2,       /* the other direction, or an ICMP error about the connection */
};

static __always_inline __u64 ct_secs(__u32 configured, __u32 dflt)
{
	return (configured ? configured : dflt) * NSEC_PER_SEC;
}

static __always_inline __u64 ct_lifetime(const struct dp_config *cfg, __u8 proto, __u32 flags,
					 __u8 tcp_flags)
{
	if (proto == IPPROTO_TCP) {
		if (flags & (CT_RST | CT_FIN_FWD | CT_FIN_REV))
			return ct_secs(cfg->ct_tcp_close, CT_TCP_CLOSE_S);
		/* Half open until the other side answers; a connection picked up mid-stream (after
		 * a flush or an upgrade) counts as established. */
		if (!(flags & CT_SEEN_REPLY) && (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
			return ct_secs(cfg->ct_tcp_syn, CT_TCP_SYN_S);
		return ct_secs(cfg->ct_tcp_established, CT_TCP_ESTABLISHED_S);
	}
	if (proto == IPPROTO_UDP)
		return ct_secs(cfg->ct_udp, CT_UDP_S);
	return ct_secs(cfg->ct_other, CT_OTHER_S);
}

static __always_inline void ct_key_of(struct ct_key *k, __u32 saddr, __u32 daddr, __u16 sport,
				      __u16 dport, __u8 proto)
{
	k->saddr = saddr;
	k->daddr = daddr;
	k->sport = sport;
	k->dport = dport;
	k->proto = proto;
	k->pad[0] = k->pad[1] = k->pad[2] = 0;
}

/* Where an entry lives: ct_est_map (established, never evicted) or ct_map (the LRU). */
static __always_inline struct ct_entry *ct_find(const struct ct_key *k, int *pooled)
{
	struct ct_entry *e = bpf_map_lookup_elem(&ct_est_map, k);

	*pooled = e != NULL;
	return e ? e : bpf_map_lookup_elem(&ct_map, k);
}

/* Takes one of the initiator's slots in ct_est_map; false when it has none left. Checked
 * then added, so racing CPUs may overshoot by a few. */
static __always_inline int ct_charge(__u32 owner)
{
	__u32 zero = 0;
	__u32 *n = bpf_map_lookup_elem(&ct_quota_map, &owner);

	if (!n) {
		bpf_map_update_elem(&ct_quota_map, &owner, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&ct_quota_map, &owner);
		if (!n)
			return 0;
	}
	if (*n >= CT_EST_PER_ADDR)
		return 0;
	__sync_fetch_and_add(n, 1);
	return 1;
}

static __always_inline void ct_uncharge(__u32 owner)
{
	__u32 *n = bpf_map_lookup_elem(&ct_quota_map, &owner);

	if (n && *n > 0)
		__sync_fetch_and_add(n, -1);
}

static __always_inline void ct_remove(const struct ct_key *k, int pooled)
{
	if (!pooled)
		bpf_map_delete_elem(&ct_map, k);
	else if (bpf_map_delete_elem(&ct_est_map, k) == 0)
		ct_uncharge(k->saddr);
}

/* The entry for `k`, or NULL when there is none or it has expired (then it is removed). */
static __always_inline struct ct_entry *ct_get(const struct ct_key *k, __u64 now, int *pooled)
{
	struct ct_entry *e = ct_find(k, pooled);

	if (e && e->expires < now) {
		ct_remove(k, *pooled);
		return NULL;
	}
	return e;
}

/* An entry speaks for the pods it was judged with only while its addresses still resolve to
 * those identities (an address reused by another pod, or relabelled, gets judged anew) and,
 * for the end whose hook recorded it, while that end is still behind the same veth. `local`
 * is the address of the pod at this hook. */
static __always_inline int ct_stale(const struct dp_config *cfg, const struct ct_key *k,
				    const struct ct_entry *e, __u32 ifindex, __u32 local)
{
	int unknown;

	if (e->flags & (CT_AT_SRC | CT_AT_DST)) {
		__u32 at = e->flags & CT_AT_DST ? k->daddr : k->saddr;

		if (at == local && e->ifindex != ifindex)
			return 1;
	}
	if (identity_of(cfg, k->saddr, &unknown) != e->src_id)
		return 1;
	/* 0: recorded before its destination was known (to a Service address). */
	return e->dst_id != 0 && identity_of(cfg, k->daddr, &unknown) != e->dst_id;
}

/* Moves an allowed, answered connection out of the LRU into ct_est_map, charged to its
 * initiator; it stays in the LRU (today's behaviour) when the initiator's share or the map
 * is full. Returns the entry where it now is. */
static __always_inline struct ct_entry *ct_promote(const struct ct_key *k, struct ct_entry *e)
{
	struct ct_entry copy = *e;
	struct ct_entry *pe;

	if (!ct_charge(k->saddr))
		return e;
	if (bpf_map_update_elem(&ct_est_map, k, &copy, BPF_NOEXIST)) {
		ct_uncharge(k->saddr);
		return e;
	}
	bpf_map_delete_elem(&ct_map, k);
	pe = bpf_map_lookup_elem(&ct_est_map, k);
	return pe ? pe : e;
}

/* A closing connection goes back to the LRU for its last packets and frees its slot. */
static __always_inline struct ct_entry *ct_demote(const struct ct_key *k, struct ct_entry *e)
{
	struct ct_entry copy = *e;
	struct ct_entry *le;

	if (bpf_map_update_elem(&ct_map, k, &copy, BPF_ANY))
		return e;
	ct_remove(k, 1);
	le = bpf_map_lookup_elem(&ct_map, k);
	return le ? le : e;
}

/* Established: answered, not closing, and for TCP the initiator acknowledged the answer. */
static __always_inline int ct_settled(const struct pkt *p, __u32 flags, int dir)
{
	if (!(flags & CT_SEEN_REPLY) || (flags & (CT_FIN_FWD | CT_FIN_REV | CT_RST)))
		return 0;
	if (p->proto == IPPROTO_ICMP)
		return 0; /* echoes are one-shot: not worth a slot */
	if (p->proto == IPPROTO_TCP)
		return dir == CT_ESTABLISHED && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_ACK;
	return 1;
}

/* Looks the packet up in both directions; on a hit updates the entry's counters, TCP state
 * and deadline, and moves it between the LRU and ct_est_map as the connection settles or
 * closes. *out is the entry found. A bare SYN is always a new connection (a tuple reused
 * after a close, or a retry): its entry is dropped and the SYN judged; so is an entry that
 * ct_stale() rejects. `ifindex` and `local`: this hook's veth and pod address. */
static __always_inline int ct_lookup(const struct dp_config *cfg, const struct pkt *p,
				     struct ct_entry **out, __u64 now, __u32 ifindex,
				     __u32 local)
{
	struct ct_key k;
	struct ct_entry *e;
	int dir, pooled = 0;
	__u32 flags;

	*out = NULL;
	if (p->proto == IPPROTO_ICMP && p->icmp_error) {
		/* Related: an error about a packet of a tracked connection, either way. */
		ct_key_of(&k, p->inner.saddr, p->inner.daddr, p->inner.sport, p->inner.dport,
			  p->inner.proto);
		e = ct_get(&k, now, &pooled);
		if (!e) {
			ct_key_of(&k, p->inner.daddr, p->inner.saddr, p->inner.dport,
				  p->inner.sport, p->inner.proto);
			e = ct_get(&k, now, &pooled);
		}
		if (e && ct_stale(cfg, &k, e, ifindex, local)) {
			ct_remove(&k, pooled);
			e = NULL;
		}
		*out = e;
		return e ? CT_REPLY : CT_NEW;
	}
	if (p->proto == IPPROTO_ICMP && p->icmp_type == ICMP_ECHOREPLY) {
		/* An echo is keyed by its request: identifier as sport, 0 as dport. */
		ct_key_of(&k, p->daddr, p->saddr, p->sport, 0, p->proto);
		e = ct_get(&k, now, &pooled);
		dir = CT_REPLY;
	} else {
		ct_key_of(&k, p->saddr, p->daddr, p->sport, p->dport, p->proto);
		e = ct_get(&k, now, &pooled);
		dir = CT_ESTABLISHED;
		if (!e && p->proto != IPPROTO_ICMP) {
			ct_key_of(&k, p->daddr, p->saddr, p->dport, p->sport, p->proto);
			e = ct_get(&k, now, &pooled);
			dir = CT_REPLY;
		}
	}
	if (!e)
		return CT_NEW;
	if ((p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) ||
	    ct_stale(cfg, &k, e, ifindex, local)) {
		ct_remove(&k, pooled);
		return CT_NEW;
	}
	flags = e->flags;
	if (dir == CT_REPLY)
		flags |= CT_SEEN_REPLY;
	if (p->tcp_flags & TCP_RST)
		flags |= CT_RST;
	if (p->tcp_flags & TCP_FIN)
		flags |= dir == CT_REPLY ? CT_FIN_REV : CT_FIN_FWD;
	e->flags = flags;
	e->expires = now + ct_lifetime(cfg, p->proto, flags, p->tcp_flags);
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, p->len);
	if (pooled && (flags & (CT_FIN_FWD | CT_FIN_REV | CT_RST)))
		e = ct_demote(&k, e);
	else if (!pooled && ct_settled(p, flags, dir))
		e = ct_promote(&k, e);
	*out = e;
	return dir;
}

/* Forgets the established entry of the packet's own tuple (a pending one about to be judged
 * and recorded in the LRU). */
static __always_inline void ct_forget_established(const struct pkt *p)
{
	struct ct_key k;

	ct_key_of(&k, p->saddr, p->daddr, p->sport, p->proto == IPPROTO_ICMP ? 0 : p->dport,
		  p->proto);
	ct_remove(&k, 1);
}

/* Records a new connection from its first packet (a judged one, or a PENDING one). */
static __always_inline void ct_create(const struct dp_config *cfg, const struct pkt *p,
				      __u32 src_id, __u32 dst_id, __u32 flags, __u32 ifindex,
				      __u64 now)
{
	struct ct_key k;
	struct ct_entry e = {};

	ct_key_of(&k, p->saddr, p->daddr, p->sport, p->proto == IPPROTO_ICMP ? 0 : p->dport,
		  p->proto);
	e.src_id = src_id;
	e.dst_id = dst_id;
	e.flags = flags;
	e.ifindex = ifindex;
	e.packets = 1;
	e.bytes = p->len;
	e.expires = now + ct_lifetime(cfg, p->proto, flags, p->tcp_flags);
	bpf_map_update_elem(&ct_map, &k, &e, BPF_ANY);
}

#endif
