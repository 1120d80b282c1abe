"""pipe_winst against the model's window access (docs/pipeline.md 5.4): index, bytes, data.

The store itself lands at the stage's write-back (tested with pipe_stage); here the port's
address check (fault reason 1) and its outputs.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tb.pipe_winld.test_pipe_winld import offset_and_a
from rtl_models.tbkit import TB
from rtl_models.tbkit.oracle import empty_config, packet, window_access
from rtl_models.tbkit.phv import POS_BITS

VECTORS = 1000


@cocotb.test()
async def test_window_stores(dut):
    """Store addresses in and out of the window, constant and variable, every size."""
    tb = TB(dut)
    cfg = empty_config()
    t = cfg.target
    for sig in ("in_valid", "variable", "size", "offset", "a", "b", "head"):
        getattr(dut, sig).value = 0
    await tb.reset()
    await FallingEdge(tb.clk)
    for i in range(VECTORS):
        pk = packet(cfg, bytes(64))
        pk.head = tb.rng.randrange(-t.window_headroom, t.window_bytes)
        variable = tb.rng.random() < 0.5
        size = tb.rng.choice((1, 2, 4, 8))
        offset, a = offset_and_a(tb, variable, pk.head, t)
        b = tb.rng.getrandbits(64)
        valid = tb.rng.random() < 0.9
        dut.in_valid.value = int(valid)
        dut.variable.value = int(variable)
        dut.size.value = O.SIZE_CODES[size]
        dut.offset.value = offset & 0xFFFF
        dut.a.value = a
        dut.b.value = b
        dut.head.value = pk.head & ((1 << POS_BITS) - 1)
        idx = window_access(pk, offset + (a if variable else 0), size)
        await RisingEdge(tb.clk)
        await ReadOnly()
        ctx = dict(vector=i, head=pk.head, offset=offset, a=hex(a), size=size)
        tb.check("out_valid", int(dut.out_valid.value), int(valid and idx is not None), **ctx)
        tb.check("out_fault", int(dut.out_fault.value), int(valid and idx is None), **ctx)
        if valid and idx is not None:
            tb.check("out_index", int(dut.out_index.value), idx, **ctx)
            tb.check("out_bytes", int(dut.out_bytes.value), size, **ctx)
            tb.check("out_data", int(dut.out_data.value), b & O.mask(8 * size), **ctx)
        await FallingEdge(tb.clk)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_winst")
