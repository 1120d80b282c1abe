"""pipe_extern_rand against hw.pipeline.ops.xorshift32: one state per bank, set at reset,
advanced by executing packets that do not fault (w_commit), back to back (forwarding)."""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tbkit import TB

NUM_PASSES = 3
SEEDS = (1, 0xDEADBEEF, 0x12345678)
VECTORS = 600


@cocotb.test()
async def test_xorshift_states(dut):
    """Sequences per bank with random execution, bank and commit; from state 1: 270369."""
    tb = TB(dut)
    dut.seeds.value = sum(s << (32 * b) for b, s in enumerate(SEEDS))
    dut.in_valid.value = 0
    dut.in_bank.value = 0
    dut.w_commit.value = 0
    await tb.reset()
    state = list(SEEDS)
    pending: tuple[int, int] | None = None  # (bank, new state) of the packet in write-back
    await FallingEdge(tb.clk)
    first = True
    for i in range(VECTORS):
        commit = tb.rng.random() < 0.8
        if pending is not None and commit:
            state[pending[0]] = pending[1]
        dut.w_commit.value = int(commit)  # for the packet in write-back (previous vector)
        valid = first or tb.rng.random() < 0.8
        bank = 0 if first else tb.rng.randrange(NUM_PASSES)
        first = False
        dut.in_valid.value = int(valid)
        dut.in_bank.value = bank
        exp = O.xorshift32(state[bank])
        await RisingEdge(tb.clk)
        await ReadOnly()
        tb.check("out_valid", int(dut.out_valid.value), int(valid), vector=i)
        if valid:
            tb.check("out_value", int(dut.out_value.value), exp, vector=i, bank=bank)
            if i == 0:
                assert exp == 270369
        pending = (bank, exp) if valid else None
        await FallingEdge(tb.clk)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_extern_rand", parameters={"NUM_PASSES": NUM_PASSES})
