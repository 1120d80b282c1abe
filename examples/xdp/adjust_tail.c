/* adjust_tail.c: truncates frames longer than MAX_FRAME_LEN bytes with bpf_xdp_adjust_tail.
 *
 * A frame whose linear data is longer than the limit loses its tail (a negative delta to
 * bpf_xdp_adjust_tail) and is passed on, the kind of cut a sampler or a "packet too big"
 * generator makes. Truncated frames are counted in trunc_stats[0] (64-bit atomic add). A
 * failing adjust_tail aborts (XDP_ABORTED, visible in the xdp:xdp_exception tracepoint).
 */
#include "common.h"

#define MAX_FRAME_LEN 128

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} trunc_stats SEC(".maps");

SEC("xdp")
int xdp_adjust_tail(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int len = data_end - data;
	__u32 zero = 0;
	__u64 *count;

	if (len <= MAX_FRAME_LEN)
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, MAX_FRAME_LEN - len))
		return XDP_ABORTED;
	count = bpf_map_lookup_elem(&trunc_stats, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
