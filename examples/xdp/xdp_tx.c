/* xdp_tx.c: baseline reflector: swaps the Ethernet source and destination MACs and sends the
 * frame back out of the interface it came in on (XDP_TX). Frames shorter than an Ethernet
 * header are dropped.
 */
#include "common.h"

SEC("xdp")
int xdp_tx_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	swap_macs(eth);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
