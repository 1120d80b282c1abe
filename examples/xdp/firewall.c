/* firewall.c: stateless IPv4 firewall with exact 5-tuple rules and source-prefix blocking.
 *
 * Order of checks: the source address is looked up in blocked_src, an LPM trie of IPv4
 * prefixes (a hit drops); then the 5-tuple (saddr, daddr, sport, dport, proto; ports zero for
 * protocols without them) is looked up in flow_rules, whose value is the XDP verdict to return
 * (XDP_DROP, XDP_PASS or XDP_TX are accepted, anything else passes). No rule: XDP_PASS.
 * Non-IPv4 traffic passes untouched; malformed IPv4 is dropped. Every verdict is counted in
 * verdict_stats, a per-CPU array indexed by the XDP action.
 */
#include "common.h"

struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];		/* zeroed: the hash covers every key byte */
};

struct lpm_v4_key {
	__u32 prefixlen;	/* bits of addr that matter, 0..32 */
	__be32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, __u32);	/* XDP action */
} flow_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);	/* rule id, for the control plane; any hit drops */
} blocked_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_REDIRECT + 1);
	__type(key, __u32);
	__type(value, __u64);
} verdict_stats SEC(".maps");

static __always_inline int verdict(__u32 action)
{
	__u64 *count = bpf_map_lookup_elem(&verdict_stats, &action);

	if (count)
		*count += 1;
	return action;
}

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct lpm_v4_key prefix;
	struct flow_key key;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *th;
	struct udphdr *uh;
	__u32 *action;
	int vlans, proto;

	proto = parse_ethhdr(&cur, data_end, &eth, &vlans);
	if (proto != bpf_htons(ETH_P_IP))
		return verdict(XDP_PASS);
	proto = parse_iphdr(&cur, data_end, &iph);
	if (proto < 0)
		return verdict(XDP_DROP);

	prefix.prefixlen = 32;
	prefix.addr = iph->saddr;
	if (bpf_map_lookup_elem(&blocked_src, &prefix))
		return verdict(XDP_DROP);

	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = iph->saddr;
	key.daddr = iph->daddr;
	key.proto = proto;
	if (!ipv4_is_fragment(iph)) {
		if (proto == IPPROTO_TCP) {
			if (parse_tcphdr(&cur, data_end, &th) < 0)
				return verdict(XDP_DROP);
			key.sport = th->source;
			key.dport = th->dest;
		} else if (proto == IPPROTO_UDP) {
			if (parse_udphdr(&cur, data_end, &uh) < 0)
				return verdict(XDP_DROP);
			key.sport = uh->source;
			key.dport = uh->dest;
		}
	}

	action = bpf_map_lookup_elem(&flow_rules, &key);
	if (!action)
		return verdict(XDP_PASS);
	switch (*action) {
	case XDP_DROP:
		return verdict(XDP_DROP);
	case XDP_TX:
		swap_macs(eth);
		return verdict(XDP_TX);
	default:
		return verdict(XDP_PASS);
	}
}

char LICENSE[] SEC("license") = "GPL";
