/* Map key and value layouts shared by the datapath and user space.
 * The TypeScript side mirrors these in src/datapath/layout.ts; a test checks both against
 * the BTF of the built object. Keep the two in step. */
#ifndef EBPFCNI_H
#define EBPFCNI_H

/* The original project's maps: names, layouts and sizes are a contract (identity mode). */
#define ENDPOINT_MAP_MAX 16384
#define POLICY_MAP_MAX 65536
#define POLICY_ALLOW 1

/* Maps added since. */
#define VETH_MAP_MAX 4096
#define HOST_MAP_MAX 256
#define IPCACHE_MAP_MAX 65536
#define CIDR_MAP_MAX 16384
#define RULE_MAP_MAX 131072
#define ISOLATION_MAP_MAX 65536
#define CT_MAP_MAX 262144
/* Established connections, out of the LRU's reach, and each local pod address's share of
 * them: CT_EST_MAP_MAX / CT_EST_PER_ADDR = 128 pod addresses all get their whole share. */
#define CT_EST_MAP_MAX 131072
#define CT_EST_PER_ADDR 1024
#define CT_QUOTA_MAP_MAX 65536
#define PAIR_STATS_MAP_MAX 16384
#define FRAG_MAP_MAX 8192
#define EVENTS_RING_BYTES (256 * 1024)

/* Reserved identities, at the top of the range: identity mode lets operators use every
 * other value for pods, and the agent's label hashes are kept out of this block. */
#define IDENTITY_HOST 0xfffffffeU
#define IDENTITY_WORLD 0xffffffffU
/* In rule keys: any peer. 0 is never an identity. */
#define IDENTITY_ANY 0U

/* Verdict counters in stats_map (per-CPU array), indexed by these; also the `reason` of a
 * monitor event. The first six are the original's. */
enum ebpfcni_stat {
	STAT_PASS_NON_IPV4 = 0,    /* ARP from the pod's own address, IPv6 neighbour discovery */
	STAT_PASS_SHORT = 1,       /* too short to parse */
	STAT_DROP_UNKNOWN_SRC = 2, /* source address registered to no endpoint */
	STAT_DROP_UNKNOWN_DST = 3, /* identity mode: destination known to nothing, no rule */
	STAT_DROP_POLICY = 4,      /* identity mode: no rule allows the pair */
	STAT_ALLOW = 5,            /* a rule allowed it */
	STAT_DROP_NO_VETH = 6,     /* the veth has no registered endpoint */
	STAT_DROP_SPOOFED = 7,     /* source address (IPv4 or ARP) not the pod's */
	STAT_DROP_IPV6 = 8,        /* IPv6 other than what the link needs */
	STAT_DROP_ETHERTYPE = 9,   /* neither IPv4, ARP nor IPv6 */
	STAT_ALLOW_CT = 10,        /* part of a tracked connection (either direction) */
	STAT_PASS_SERVICE = 11,    /* to a Service address: judged at the backend */
	STAT_PASS_TO_POD = 12,     /* to a pod: judged where it is delivered */
	STAT_DROP_EGRESS = 13,     /* kubernetes mode: the source's egress policy denies it */
	STAT_DROP_INGRESS = 14,    /* kubernetes mode: the destination's ingress policy denies it */
	STAT_ALLOW_HOST = 15,      /* from the local node to its pod */
	STAT_DROP_FRAGMENT = 16,   /* a later IPv4 fragment of no tracked connection */
	STAT_EVENTS_LOST = 17,     /* monitor events over the rate limit or with the ring full */
	STAT_MAX = 18,
};

/* policy_map key: identities of the sending and the receiving endpoint. */
struct policy_key {
	__u32 src_id;
	__u32 dst_id;
} __attribute__((packed));

/* config_map[0]: how this pin directory's datapath behaves. Zero means the default. */
#define MODE_IDENTITY 0
#define MODE_KUBERNETES 1
#define CFG_CONNTRACK 0x1
#define MAX_SERVICE_CIDRS 8

struct cidr4 {
	__u32 addr; /* host byte order */
	__u32 mask;
};

struct dp_config {
	__u32 mode;
	__u32 flags;
	/* Conntrack lifetimes in seconds. */
	__u32 ct_tcp_syn;
	__u32 ct_tcp_established;
	__u32 ct_tcp_close;
	__u32 ct_udp;
	__u32 ct_other;
	/* Monitor events per second and burst, per CPU. */
	__u32 events_rate;
	__u32 events_burst;
	__u32 n_service_cidrs;
	struct cidr4 service_cidrs[MAX_SERVICE_CIDRS];
};

