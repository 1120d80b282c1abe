/* parser_counters.c: L2-L4 parser that counts packets and bytes per protocol.
 *
 * Walks Ethernet, up to two VLAN tags (802.1Q, and 802.1ad outer + 802.1Q inner = QinQ),
 * IPv4 with options (ihl > 5), IPv6 (fixed header), then TCP, UDP, ICMP or ICMPv6. Every layer
 * that is recognised bumps its slot in the per-CPU array proto_stats (packets and bytes, the
 * bytes being the frame length); a header cut short counts as PROTO_MALFORMED. The verdict is
 * always XDP_PASS.
 */
#include "common.h"

enum proto_index {
	PROTO_ETH = 0,
	PROTO_VLAN,		/* exactly one tag */
	PROTO_QINQ,		/* two tags */
	PROTO_IPV4,
	PROTO_IPV4_OPTIONS,	/* IPv4 with ihl > 5 (counted in addition to PROTO_IPV4) */
	PROTO_IPV6,
	PROTO_TCP,
	PROTO_UDP,
	PROTO_ICMP,
	PROTO_ICMPV6,
	PROTO_OTHER_L3,
	PROTO_OTHER_L4,
	PROTO_MALFORMED,
	PROTO_MAX = 16,
};

struct proto_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROTO_MAX);
	__type(key, __u32);
	__type(value, struct proto_counter);
} proto_stats SEC(".maps");

static __always_inline void count(__u32 index, __u64 bytes)
{
	struct proto_counter *c = bpf_map_lookup_elem(&proto_stats, &index);

	/* Per-CPU slots: no other CPU writes this one, a plain add is enough. */
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

SEC("xdp")
int xdp_parser_counters(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 bytes = data_end - data;
	struct hdr_cursor cur = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct ipv6hdr *ip6h;
	struct tcphdr *th;
	struct udphdr *uh;
	int vlans = 0;
	int l3, l4;

	l3 = parse_ethhdr(&cur, data_end, &eth, &vlans);
	if (l3 < 0) {
		count(PROTO_MALFORMED, bytes);
		return XDP_PASS;
	}
	count(PROTO_ETH, bytes);
	if (vlans == 1)
		count(PROTO_VLAN, bytes);
	else if (vlans == 2)
		count(PROTO_QINQ, bytes);

	if (l3 == bpf_htons(ETH_P_IP)) {
		l4 = parse_iphdr(&cur, data_end, &iph);
		if (l4 < 0)
			goto malformed;
		count(PROTO_IPV4, bytes);
		if (iph->ihl > 5)
			count(PROTO_IPV4_OPTIONS, bytes);
		if (iph->frag_off & bpf_htons(IP_OFFMASK))
			return XDP_PASS;	/* later fragments carry no L4 header */
	} else if (l3 == bpf_htons(ETH_P_IPV6)) {
		l4 = parse_ip6hdr(&cur, data_end, &ip6h);
		if (l4 < 0)
			goto malformed;
		count(PROTO_IPV6, bytes);
	} else {
		count(PROTO_OTHER_L3, bytes);
		return XDP_PASS;
	}

	switch (l4) {
	case IPPROTO_TCP:
		if (parse_tcphdr(&cur, data_end, &th) < 0)
			goto malformed;
		count(PROTO_TCP, bytes);
		break;
	case IPPROTO_UDP:
		if (parse_udphdr(&cur, data_end, &uh) < 0)
			goto malformed;
		count(PROTO_UDP, bytes);
		break;
	case IPPROTO_ICMP:
		if (cur.pos + sizeof(struct icmp4hdr) > data_end)
			goto malformed;
		count(PROTO_ICMP, bytes);
		break;
	case IPPROTO_ICMPV6:
		if (cur.pos + sizeof(struct icmp6hdr) > data_end)
			goto malformed;
		count(PROTO_ICMPV6, bytes);
		break;
	default:
		count(PROTO_OTHER_L4, bytes);
		break;
	}
	return XDP_PASS;

malformed:
	count(PROTO_MALFORMED, bytes);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
