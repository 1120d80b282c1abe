/* fib_router.c: IPv4 and IPv6 router that asks the kernel's FIB for the next hop.
 *
 * bpf_fib_lookup (no flags: full lookup with policy rules and neighbour resolution) returns
 * the egress ifindex and both MACs. On BPF_FIB_LKUP_RET_SUCCESS the program decrements the TTL
 * (IPv4, checksum patched per RFC 1624) or hop limit (IPv6, no header checksum), rewrites the
 * MACs and redirects with bpf_redirect. Every other outcome (no route, neighbour unresolved,
 * needs fragmentation, TTL <= 1, not IP) passes the packet to the kernel stack.
 */
#include "common.h"

SEC("xdp")
int xdp_fib_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct bpf_fib_lookup fib;
	struct ipv6hdr *ip6h = NULL;
	struct iphdr *iph = NULL;
	struct ethhdr *eth;
	int vlans, proto, rc;

	proto = parse_ethhdr(&cur, data_end, &eth, &vlans);
	if (proto < 0 || vlans)
		return XDP_PASS;	/* tagged frames are left to the stack */

	__builtin_memset(&fib, 0, sizeof(fib));
	fib.ifindex = ctx->ingress_ifindex;
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&cur, data_end, &iph) < 0)
			return XDP_PASS;
		if (iph->ttl <= 1)
			return XDP_PASS;
		fib.family = AF_INET;
		fib.tos = iph->tos;
		fib.l4_protocol = iph->protocol;
		fib.tot_len = bpf_ntohs(iph->tot_len);
		fib.ipv4_src = iph->saddr;
		fib.ipv4_dst = iph->daddr;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ip6hdr(&cur, data_end, &ip6h) < 0)
			return XDP_PASS;
		if (ip6h->hop_limit <= 1)
			return XDP_PASS;
		fib.family = AF_INET6;
		fib.flowinfo = *(__be32 *)ip6h & bpf_htonl(0x0fffffff);
		fib.l4_protocol = ip6h->nexthdr;
		fib.tot_len = bpf_ntohs(ip6h->payload_len) + sizeof(*ip6h);
		__builtin_memcpy(fib.ipv6_src, &ip6h->saddr, sizeof(fib.ipv6_src));
		__builtin_memcpy(fib.ipv6_dst, &ip6h->daddr, sizeof(fib.ipv6_dst));
	} else {
		return XDP_PASS;
	}

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;

	if (iph)
		ipv4_decrement_ttl(iph);
	else if (ip6h)
		ip6h->hop_limit--;
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
