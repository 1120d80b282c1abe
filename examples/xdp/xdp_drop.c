/* xdp_drop.c: baseline that drops every packet (XDP_DROP), the cheapest possible verdict. */
#include "common.h"

SEC("xdp")
int xdp_drop_prog(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
