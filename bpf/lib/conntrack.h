/* Connection tracking: one entry per connection, keyed by the tuple of its first packet,
 * looked up in both directions; a reply (or an ICMP error about a tracked packet) passes
 * without policy. Lifetimes per protocol and TCP state come from config_map.
 *
 * New connections live in ct_map, an LRU any pod can churn. Once allowed and answered one
 * moves to ct_est_map, a plain hash the kernel never evicts from, so a flood of other flows
 * cannot push it out; it is charged to a local pod's address (ct_owner), which may hold
 * CT_EST_PER_ADDR slots (ct_quota_map counts them), so up to CT_EST_MAP_MAX /
 * CT_EST_PER_ADDR pod addresses each have their whole share whatever the others do. It goes
 * back to the LRU when it closes and leaves on expiry (here, lazily, or by a sweep). */
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

/* Whose share an established entry takes: always a local pod's address, so a flood from
 * many remote sources fills only the share of the pod it reaches. */
static __always_inline __u32 ct_owner(const struct ct_key *k, __u32 flags)
{
	return flags & CT_CHARGED_DST ? k->daddr : k->saddr;
}

/* Is `addr` a pod on this node (kubernetes mode; identity mode records at sources only)? */
static __always_inline int ct_local_pod(const struct dp_config *cfg, __u32 addr)
{
	struct ipcache_entry *e;

	if (cfg->mode != MODE_KUBERNETES)
		return 0;
	e = bpf_map_lookup_elem(&ipcache_map, &addr);
	return e && (e->flags & IPCACHE_LOCAL) && e->identity != IDENTITY_HOST;
}

/* Takes one of `owner`'s slots in ct_est_map; false when it has none left. Checked then
 * added, so racing CPUs may overshoot by a few. The count is signed: a decrement that lost
 * a race with a key's removal (or user space's read-modify-write) may leave it below zero,
 * which lends a slot or two; it can never wrap and block the share for good. */
