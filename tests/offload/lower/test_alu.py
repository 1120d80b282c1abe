"""offload.lower.alu: the packet length after bpf_xdp_adjust_tail grows the tail.

``data_end - data`` after an adjust is the new length: the op reading ``data_len`` must sit
in a later stage than the adjust (a stage's ops read the PHV as it entered the stage). The
oracles: the VM through the equivalence check (the VM itself against the kernel's
BPF_PROG_TEST_RUN), and the pipeline model against the RTL.
"""

from __future__ import annotations

import pytest

from ebpf.differential import Scenario, differential
from ebpf.loader.elf import load
from hw.pipeline.ops import META_BY_NAME
from offload.mapper import map_program
from sim.packets import random_packets
from tests.conftest import compile_bpf
from tests.rtl.test_rtl_units import needs_sim

# xdp_grow_tag grows short frames by 32 bytes, tags the grown bytes and counts the bytes
# after growth; xdp_grow_count grows every frame and counts (nothing else orders the length
# read after the adjust).
TAIL_GROWTH_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} rx_bytes SEC(".maps");

SEC("xdp")
int xdp_grow_tag(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	if (end - data > 128)
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, 32))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	unsigned char *tag = data + 128;
	if ((void *)(tag + 4) > end)
		return XDP_DROP;
	tag[0] = 0xab;
	tag[3] = tag[1] ^ 0x5a;
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&rx_bytes, &k);
	if (v)
		__sync_fetch_and_add(v, end - data);
	return XDP_TX;
}

SEC("xdp")
int xdp_grow_count(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_tail(ctx, 32))
		return XDP_PASS;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&rx_bytes, &k);
	if (v)
		__sync_fetch_and_add(v, end - data);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture
def grow(tmp_path):
    return compile_bpf(tmp_path, TAIL_GROWTH_SOURCE, "grow")


@pytest.mark.parametrize("program", ["xdp_grow_tag", "xdp_grow_count"])
def test_length_after_tail_growth_is_equivalent_on_pipe(grow, program):
    """The mapping of the grown-tail program is full and equivalent to the VM (bytes,
    verdicts and the rx_bytes count, which was 32 B short per packet), and the data_len
    read comes after the adjust's stage."""
    rep = map_program(grow, "pipe", program)
    assert rep.verdict == "full" and rep.equivalence is not None
    assert rep.equivalence["ok"], rep.equivalence["failure"]
    assert rep.punted is not None and rep.punted < rep.packets  # packets grew on the NIC
    data_len = META_BY_NAME["data_len"].index
    stages = rep.config["stages"]
    adjust = min(i for i, s in enumerate(stages) for op in s["ops"] if op["op"] == "adjt")
    reads = [i for i, s in enumerate(stages) for op in s["ops"]
             if op["op"] == "sub" and op["a"] == data_len]
    assert any(i > adjust for i in reads)  # the count's length: read after the growth


@pytest.mark.kernel
def test_the_vm_grows_the_tail_as_the_kernel(grow):
    """The equivalence's oracle is right: the VM against BPF_PROG_TEST_RUN, bytes and maps."""
    for program in ("xdp_grow_tag", "xdp_grow_count"):
        report = differential(str(grow), load(grow), random_packets(300, seed=2), Scenario(),
                              program)
        assert report.packets == 300 and not report.mismatches


@needs_sim
def test_tail_growth_in_the_rtl(grow, tmp_path):
    """The RTL against the pipeline model (bytes, registers, timing) and the model against
    the VM: no difference on packets that grow."""
    from offload.cosim import cosim

    res = cosim(grow, "xdp_grow_count", packets=40, seed=1, workdir=tmp_path / "w",
                quiet=True)
    assert res.mismatches == 0 and res.output_mismatches == 0 and res.state_mismatches == 0
    assert res.vm_equivalence == "ok", res.differences