/* veth_map: host-side veth ifindex -> the pod behind it. A frame entering from the veth must
 * carry one of these addresses. */
#define VETH_MAX_IPS 4
struct veth_info {
	__u32 ips[VETH_MAX_IPS]; /* host byte order */
	__u32 n_ips;
	__u32 flags;
};

/* ipcache_map (kubernetes mode): IPv4 (host order) -> identity, local and remote pods. */
#define IPCACHE_LOCAL 0x1
struct ipcache_entry {
	__u32 identity;
	__u32 flags;
};

/* cidr_map: longest-prefix match of an IPv4 address (network order) -> identity. */
struct cidr_key {
	__u32 prefixlen;
	__u32 addr;
};

/* rule_map: longest-prefix match over {subject, peer, direction, protocol, port}: the prefix
 * covers subject, peer and direction exactly (72 bits), then the protocol (80) and the
 * leading bits of the port (up to 96), so a port range is a few prefixes, 80 means any port
 * of the protocol and 72 any traffic.
 * Identity mode keys are DIR_PAIR (subject = source, peer = destination); kubernetes mode
 * keys are per direction of the subject (subject = the pod the policy selects). */
#define DIR_PAIR 0
#define DIR_INGRESS 1
#define DIR_EGRESS 2
#define RULE_PREFIX_ANY_PROTO 72
#define RULE_PREFIX_ANY_PORT 80
#define RULE_PREFIX_FULL 96
struct rule_key {
	__u32 prefixlen;
	__u32 subject;
	__u32 peer;
	__u8 dir;
	__u8 proto;
	__be16 dport;
};

/* isolation_map (kubernetes mode): identity -> which directions its policies isolate. */
#define ISOLATE_INGRESS 0x1
#define ISOLATE_EGRESS 0x2

/* ct_map: one entry per connection, keyed by the tuple of its first packet. ICMP echo uses
 * the identifier as sport and 0 as dport. ct_est_map has the same layout: a connection moves
 * there once allowed and answered, charged to a local pod's address in ct_quota_map (saddr,
 * or daddr with CT_CHARGED_DST). */
struct ct_key {
	__u32 saddr; /* host byte order */
	__u32 daddr;
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

#define CT_SEEN_REPLY 0x1
#define CT_FIN_FWD 0x2
#define CT_FIN_REV 0x4
#define CT_RST 0x8
/* Recorded where it could not be judged yet (to a Service address or a remote pod): its
 * replies pass; a new packet of it reaching a destination's hook is still judged. */
#define CT_PENDING 0x10
#define CT_SERVICE 0x20
/* Which end's hook recorded it (ifindex is that end's veth); entries of older builds have
 * neither. */
#define CT_AT_SRC 0x40
#define CT_AT_DST 0x80
/* In ct_est_map, charged to its destination (the local pod it reached) rather than to its
 * source. */
#define CT_CHARGED_DST 0x100
/* The top 16 bits: the low 16 bits of the other end's veth ifindex once a packet of the
 * connection went through its hook (0: not yet, or not a local pod). */
#define CT_PEER_VETH_SHIFT 16

struct ct_entry {
	__u64 expires; /* bpf_ktime_get_ns() deadline */
	__u64 packets;
	__u64 bytes;
	__u32 src_id;
	__u32 dst_id;
	__u32 flags;
	__u32 ifindex; /* where it was recorded */
};

/* frag_map: the ports of a fragmented datagram, from its first fragment, for the rest. */
struct frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;
	__u8 proto;
	__u8 pad;
};

struct frag_ports {
	__u16 sport;
	__u16 dport;
};

/* pair_stats_map: per-CPU packets and bytes per {src, dst} pair (policy list --stats). */
struct pair_stats {
	__u64 packets;
	__u64 bytes;
};

/* Monitor events in the `events` ring buffer. */
#define HOOK_FROM_POD 0
#define HOOK_TO_POD 1
#define VERDICT_DROP 0
#define VERDICT_ALLOW 1
struct event {
	__u64 ts;
	__u32 ifindex;
	__u32 saddr; /* host byte order */
	__u32 daddr;
	__u32 src_id;
	__u32 dst_id;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 verdict;
	__u8 reason; /* enum ebpfcni_stat */
	__u8 hook;
};

/* rate_map[0], per CPU: the monitor's token bucket. */
struct rate_state {
	__u64 last_ns;
	__u64 tokens;
};

#endif
