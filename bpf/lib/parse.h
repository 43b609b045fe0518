/* Parsing a frame into what the verdict needs: the IPv4 addresses, the L4 protocol and ports
 * (the ICMP echo identifier for echo), TCP flags, fragments, and for ICMP errors the tuple of
 * the packet they are about. Every access is bounds-checked against data_end. */
#ifndef EBPFCNI_PARSE_H
#define EBPFCNI_PARSE_H

#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD

#define IPPROTO_ICMPV6 58

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

enum parse_result {
	PARSE_OK = 0,
	PARSE_SHORT = 1,   /* shorter than its headers */
	PARSE_LATER_FRAG = 2, /* a fragment after the first: no L4 header */
};

struct pkt {
	__u32 saddr; /* host byte order */
	__u32 daddr;
	__u16 sport; /* host byte order */
	__u16 dport;
	__u16 ip_id;
	__u8 proto;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 first_frag; /* MF set, offset 0: its ports are remembered for the rest */
	__u8 icmp_error; /* ICMP error: `inner` is the tuple of the packet it reports */
	__u8 l2_multi;   /* Ethernet broadcast or multicast destination */
	__u32 len;
	struct ct_key inner;
};

/* L4 ports at `l4` for TCP, UDP and SCTP (all start with two 16-bit ports). */
static __always_inline int ports_at(void *l4, void *data_end, __u16 *sport, __u16 *dport)
{
	__be16 *ports = l4;

	if ((void *)(ports + 2) > data_end)
		return -1;
	*sport = bpf_ntohs(ports[0]);
	*dport = bpf_ntohs(ports[1]);
	return 0;
}

static __always_inline int has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* The packet an ICMP error carries (its IP header and the first 8 bytes after it). */
static __always_inline void parse_icmp_inner(void *inner, void *data_end, struct pkt *p)
{
	struct iphdr *iph = inner;
	__u32 ihl;

	if ((void *)(iph + 1) > data_end)
		return;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return;
	p->inner.saddr = bpf_ntohl(iph->saddr);
	p->inner.daddr = bpf_ntohl(iph->daddr);
	p->inner.proto = iph->protocol;
	if (has_ports(iph->protocol)) {
		if (ports_at(inner + ihl, data_end, &p->inner.sport, &p->inner.dport))
			return;
	} else if (iph->protocol == IPPROTO_ICMP) {
		struct icmphdr *icmp = inner + ihl;

		if ((void *)(icmp + 1) > data_end)
			return;
		/* An error about an echo request: the connection is keyed by its identifier. */
		if (icmp->type != ICMP_ECHO)
			return;
		p->inner.sport = bpf_ntohs(icmp->un.echo.id);
	} else {
		return;
	}
	p->icmp_error = 1;
}

/* Parses the IPv4 packet after the Ethernet header. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	__u32 ihl;
	__u16 frag;
	void *l4;

	if ((void *)(iph + 1) > data_end)
		return PARSE_SHORT;
	p->l2_multi = eth->h_dest[0] & 1;
	p->saddr = bpf_ntohl(iph->saddr);
	p->daddr = bpf_ntohl(iph->daddr);
	p->proto = iph->protocol;
	p->ip_id = bpf_ntohs(iph->id);
	p->len = skb->len;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return PARSE_SHORT;
	frag = bpf_ntohs(iph->frag_off);
	if (frag & IP_OFFSET)
		return PARSE_LATER_FRAG;
	p->first_frag = (frag & IP_MF) != 0;
	l4 = (void *)iph + ihl;
	if (has_ports(p->proto)) {
		if (ports_at(l4, data_end, &p->sport, &p->dport))
			return PARSE_SHORT;
		if (p->proto == IPPROTO_TCP) {
			__u8 *flags = l4 + 13;

			if ((void *)(flags + 1) > data_end)
				return PARSE_SHORT;
			p->tcp_flags = *flags;
		}
	} else if (p->proto == IPPROTO_ICMP) {
		struct icmphdr *icmp = l4;

		if ((void *)(icmp + 1) > data_end)
			return PARSE_SHORT;
		p->icmp_type = icmp->type;
		if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY)
			p->sport = bpf_ntohs(icmp->un.echo.id);
		else if (icmp->type == ICMP_DEST_UNREACH || icmp->type == ICMP_TIME_EXCEEDED ||
			 icmp->type == ICMP_PARAMETERPROB)
			parse_icmp_inner((void *)(icmp + 1), data_end, p);
	}
	return PARSE_OK;
}

/* IPv6 the link needs and nothing else: router and neighbour solicitations and
 * advertisements (ICMPv6 133-136, with the hop limit 255 RFC 4861 requires). */
static __always_inline int ipv6_link_only(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	struct icmp6hdr *icmp6 = (void *)(ip6 + 1);

	if ((void *)(icmp6 + 1) > data_end)
		return 0;
	if (ip6->nexthdr != IPPROTO_ICMPV6 || ip6->hop_limit != 255)
		return 0;
	return icmp6->icmp6_type >= 133 && icmp6->icmp6_type <= 136;
}

/* The sender protocol address of an ARP packet for IPv4 over Ethernet, host order; 0 for
 * other ARP (which then has to be from 0.0.0.0 to pass). */
static __always_inline int arp_sender(struct __sk_buff *skb, __u32 *spa)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	/* struct arphdr (8 bytes), then sha[6], spa[4], tha[6], tpa[4]. */
	__u8 *arp = data + sizeof(struct ethhdr);
	__be32 addr;

	if ((void *)(arp + 28) > data_end)
		return -1;
	__builtin_memcpy(&addr, arp + 14, sizeof(addr));
	*spa = bpf_ntohl(addr);
	return 0;
}

#endif
