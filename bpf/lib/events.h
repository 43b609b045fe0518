/* Verdict counters and monitor events. Events go to the `events` ring buffer through a
 * per-CPU token bucket (config_map's rate and burst), so a flood of drops costs the node a
 * counter increment per packet, not a ring buffer it cannot drain. */
#ifndef EBPFCNI_EVENTS_H
#define EBPFCNI_EVENTS_H

#define EVENTS_RATE 1000  /* per second per CPU, when config_map leaves it at 0 */
#define EVENTS_BURST 1000

static __always_inline void count(__u32 stat)
{
	__u64 *n = bpf_map_lookup_elem(&stats_map, &stat);

	if (n)
		*n += 1;
}

static __always_inline void count_pair(__u32 src, __u32 dst, __u32 len)
{
	struct policy_key k = { .src_id = src, .dst_id = dst };
	struct pair_stats *s = bpf_map_lookup_elem(&pair_stats_map, &k);

	if (s) {
		s->packets += 1;
		s->bytes += len;
	} else {
		struct pair_stats init = { .packets = 1, .bytes = len };

		bpf_map_update_elem(&pair_stats_map, &k, &init, BPF_NOEXIST);
	}
}

/* Takes one event's worth from this CPU's bucket; false when it is empty. */
static __always_inline int take_token(const struct dp_config *cfg, __u64 now)
{
	__u32 zero = 0;
	struct rate_state *r = bpf_map_lookup_elem(&rate_map, &zero);
	__u64 rate = cfg->events_rate ? cfg->events_rate : EVENTS_RATE;
	__u64 burst = cfg->events_burst ? cfg->events_burst : EVENTS_BURST;
	__u64 cost, cap, budget;

	if (!r)
		return 0;
	/* The budget is kept in nanoseconds of refill: one event costs 1e9 / rate. */
	cost = NSEC_PER_SEC / rate;
	cap = cost * burst;
	budget = r->tokens + (now - r->last_ns);
	if (budget > cap || r->last_ns == 0)
		budget = cap;
	r->last_ns = now;
	if (budget < cost) {
		r->tokens = budget;
		return 0;
	}
	r->tokens = budget - cost;
	return 1;
}

static __always_inline void emit(const struct dp_config *cfg, const struct pkt *p,
				 __u32 ifindex, __u32 src_id, __u32 dst_id, __u8 verdict,
				 __u8 reason, __u8 hook, __u64 now)
{
	struct event *e;

	if (!take_token(cfg, now)) {
		count(STAT_EVENTS_LOST);
		return;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_EVENTS_LOST);
		return;
	}
	e->ts = now;
	e->ifindex = ifindex;
	e->saddr = p->saddr;
	e->daddr = p->daddr;
	e->src_id = src_id;
	e->dst_id = dst_id;
	e->sport = p->sport;
	e->dport = p->dport;
	e->proto = p->proto;
	e->verdict = verdict;
	e->reason = reason;
	e->hook = hook;
	bpf_ringbuf_submit(e, 0);
}

#endif
