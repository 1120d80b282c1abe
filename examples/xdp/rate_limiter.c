/* rate_limiter.c: per-source IPv4 token bucket; packets over the rate are dropped.
 *
 * buckets (HASH) maps a source address to {credit_ns, last_ns}. Credit is kept in
 * nanoseconds of line time rather than in tokens, so no division is needed: every packet
 * costs NS_PER_PACKET, the credit grows by the time elapsed since the last packet
 * (bpf_ktime_get_ns) and saturates at BURST packets' worth. Not enough credit: XDP_DROP.
 * A new source starts with a full bucket (minus this packet). Updates are a plain
 * read-modify-write: two CPUs racing on one source may both pass, which is within the burst.
 * Non-IPv4 passes.
 */
#include "common.h"

#define RATE_PPS 1000ULL			/* packets per second per source */
#define BURST 100ULL				/* packets allowed back to back */
#define NS_PER_PACKET (1000000000ULL / RATE_PPS)
#define MAX_CREDIT_NS (BURST * NS_PER_PACKET)

struct bucket {
	__u64 credit_ns;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct bucket);
} buckets SEC(".maps");

SEC("xdp")
int xdp_rate_limiter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	struct bucket *b, fresh;
	__u64 now, credit;
	__be32 saddr;
	int vlans;

	if (parse_ethhdr(&cur, data_end, &eth, &vlans) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&cur, data_end, &iph) < 0)
		return XDP_DROP;
	saddr = iph->saddr;
	now = bpf_ktime_get_ns();

	b = bpf_map_lookup_elem(&buckets, &saddr);
	if (!b) {
		fresh.credit_ns = MAX_CREDIT_NS - NS_PER_PACKET;
		fresh.last_ns = now;
		bpf_map_update_elem(&buckets, &saddr, &fresh, BPF_NOEXIST);
		return XDP_PASS;
	}

	credit = b->credit_ns + (now - b->last_ns);
	if (credit > MAX_CREDIT_NS)
		credit = MAX_CREDIT_NS;
	b->last_ns = now;
	if (credit < NS_PER_PACKET) {
		b->credit_ns = credit;
		return XDP_DROP;
	}
	b->credit_ns = credit - NS_PER_PACKET;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
