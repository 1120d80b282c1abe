"""pipe_adjust against the model's bpf_xdp_adjust_head / _tail (docs/pipeline.md 5.5).

Random h and e (e - h >= 14) and deltas clustered around every limit: -frame_headroom,
-window_headroom (fault reason 2), e - 14, frame_end, h + 14; results 0 / -EINVAL, the
change and the new position.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from rtl_models.tbkit import TB
from rtl_models.tbkit.oracle import adjust, empty_config, model, packet
from rtl_models.tbkit.phv import POS_BITS

VECTORS = 1500
PMASK = (1 << POS_BITS) - 1


@cocotb.test()
async def test_adjust(dut):
    """adjh and adjt around every limit: ok, -EINVAL, headroom fault."""
    tb = TB(dut)
    cfg = empty_config()
    t = cfg.target
    m = model(cfg)
    for sig in ("in_valid", "tail", "b", "head", "end_pos"):
        getattr(dut, sig).value = 0
    await tb.reset()
    await FallingEdge(tb.clk)
    seen = set()
    for i in range(VECTORS):
        pk = packet(cfg, bytes(64))
        pk.head = tb.rng.randrange(-t.window_headroom, 300)
        pk.end = pk.head + tb.rng.randrange(t.min_packet_bytes, 3000)
        pk.end = min(pk.end, t.frame_end)
        if pk.end - pk.head < t.min_packet_bytes:
            pk.head = pk.end - t.min_packet_bytes
        tail = tb.rng.random() < 0.5
        if tail:
            target = tb.rng.choice((t.frame_end, pk.head + t.min_packet_bytes, pk.end))
            d = target - pk.end
        else:
            target = tb.rng.choice((-t.frame_headroom, -t.window_headroom,
                                    pk.end - t.min_packet_bytes, 0))
            d = target - pk.head
        d += tb.rng.randrange(-3, 4)
        if tb.rng.random() < 0.1:
            d = tb.rng.randrange(-(1 << 31), 1 << 31)
        b = (tb.rng.getrandbits(32) << 32) | (d & 0xFFFFFFFF)  # the high half is ignored
        valid = tb.rng.random() < 0.9
        name = "adjt" if tail else "adjh"
        value, change = adjust(m, pk, name, b)
        seen.add((name, change))
        dut.in_valid.value = int(valid)
        dut.tail.value = int(tail)
        dut.b.value = b
        dut.head.value = pk.head & PMASK
        dut.end_pos.value = pk.end & PMASK
        await RisingEdge(tb.clk)
        await ReadOnly()
        ctx = dict(vector=i, op=name, head=pk.head, end=pk.end, delta=d)
        tb.check("out_valid", int(dut.out_valid.value), int(valid and change != "fault"),
                 **ctx)
        tb.check("out_fault", int(dut.out_fault.value), int(valid and change == "fault"),
                 **ctx)
        tb.check("out_change", int(dut.out_change.value), int(valid and change == "ok"), **ctx)
        if valid and change != "fault":
            tb.check("out_result", int(dut.out_result.value), value, **ctx)
        if valid and change == "ok":
            new = (pk.end if tail else pk.head) + d
            tb.check("out_pos", int(dut.out_pos.value), new & PMASK, **ctx)
            tb.check("out_tail", int(dut.out_tail.value), int(tail), **ctx)
        await FallingEdge(tb.clk)
    tb.log.info("outcomes seen: %s", sorted(seen))
    assert len(seen) == 5, seen


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_adjust")
