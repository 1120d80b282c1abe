"""pipe_delay: valid and data come out exactly CYCLES clocks later (CYCLES from the build)."""

from __future__ import annotations

import os

import cocotb
from cocotb.triggers import FallingEdge, Timer

from rtl_models.tbkit import TB


@cocotb.test()
async def test_delay(dut):
    """A random valid / data stream, delayed by CYCLES (0: a wire)."""
    cycles = int(os.environ["DELAY_CYCLES"])
    tb = TB(dut)
    dut.in_valid.value = 0
    dut.in_data.value = 0
    await tb.reset()
    history: list[tuple[int, int]] = []
    for i in range(500):
        await FallingEdge(tb.clk)
        if cycles and i >= cycles:  # driven at falling edge i - cycles
            ev, ed = history[i - cycles]
            tb.check("out_valid", int(dut.out_valid.value), ev, cycle=i)
            if ev:
                tb.check("out_data", int(dut.out_data.value), ed, cycle=i)
        v, d = int(tb.rng.random() < 0.6), tb.rng.getrandbits(16)
        dut.in_valid.value = v
        dut.in_data.value = d
        history.append((v, d))
        if not cycles:
            await Timer(1, unit="ns")
            tb.check("out_valid (wire)", int(dut.out_valid.value), v, cycle=i)
            tb.check("out_data (wire)", int(dut.out_data.value), d, cycle=i)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    for cycles in (0, 1, 3):
        run_testbench("pipe_delay", parameters={"WIDTH": 16, "CYCLES": cycles},
                      env={"DELAY_CYCLES": str(cycles)})
