"""pipe_fifo against a Python deque: random pushes and pops, full and empty, first word
fall-through (a word written at an edge is visible after it), the count."""

from __future__ import annotations

from collections import deque

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from rtl_models.tbkit import TB

DEPTH = 8
CYCLES = 3000


@cocotb.test()
async def test_fifo(dut):
    """Random traffic with phases of mostly pushing and mostly popping."""
    tb = TB(dut)
    dut.in_valid.value = 0
    dut.out_ready.value = 0
    dut.in_data.value = 0
    await tb.reset()
    ref: deque[int] = deque()
    seen_full = seen_empty = 0
    await FallingEdge(tb.clk)
    for i in range(CYCLES):
        p_push = (0.8, 0.3)[(i // 200) % 2]
        push, pop = tb.rng.random() < p_push, tb.rng.random() < 1.0 - p_push + 0.1
        word = tb.rng.getrandbits(32)
        dut.in_valid.value = int(push)
        dut.in_data.value = word
        dut.out_ready.value = int(pop)
        tb.check("in_ready", int(dut.in_ready.value), int(len(ref) < DEPTH), cycle=i)
        tb.check("out_valid", int(dut.out_valid.value), int(len(ref) > 0), cycle=i)
        tb.check("count", int(dut.count.value), len(ref), cycle=i)
        if ref:
            tb.check("out_data", int(dut.out_data.value), ref[0], cycle=i)
        seen_full += len(ref) == DEPTH
        seen_empty += not ref
        await RisingEdge(tb.clk)
        popped = pop and len(ref) > 0
        if push and len(ref) < DEPTH:
            ref.append(word)
        if popped:
            ref.popleft()
        await FallingEdge(tb.clk)
    assert seen_full > 10 and seen_empty > 10, (seen_full, seen_empty)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_fifo", parameters={"WIDTH": 32, "DEPTH": DEPTH})
