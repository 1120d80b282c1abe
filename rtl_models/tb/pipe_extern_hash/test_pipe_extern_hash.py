"""pipe_extern_hash against hw.pipeline.ops.jhash2 (Linux jhash2): 0..16 words, any seed."""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tbkit import TB

VECTORS = 1000


@cocotb.test()
async def test_jhash2(dut):
    """jhash2 of every word count 0..16 with random words and seeds."""
    tb = TB(dut)
    for sig in ("in_valid", "key_bytes", "key_length", "seed"):
        getattr(dut, sig).value = 0
    await tb.reset()
    await FallingEdge(tb.clk)
    for i in range(VECTORS):
        n = i % 17
        words = [tb.rng.getrandbits(32) for _ in range(n)]
        seed = tb.rng.getrandbits(32)
        dut.in_valid.value = 1
        dut.key_bytes.value = sum(w << (32 * k) for k, w in enumerate(words))
        dut.key_length.value = 4 * n
        dut.seed.value = seed
        await RisingEdge(tb.clk)
        await ReadOnly()
        tb.check("out_value", int(dut.out_value.value), O.jhash2(words, seed), vector=i,
                 words=n, seed=hex(seed))
        await FallingEdge(tb.clk)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_extern_hash")
