"""An object whose first program is not XDP: a tracepoint, a tc classifier, two XDP
programs and one in a section libbpf does not know (shared by the tests of the default
program, the refusals and the report's skipped list)."""

from __future__ import annotations

MIXED_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_write")
int trace_write(void *ctx)
{
	return 0;
}

SEC("tc")
int tc_classify(struct __sk_buff *skb)
{
	return skb->len > 100 ? 2 : 0;
}

SEC("xdp")
int xdp_first(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_second(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("not_a_known_section")
int odd_one(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""
