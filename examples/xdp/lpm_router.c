/* lpm_router.c: IPv4 router with its own route table, forwarding through a DEVMAP.
 *
 * routes is an LPM trie from destination prefix to {ifindex, dmac, smac}. On a hit with
 * TTL > 1 the program rewrites both MACs, decrements the TTL patching the header checksum
 * incrementally (RFC 1624) and redirects with bpf_redirect_map into tx_ports, whose slot
 * ifindex holds the egress device (an empty slot makes the redirect fail: XDP_ABORTED).
 * TTL <= 1, a route miss and anything that is not IPv4 go to the kernel stack (XDP_PASS),
 * which sends the ICMP errors. Fragments are routed like any packet (only L3 is read).
 */
#include "common.h"

#define MAX_PORTS 256

struct lpm_v4_key {
	__u32 prefixlen;
	__be32 addr;
};

struct route {
	__u32 ifindex;		/* egress device, also its slot in tx_ports */
	__u8 dmac[ETH_ALEN];	/* next hop */
	__u8 smac[ETH_ALEN];	/* egress device's own address */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, struct route);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);	/* ifindex */
} tx_ports SEC(".maps");

SEC("xdp")
int xdp_lpm_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct lpm_v4_key key;
	struct route *rt;
	struct ethhdr *eth;
	struct iphdr *iph;
	int vlans, proto;

	proto = parse_ethhdr(&cur, data_end, &eth, &vlans);
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&cur, data_end, &iph) < 0)
		return XDP_PASS;

	key.prefixlen = 32;
	key.addr = iph->daddr;
	rt = bpf_map_lookup_elem(&routes, &key);
	if (!rt)
		return XDP_PASS;
	if (iph->ttl <= 1)
		return XDP_PASS;

	ipv4_decrement_ttl(iph);
	__builtin_memcpy(eth->h_dest, rt->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, rt->smac, ETH_ALEN);
	return bpf_redirect_map(&tx_ports, rt->ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
