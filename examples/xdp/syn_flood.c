/* syn_flood.c: SYN-flood filter: drops TCP SYNs from sources that send too many per window.
 *
 * syn_counters (LRU_HASH, so a flood of spoofed sources evicts old entries instead of filling
 * the table) maps an IPv4 source to {count, window_start_ns}. A SYN without ACK opens or
 * continues the source's window of window_ns; within it, SYNs beyond syn_threshold are
 * dropped. Both parameters are `const volatile` globals in .rodata, set by the loader before
 * load (the verifier then sees them as constants). The count uses a 64-bit atomic add whose
 * result is not used, since CPUs share the entry. Other packets pass.
 */
#include "common.h"

const volatile __u64 syn_threshold = 100;		/* SYNs per window per source */
const volatile __u64 window_ns = 1000000000ULL;		/* 1 s */

struct syn_window {
	__u64 count;
	__u64 start_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct syn_window);
} syn_counters SEC(".maps");

SEC("xdp")
int xdp_syn_flood(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor cur = { .pos = data };
	struct syn_window *w, fresh;
	struct ethhdr *eth;
	struct iphdr *iph;
	struct tcphdr *th;
	__be32 saddr;
	__u64 now;
	int vlans;

	if (parse_ethhdr(&cur, data_end, &eth, &vlans) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (parse_iphdr(&cur, data_end, &iph) != IPPROTO_TCP || ipv4_is_fragment(iph))
		return XDP_PASS;
	if (parse_tcphdr(&cur, data_end, &th) < 0)
		return XDP_DROP;
	if (!th->syn || th->ack)
		return XDP_PASS;

	saddr = iph->saddr;
	now = bpf_ktime_get_ns();
	w = bpf_map_lookup_elem(&syn_counters, &saddr);
	if (!w || now - w->start_ns > window_ns) {
		fresh.count = 1;
		fresh.start_ns = now;
		bpf_map_update_elem(&syn_counters, &saddr, &fresh, BPF_ANY);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&w->count, 1);
	if (w->count > syn_threshold)
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