static __always_inline int ct_charge(__u32 owner)
{
	__s32 zero = 0;
	__s32 *n = bpf_map_lookup_elem(&ct_quota_map, &owner);

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

/* Gives a slot back; a key left at zero (or below) is removed, so the map holds only the
 * addresses that have entries. */
static __always_inline void ct_uncharge(__u32 owner)
{
	__s32 *n = bpf_map_lookup_elem(&ct_quota_map, &owner);

	if (!n)
		return;
	__sync_fetch_and_add(n, -1);
	if (*n <= 0)
		bpf_map_delete_elem(&ct_quota_map, &owner);
}

/* Removes `k` from where ct_find() found it (`e`, its entry there). */
static __always_inline void ct_remove(const struct ct_key *k, const struct ct_entry *e,
				      int pooled)
{
	__u32 owner;

	if (!pooled) {
		bpf_map_delete_elem(&ct_map, k);
		return;
	}
	owner = ct_owner(k, e->flags); /* read before the delete frees it */
	if (bpf_map_delete_elem(&ct_est_map, k) == 0)
		ct_uncharge(owner);
}

/* The entry for `k`, or NULL when there is none or it has expired (then it is removed). */
static __always_inline struct ct_entry *ct_get(const struct ct_key *k, __u64 now, int *pooled)
{
	struct ct_entry *e = ct_find(k, pooled);

	if (e && e->expires < now) {
		ct_remove(k, e, *pooled);
		return NULL;
	}
	return e;
}

/* Did this hook record the entry (its source's for CT_AT_SRC, its destination's for
 * CT_AT_DST)? Entries of older builds say neither: taken as yes, as they were. */
static __always_inline int ct_recorded_here(const struct ct_key *k, __u32 flags, __u32 local)
{
	if (flags & CT_AT_DST)
		return k->daddr == local;
	if (flags & CT_AT_SRC)
		return k->saddr == local;
	return 1;
}

enum ct_check {
	CT_FRESH = 0,
	CT_OTHER_POD = 1,   /* a local end is behind another veth: another pod */
	CT_RELABELLED = 2,  /* an address has another identity now */
};

/* An entry speaks for the pods it was judged with only while its addresses still resolve to
 * those identities and each local end is still behind the same veth: the recording end's
 * (ifindex), and the other end's as first seen at its own hook (bound here, the low 16 bits
 * in the flags' top half: a veth created 65,536 interfaces later can pass for it). `local`
 * is the address of the pod at this hook, `local_id` its identity when the hook knows it
 * already (else 0). *src and *dst: the addresses' identities now (dst
 * 0 when the entry never knew it: to a Service address). */
static __always_inline __u32 ct_identity(const struct dp_config *cfg, __u32 addr, __u32 local,
					 __u32 local_id)
{
	int unknown;

	return local_id && addr == local ? local_id : identity_of(cfg, addr, &unknown);
}

static __always_inline int ct_check(const struct dp_config *cfg, const struct ct_key *k,
				    struct ct_entry *e, __u32 ifindex, __u32 local,
				    __u32 local_id, __u32 *src, __u32 *dst)
{

	if (e->flags & (CT_AT_SRC | CT_AT_DST)) {
		__u32 at = e->flags & CT_AT_DST ? k->daddr : k->saddr;
		__u32 peer = e->flags & CT_AT_DST ? k->saddr : k->daddr;
		__u32 tag = ifindex & 0xffff;
		__u32 bound = e->flags >> CT_PEER_VETH_SHIFT;

		if (at == local) {
			if (e->ifindex != ifindex)
				return CT_OTHER_POD;
		} else if (peer == local && tag) {
			if (!bound)
				e->flags |= tag << CT_PEER_VETH_SHIFT;
			else if (bound != tag)
				return CT_OTHER_POD;
		}
	}
	*src = ct_identity(cfg, k->saddr, local, local_id);
	*dst = e->dst_id ? ct_identity(cfg, k->daddr, local, local_id) : 0;
	return *src != e->src_id || *dst != e->dst_id ? CT_RELABELLED : CT_FRESH;
}

/* Would the policy allow the entry's connection (its source to its destination, its first
 * packet's protocol and port) between these identities? As the hooks judge a new one. */
static __always_inline int ct_rejudge(const struct dp_config *cfg, const struct ct_key *k,
				      __u32 flags, __u32 src, __u32 dst)
{
	int src_pod = src != IDENTITY_HOST && src != IDENTITY_WORLD;
	int dst_pod = dst != IDENTITY_HOST && dst != IDENTITY_WORLD;

	if (cfg->mode != MODE_KUBERNETES)
		return pair_allows(src, dst, k->proto, k->dport);
	if (flags & CT_PENDING)
		return 1; /* judged where it is delivered */
	if (src == IDENTITY_HOST)
		return 1; /* the node reaches its pods */
	/* Each direction is its own pod's node's (a remote end's rules are not in this node's
	 * maps, and one sharing a local pod's identity must not be judged by them). */
	if (src_pod && ct_local_pod(cfg, k->saddr) &&
	    !direction_allows(src, DIR_EGRESS, dst, cidr_identity(k->daddr), k->proto, k->dport))
		return 0;
	return !dst_pod || !ct_local_pod(cfg, k->daddr) ||
	       direction_allows(dst, DIR_INGRESS, src, cidr_identity(k->saddr), k->proto, k->dport);
}

/* Whether the entry still speaks for its connection (ct_check), its identities brought up
 * to date when the policy allows it between the new ones; if not, it is removed. */
static __always_inline int ct_valid(const struct dp_config *cfg, const struct ct_key *k,
				    struct ct_entry *e, int pooled, __u32 ifindex, __u32 local,
				    __u32 local_id)
{
	__u32 src, dst;

	switch (ct_check(cfg, k, e, ifindex, local, local_id, &src, &dst)) {
	case CT_FRESH:
		return 1;
	case CT_RELABELLED:
		if (ct_rejudge(cfg, k, e->flags, src, dst)) {
			e->src_id = src;
			e->dst_id = dst;
			return 1;
		}
	}
	ct_remove(k, e, pooled);
	return 0;
}

/* Moves an allowed, answered connection out of the LRU into ct_est_map, charged to a local
 * pod (ct_owner); it stays in the LRU (today's behaviour) when that share or the map is
 * full. Returns the entry where it now is. */
static __always_inline struct ct_entry *ct_promote(const struct dp_config *cfg,
						   const struct ct_key *k, struct ct_entry *e)
{
	struct ct_entry copy = *e;
	struct ct_entry *pe;

	/* Recorded where it was delivered: its source's share when the source is a pod of this
	 * node too (its connections to a busy server stay its own), else the destination's. */
	if ((copy.flags & CT_AT_DST) && !ct_local_pod(cfg, k->saddr))
		copy.flags |= CT_CHARGED_DST;
	if (!ct_charge(ct_owner(k, copy.flags)))
		return e;
	if (bpf_map_update_elem(&ct_est_map, k, &copy, BPF_NOEXIST)) {
		ct_uncharge(ct_owner(k, copy.flags));
		return e;
	}
	pe = bpf_map_lookup_elem(&ct_est_map, k);
	/* A FIN or RST another CPU set since the copy. */
	if (pe)
		pe->flags |= e->flags & (CT_FIN_FWD | CT_FIN_REV | CT_RST);
	bpf_map_delete_elem(&ct_map, k);
	return pe ? pe : e;
}

/* A closing connection goes back to the LRU for its last packets and frees its slot. */
static __always_inline struct ct_entry *ct_demote(const struct ct_key *k, struct ct_entry *e)
{
	struct ct_entry copy = *e;
	struct ct_entry *le;

	copy.flags &= ~CT_CHARGED_DST;
	if (bpf_map_update_elem(&ct_map, k, &copy, BPF_ANY))
		return e;
	ct_remove(k, e, 1);
	le = bpf_map_lookup_elem(&ct_map, k);
	return le ? le : e;
}

/* UDP and other protocols: forward packets after an answer, this many packets in all, before
 * a flow takes a slot. A query and its answer (DNS, even A and AAAA on one socket) never
 * do: they would hold it until swept and are not met again. */
#define CT_SETTLE_PACKETS 4

/* Established: answered, not closing; TCP: the initiator acknowledged the answer; other
 * protocols: the initiator sent again after it (CT_SETTLE_PACKETS). */
static __always_inline int ct_settled(const struct pkt *p, __u32 flags, int dir, __u64 packets)
{
	if (!(flags & CT_SEEN_REPLY) || (flags & (CT_FIN_FWD | CT_FIN_REV | CT_RST)))
		return 0;
	if (dir != CT_ESTABLISHED || p->proto == IPPROTO_ICMP)
		return 0; /* echoes are one-shot: not worth a slot */
	if (p->proto == IPPROTO_TCP)
		return (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_ACK;
	return packets >= CT_SETTLE_PACKETS;
}

/* Is `addr` a pod's (of any node)? ICMP errors from anything else come from routers. */
static __always_inline int ct_is_pod(const struct dp_config *cfg, __u32 addr)
{
	int unknown;
	__u32 id;

	if (cfg->mode != MODE_KUBERNETES)
		return bpf_map_lookup_elem(&endpoint_map, &addr) != NULL;
	id = identity_of(cfg, addr, &unknown);
	return id != IDENTITY_HOST && id != IDENTITY_WORLD;
}

/* Looks the packet up in both directions; on a hit updates the entry's counters, TCP state
 * and deadline, and moves it between the LRU and ct_est_map as the connection settles or
 * closes. *out is the entry found. A bare SYN in the connection's direction, at the hook
 * that recorded it, is a new connection (a tuple reused after a close, or a retry): the
 * entry is dropped and the SYN judged; elsewhere it is judged without touching the entry,
 * except a SYN answering an unanswered one (a simultaneous open), which is a reply. An entry
 * whose end now sits behind another veth is dropped; one whose addresses have other
 * identities is judged again in its own direction, and kept with them if allowed.
 * `ifindex`, `local` and `local_id`: this hook's veth, pod address and (0: not looked up
 * yet) its identity. */
static __always_inline int ct_lookup(const struct dp_config *cfg, const struct pkt *p,
				     struct ct_entry **out, __u64 now, __u32 ifindex,
				     __u32 local, __u32 local_id)
{
	struct ct_key k;
	struct ct_entry *e;
	int dir, pooled = 0;
	__u32 flags;

	*out = NULL;
	if (p->proto == IPPROTO_ICMP && p->icmp_error) {
		/* Related: an error about a packet of a tracked connection, either way, sent to
		 * that packet's source by its destination or by a router (not another pod). */
		if (p->inner.saddr != p->daddr ||
		    (p->saddr != p->inner.daddr && ct_is_pod(cfg, p->saddr)))
			return CT_NEW;
		ct_key_of(&k, p->inner.saddr, p->inner.daddr, p->inner.sport, p->inner.dport,
			  p->inner.proto);
		e = ct_get(&k, now, &pooled);
		if (!e) {
			ct_key_of(&k, p->inner.daddr, p->inner.saddr, p->inner.dport,
				  p->inner.sport, p->inner.proto);
			e = ct_get(&k, now, &pooled);
		}
		if (e && !ct_valid(cfg, &k, e, pooled, ifindex, local, local_id))
			e = NULL;
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
	if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
		if (dir == CT_ESTABLISHED) {
			if (ct_recorded_here(&k, e->flags, local))
				ct_remove(&k, e, pooled);
			return CT_NEW;
		}
		if (e->flags & (CT_SEEN_REPLY | CT_FIN_FWD | CT_FIN_REV | CT_RST))
			return CT_NEW;
	}
	if (!ct_valid(cfg, &k, e, pooled, ifindex, local, local_id))
		return CT_NEW;
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
	else if (!pooled && ct_settled(p, flags, dir, e->packets))
		e = ct_promote(cfg, &k, e);
	*out = e;
	return dir;
}

/* Forgets the packet's own tuple in both maps: a pending entry, judged now where it is
 * delivered, is recorded again if allowed and gone if not. */
static __always_inline void ct_forget(const struct pkt *p)
{
	struct ct_key k;
	struct ct_entry *e;
	int pooled;

	ct_key_of(&k, p->saddr, p->daddr, p->sport, p->proto == IPPROTO_ICMP ? 0 : p->dport,
		  p->proto);
	e = ct_find(&k, &pooled);
	if (e)
		ct_remove(&k, e, pooled);
	bpf_map_delete_elem(&ct_map, &k);
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
