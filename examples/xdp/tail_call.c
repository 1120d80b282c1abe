/* tail_call.c: protocol dispatcher built on tail calls through a PROG_ARRAY.
 *
 * Three programs in one object, all SEC("xdp"): xdp_dispatch parses up to the IPv4/IPv6
 * header and bpf_tail_call()s into jmp_table at the IP protocol number; the table is
 * initialised statically, so loading the object fills slot IPPROTO_TCP with xdp_tcp and slot
 * IPPROTO_UDP with xdp_udp. An empty slot makes the tail call fall through to XDP_PASS.
 * A tail call keeps only the context, so the callees parse again. xdp_tcp drops TCP to port
 * 23 (telnet); xdp_udp drops UDP from port 19 (chargen, an amplification source). Each
 * callee counts what it sees in proto_hits (ARRAY by IP protocol, 64-bit atomic adds).
 */
#include "common.h"

#define TELNET_PORT 23
#define CHARGEN_PORT 19

int xdp_tcp(struct xdp_md *ctx);
int xdp_udp(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__array(values, int (struct xdp_md *));
} jmp_table SEC(".maps") = {
	.values = {
		[IPPROTO_TCP] = (void *)&xdp_tcp,
		[IPPROTO_UDP] = (void *)&xdp_udp,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_hits SEC(".maps");

/* Parse to the L4 header: returns the IP protocol (or IPv6 next header) and leaves the
 * cursor on the L4 header, or -1.
 */
static __always_inline int parse_to_l4(struct hdr_cursor *cur, void *data_end)
{
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	struct iphdr *iph;
	int vlans, proto;

	proto = parse_ethhdr(cur, data_end, &eth, &vlans);
	if (proto == bpf_htons(ETH_P_IP)) {
		proto = parse_iphdr(cur, data_end, &iph);
		if (proto >= 0 && ipv4_is_fragment(iph))
			return -1;
		return proto;
	}
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ip6hdr(cur, data_end, &ip6h);
	return -1;
}

static __always_inline void count_hit(__u32 proto)
{
	__u64 *hits = bpf_map_lookup_elem(&proto_hits, &proto);

	if (hits)
		__sync_fetch_and_add(hits, 1);
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	int proto = parse_to_l4(&cur, data_end);

	if (proto < 0)
		return XDP_PASS;
	bpf_tail_call(ctx, &jmp_table, proto);
	return XDP_PASS;	/* empty slot */
}

SEC("xdp")
int xdp_tcp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct tcphdr *th;

	if (parse_to_l4(&cur, data_end) != IPPROTO_TCP)
		return XDP_PASS;
	count_hit(IPPROTO_TCP);
	if (parse_tcphdr(&cur, data_end, &th) < 0)
		return XDP_DROP;
	if (th->dest == bpf_htons(TELNET_PORT))
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int xdp_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct udphdr *uh;

	if (parse_to_l4(&cur, data_end) != IPPROTO_UDP)
		return XDP_PASS;
	count_hit(IPPROTO_UDP);
	if (parse_udphdr(&cur, data_end, &uh) < 0)
		return XDP_DROP;
	if (uh->source == bpf_htons(CHARGEN_PORT))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
