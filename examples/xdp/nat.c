/* nat.c: source NAT for IPv4 TCP and UDP.
 *
 * nat_rules (HASH) maps the original {source address, source port, protocol} to the
 * translated {address, port}. On a hit the program rewrites saddr and the source port, then
 * fixes both checksums with bpf_csum_diff: the IPv4 header checksum over the address change,
 * the TCP/UDP checksum over address (pseudo-header) and port together. A UDP checksum of zero
 * ("none") stays zero. No rule, fragments and other protocols: XDP_PASS untouched.
 */
#include "common.h"

struct nat_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct nat_value {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* What the L4 checksum covers of the rewrite: bpf_csum_diff wants whole 32-bit words, so the
 * port is followed by a zero half-word (which adds nothing to the sum).
 */
struct csum_words {
	__be32 addr;
	__be16 port;
	__u16 zero;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct nat_key);
	__type(value, struct nat_value);
} nat_rules SEC(".maps");

/* New checksum after the words in `from` became `to`: seed the sum with ~check (RFC 1624). */
static __always_inline __u16 csum_rewrite(__u16 check, void *from, void *to, __u32 size)
{
	__s64 sum = bpf_csum_diff(from, size, to, size, (__u16)~check);

	return csum_fold32((__u32)sum);
}

SEC("xdp")
int xdp_snat(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct csum_words old_w, new_w;
	struct nat_value *nat;
	struct nat_key key;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *th = NULL;
	struct udphdr *uh = NULL;
	__be16 *port;
	__u16 *check;
	int vlans, proto;

	proto = parse_ethhdr(&cur, data_end, &eth, &vlans);
	if (proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&cur, data_end, &iph);
	if (proto < 0 || ipv4_is_fragment(iph))
		return XDP_PASS;
	if (proto == IPPROTO_TCP) {
		if (parse_tcphdr(&cur, data_end, &th) < 0)
			return XDP_PASS;
		port = &th->source;
		check = &th->check;
	} else if (proto == IPPROTO_UDP) {
		if (parse_udphdr(&cur, data_end, &uh) < 0)
			return XDP_PASS;
		port = &uh->source;
		check = &uh->check;
	} else {
		return XDP_PASS;
	}

	key.addr = iph->saddr;
	key.port = *port;
	key.proto = proto;
	key.pad = 0;
	nat = bpf_map_lookup_elem(&nat_rules, &key);
	if (!nat)
		return XDP_PASS;

	old_w.addr = iph->saddr;
	old_w.port = *port;
	old_w.zero = 0;
	new_w.addr = nat->addr;
	new_w.port = nat->port;
	new_w.zero = 0;

	if (!uh || *check) {
		__u16 sum = csum_rewrite(*check, &old_w, &new_w, sizeof(old_w));

		*check = (uh && sum == 0) ? 0xffff : sum;
	}
	iph->check = csum_rewrite(iph->check, &old_w.addr, &new_w.addr, sizeof(old_w.addr));
	iph->saddr = new_w.addr;
	*port = new_w.port;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
