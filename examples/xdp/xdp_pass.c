/* xdp_pass.c: baseline that passes every packet to the kernel stack (XDP_PASS).
 *
 * Two programs: xdp_pass_prog in SEC("xdp") and xdp_pass_frags in SEC("xdp.frags"); the
 * latter is the same verdict but declares that it accepts multi-buffer (fragmented) frames,
 * so the loader sets BPF_F_XDP_HAS_FRAGS.
 */
#include "common.h"

SEC("xdp")
int xdp_pass_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp.frags")
int xdp_pass_frags(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
