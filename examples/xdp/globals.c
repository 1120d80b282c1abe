/* globals.c: global variables in all three data sections, as libbpf maps them.
 *
 * .rodata (const volatile, set by the loader before load and then frozen): cfg_enabled
 *   switches filtering on, cfg_blocked_port is the UDP/TCP destination port to drop,
 *   cfg_min_len the shortest frame accepted.
 * .data (initialised): sample_every says how often a packet is sampled, sample_mark is the
 *   value a sampled packet's count is tagged with in last_sample.
 * .bss (zero-initialised): pkt_count, drop_count, sampled_count, last_sample.
 * Every packet bumps pkt_count; when enabled, frames shorter than cfg_min_len and IPv4
 * TCP/UDP to cfg_blocked_port are dropped (drop_count); every sample_every-th packet bumps
 * sampled_count and records pkt_count | sample_mark in last_sample. Counters shared between
 * CPUs use 64-bit atomic adds whose result is not used; the sampling test reads pkt_count
 * with a plain load (a racy sample is acceptable).
 */
#include "common.h"

const volatile __u8 cfg_enabled = 1;
const volatile __u16 cfg_blocked_port = 23;
const volatile __u32 cfg_min_len = ETH_ZLEN;

__u32 sample_every = 64;
__u64 sample_mark = 0x5a5a000000000000ULL;

__u64 pkt_count;
__u64 drop_count;
__u64 sampled_count;
__u64 last_sample;

static __always_inline int drop(void)
{
	__sync_fetch_and_add(&drop_count, 1);
	return XDP_DROP;
}

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *th;
	struct udphdr *uh;
	__be16 dport = 0;
	__u64 seen;
	int vlans, proto;

	__sync_fetch_and_add(&pkt_count, 1);
	seen = pkt_count;
	if (sample_every && seen % sample_every == 0) {
		__sync_fetch_and_add(&sampled_count, 1);
		last_sample = seen | sample_mark;
	}
	if (!cfg_enabled)
		return XDP_PASS;
	if (data + cfg_min_len > data_end)
		return drop();

	if (parse_ethhdr(&cur, data_end, &eth, &vlans) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	proto = parse_iphdr(&cur, data_end, &iph);
	if (proto < 0 || ipv4_is_fragment(iph))
		return XDP_PASS;
	if (proto == IPPROTO_TCP && parse_tcphdr(&cur, data_end, &th) == 0)
		dport = th->dest;
	else if (proto == IPPROTO_UDP && parse_udphdr(&cur, data_end, &uh) == 0)
		dport = uh->dest;
	if (dport && dport == bpf_htons(cfg_blocked_port))
		return drop();
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
