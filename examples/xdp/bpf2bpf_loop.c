/* bpf2bpf_loop.c: bpf-to-bpf calls and bounded loops, the way clang 14 emits them.
 *
 * The XDP program calls classify(), a real subprogram (noinline, in .text), which calls
 * ipv4_hdr_csum_ok() -> sum_words() for IPv4 and skip_ipv6_exthdrs() for IPv6: three levels of
 * calls. Two genuine loops (no unrolling, the verifier walks them iteration by iteration):
 * sum_words() adds up to MAX_IPV4_WORDS 16-bit words of the IPv4 header (options included) to
 * verify its checksum, and skip_ipv6_exthdrs() walks up to MAX_EXT_HDRS IPv6 extension
 * headers (hop-by-hop, routing, fragment, destination options, AH) to find the L4 protocol.
 * Verdicts: IPv4 with a bad header checksum or a truncated header is dropped, IPv6 whose
 * extension chain is longer than MAX_EXT_HDRS is dropped, the rest passes; the L4 protocol
 * found is counted in l4_hits (ARRAY by protocol number).
 */
#include "common.h"

#define MAX_EXT_HDRS 8
#define MAX_IPV4_WORDS 30	/* 60-byte header with options */
#define MAX_L3_OFFSET 512	/* bound on the walk, keeps packet offsets small for the verifier */

#define CLASSIFY_BAD -1		/* truncated or failed a check: drop */
#define CLASSIFY_OTHER -2	/* not IP: pass */

#define __subprog static __attribute__((noinline))

struct ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} l4_hits SEC(".maps");

/* One's-complement sum of `words` 16-bit words starting at packet offset `off`. */
__subprog __u32 sum_words(struct xdp_md *ctx, __u32 off, __u32 words)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 sum = 0;

	if (off > MAX_L3_OFFSET)
		return 0;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < MAX_IPV4_WORDS; i++) {
		__u16 *word = data + off + i * 2;

		if (i >= words)
			break;
		if ((void *)(word + 1) > data_end)
			return 0;
		sum += *word;
	}
	return sum;
}

/* 1 when the IPv4 header at `off` (options included) has a valid checksum, else 0. */
__subprog int ipv4_hdr_csum_ok(struct xdp_md *ctx, __u32 off)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph;

	if (off > MAX_L3_OFFSET)
		return 0;
	iph = data + off;
	if ((void *)(iph + 1) > data_end || iph->ihl < 5)
		return 0;
	return csum_fold32(sum_words(ctx, off, iph->ihl * 2)) == 0;
}

static __always_inline int is_ipv6_ext(int nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
		return 1;
	default:
		return 0;
	}
}

/* Walks the extension headers from packet offset *off; returns the upper-layer protocol and
 * leaves *off on its header, or CLASSIFY_BAD for a truncated or too long chain.
 */
__subprog int skip_ipv6_exthdrs(struct xdp_md *ctx, __u32 *off, int nexthdr)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 pos = *off;

#pragma clang loop unroll(disable)
	for (int i = 0; i < MAX_EXT_HDRS; i++) {
		struct ext_hdr *eh;

		if (!is_ipv6_ext(nexthdr)) {
			*off = pos;
			return nexthdr;
		}
		if (pos > MAX_L3_OFFSET)
			return CLASSIFY_BAD;
		eh = data + pos;
		if ((void *)(eh + 1) > data_end)
			return CLASSIFY_BAD;
		/* The length rule is the current header's: fragment headers are 8 bytes, AH
		 * counts 4-byte words minus 2, the others 8-byte words minus 1.
		 */
		if (nexthdr == IPPROTO_FRAGMENT)
			pos += 8;
		else if (nexthdr == IPPROTO_AH)
			pos += (eh->hdrlen + 2) * 4;
		else
			pos += (eh->hdrlen + 1) * 8;
		nexthdr = eh->nexthdr;
	}
	if (is_ipv6_ext(nexthdr))
		return CLASSIFY_BAD;
	*off = pos;
	return nexthdr;
}

/* L4 protocol of the frame, CLASSIFY_BAD or CLASSIFY_OTHER. */
__subprog int classify(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct ethhdr *eth;
	struct ipv6hdr *ip6h;
	struct iphdr *iph;
	int vlans, proto;
	__u32 off;

	proto = parse_ethhdr(&cur, data_end, &eth, &vlans);
	if (proto < 0)
		return CLASSIFY_BAD;
	off = cur.pos - data;
	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_iphdr(&cur, data_end, &iph) < 0)
			return CLASSIFY_BAD;
		if (!ipv4_hdr_csum_ok(ctx, off))
			return CLASSIFY_BAD;
		return iph->protocol;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		proto = parse_ip6hdr(&cur, data_end, &ip6h);
		if (proto < 0)
			return CLASSIFY_BAD;
		off = cur.pos - data;
		return skip_ipv6_exthdrs(ctx, &off, proto);
	}
	return CLASSIFY_OTHER;
}

SEC("xdp")
int xdp_bpf2bpf_loop(struct xdp_md *ctx)
{
	int proto = classify(ctx);
	__u32 key;
	__u64 *hits;

	if (proto == CLASSIFY_BAD)
		return XDP_DROP;
	if (proto < 0)
		return XDP_PASS;
	key = proto;
	hits = bpf_map_lookup_elem(&l4_hits, &key);
	if (hits)
		__sync_fetch_and_add(hits, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
