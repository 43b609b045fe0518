/* Connection tracking: one ct_map entry per connection, keyed by the tuple of its first
 * packet, looked up in both directions; a reply (or an ICMP error about a tracked packet)
 * passes without policy. Lifetimes per protocol and TCP state come from config_map. */
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

/* The entry for `k`, or NULL when there is none or it has expired (then it is removed). */
static __always_inline struct ct_entry *ct_get(struct ct_key *k, __u64 now)
{
	struct ct_entry *e = bpf_map_lookup_elem(&ct_map, k);

	if (e && e->expires < now) {
		bpf_map_delete_elem(&ct_map, k);
		return NULL;
	}
	return e;
}

/* Looks the packet up in both directions; on a hit updates the entry's counters, TCP state
 * and deadline. *out is the entry found. */
static __always_inline int ct_lookup(const struct dp_config *cfg, const struct pkt *p,
				     struct ct_entry **out, __u64 now)
{
	struct ct_key k;
	struct ct_entry *e;
	int dir;
	__u32 flags;

	*out = NULL;
	if (p->proto == IPPROTO_ICMP && p->icmp_error) {
		/* Related: an error about a packet of a tracked connection, either way. */
		ct_key_of(&k, p->inner.saddr, p->inner.daddr, p->inner.sport, p->inner.dport,
			  p->inner.proto);
		e = ct_get(&k, now);
		if (!e) {
			ct_key_of(&k, p->inner.daddr, p->inner.saddr, p->inner.dport,
				  p->inner.sport, p->inner.proto);
			e = ct_get(&k, now);
		}
		*out = e;
		return e ? CT_REPLY : CT_NEW;
	}
	if (p->proto == IPPROTO_ICMP && p->icmp_type == ICMP_ECHOREPLY) {
		/* An echo is keyed by its request: identifier as sport, 0 as dport. */
		ct_key_of(&k, p->daddr, p->saddr, p->sport, 0, p->proto);
		e = ct_get(&k, now);
		dir = CT_REPLY;
	} else {
		ct_key_of(&k, p->saddr, p->daddr, p->sport, p->dport, p->proto);
		e = ct_get(&k, now);
		dir = CT_ESTABLISHED;
		if (!e && p->proto != IPPROTO_ICMP) {
			ct_key_of(&k, p->daddr, p->saddr, p->dport, p->sport, p->proto);
			e = ct_get(&k, now);
			dir = CT_REPLY;
		}
	}
	if (!e)
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
	*out = e;
	return dir;
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
