/* Map key and value layouts shared by the datapath and user space.
 * Everything user space needs of this header is a struct or an enum, which struct
 * ebpfcni_abi (at the end) puts into the object's BTF: scripts/gen_bpf.ts generates
 * src/spec/bpf_abi.gen.ts from it, so no number here is restated by hand in TypeScript.
 * Map sizes stay #defines: user space reads them off the maps' own definitions. */
#ifndef EBPFCNI_H
#define EBPFCNI_H

/* The original project's maps: names, layouts and sizes are a contract (identity mode). */
#define ENDPOINT_MAP_MAX 16384
#define POLICY_MAP_MAX 65536

/* policy_map's value. */
enum ebpfcni_policy_action {
	POLICY_ALLOW = 1,
};

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
#define CT_QUOTA_MAP_MAX 65536
#define PAIR_STATS_MAP_MAX 16384
#define FRAG_MAP_MAX 8192
#define EVENTS_RING_BYTES (256 * 1024)

/* Reserved identities, at the top of the range: identity mode lets operators use every
 * other value for pods, and the agent's label hashes are kept out of this block. */
enum ebpfcni_identity {
	/* In rule keys: any peer. 0 is never an identity. */
	IDENTITY_ANY = 0,
	IDENTITY_HOST = 0xfffffffe,
	IDENTITY_WORLD = 0xffffffff,
};

/* Array bounds, and how many of ct_est_map's entries one initiating address may hold. */
enum ebpfcni_limit {
	MAX_SERVICE_CIDRS = 8,
	VETH_MAX_IPS = 4,
	CT_EST_PER_ADDR = 1024,
};

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
enum ebpfcni_mode {
	MODE_IDENTITY = 0,
	MODE_KUBERNETES = 1,
};

/* dp_config.flags */
enum ebpfcni_cfg_flag {
	CFG_CONNTRACK = 0x1,
};

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
struct veth_info {
	__u32 ips[VETH_MAX_IPS]; /* host byte order */
	__u32 n_ips;
	__u32 flags;
};

/* ipcache_map (kubernetes mode): IPv4 (host order) -> identity, local and remote pods. */
enum ebpfcni_ipcache_flag {
	IPCACHE_LOCAL = 0x1,
};

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
enum ebpfcni_dir {
	DIR_PAIR = 0,
	DIR_INGRESS = 1,
	DIR_EGRESS = 2,
};

enum ebpfcni_rule_prefix {
	RULE_PREFIX_ANY_PROTO = 72,
	RULE_PREFIX_ANY_PORT = 80,
	RULE_PREFIX_FULL = 96,
};

struct rule_key {
	__u32 prefixlen;
	__u32 subject;
	__u32 peer;
	__u8 dir;
	__u8 proto;
	__be16 dport;
};

/* isolation_map (kubernetes mode): identity -> which directions its policies isolate. */
enum ebpfcni_isolation {
	ISOLATE_INGRESS = 0x1,
	ISOLATE_EGRESS = 0x2,
};

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

/* ct_entry.flags */
enum ebpfcni_ct_flag {
	CT_SEEN_REPLY = 0x1,
	CT_FIN_FWD = 0x2,
	CT_FIN_REV = 0x4,
	CT_RST = 0x8,
	/* Recorded where it could not be judged yet (to a Service address or a remote pod): its
	 * replies pass; a new packet of it reaching a destination's hook is still judged. */
	CT_PENDING = 0x10,
	CT_SERVICE = 0x20,
	/* Which end's hook recorded it (ifindex is that end's veth); entries of older builds
	 * have neither. */
	CT_AT_SRC = 0x40,
	CT_AT_DST = 0x80,
	/* In ct_est_map, charged to its destination (the local pod it reached) rather than to
	 * its source. */
	CT_CHARGED_DST = 0x100,
	/* The top 16 bits: the low 16 bits of the other end's veth ifindex once a packet of the
	 * connection went through its hook (0: not yet, or not a local pod). */
	CT_PEER_VETH_SHIFT = 16,
};

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
enum ebpfcni_hook {
	HOOK_FROM_POD = 0,
	HOOK_TO_POD = 1,
	HOOK_TO_NODE = 2, /* leaving this node for another (vxlan device or uplink) */
};

enum ebpfcni_verdict {
	VERDICT_DROP = 0,
	VERDICT_ALLOW = 1,
};

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

/* Never instantiated: one member of each type user space needs that no map carries (the
 * event ring buffer's records, the enums), so that a function taking it (ebpfcni_abi() in
 * ebpfcni.bpf.c) keeps them all in the object's BTF for scripts/gen_bpf.ts. */
struct ebpfcni_abi {
	struct event event;
	enum ebpfcni_stat stat;
	enum ebpfcni_policy_action policy_action;
	enum ebpfcni_identity identity;
	enum ebpfcni_limit limit;
	enum ebpfcni_mode mode;
	enum ebpfcni_cfg_flag cfg_flag;
	enum ebpfcni_ipcache_flag ipcache_flag;
	enum ebpfcni_dir dir;
	enum ebpfcni_rule_prefix rule_prefix;
	enum ebpfcni_isolation isolation;
	enum ebpfcni_ct_flag ct_flag;
	enum ebpfcni_hook hook;
	enum ebpfcni_verdict verdict;
};

#endif
