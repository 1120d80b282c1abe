"""pipe_extern_ts against hw.pipeline.ops.timestamp_ns, at a clock whose period is not a
whole number of ns (156.25 MHz: 6.4 ns)."""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tbkit import TB

CLOCK_KHZ = 156250
VECTORS = 500


@cocotb.test()
async def test_timestamps(dut):
    """floor(admit_cycle * 10^6 / clock_khz) for small, large and random cycle counts."""
    tb = TB(dut)
    dut.in_valid.value = 0
    dut.admit_cycle.value = 0
    await tb.reset()
    await FallingEdge(tb.clk)
    for i in range(VECTORS):
        cycle = tb.rng.choice((i, tb.rng.getrandbits(20), tb.rng.getrandbits(44),
                               (1 << 44) - 1))
        dut.in_valid.value = 1
        dut.admit_cycle.value = cycle
        await RisingEdge(tb.clk)
        await ReadOnly()
        tb.check("out_value", int(dut.out_value.value), O.timestamp_ns(cycle, CLOCK_KHZ),
                 cycle=cycle)
        await FallingEdge(tb.clk)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_extern_ts", parameters={"CLOCK_KHZ": CLOCK_KHZ})
