"""pipe_extern_csum against hw.pipeline.ops.csum_diff (bpf_csum_diff), both modes.

Buffers of 0..64 bytes (multiples of 4 for x86_unfolded), absent or present, random and
all-0xff / all-zero contents (the end-around-carry corners), random and edge seeds.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tbkit import TB

VECTORS = 1500


def buffer(tb: TB, x86: bool) -> bytes:
    n = tb.rng.randrange(0, 65)
    if x86:
        n -= n % 4
    r = tb.rng.random()
    if r < 0.1:
        return b"\xff" * n
    if r < 0.15:
        return bytes(n)
    return bytes(tb.rng.getrandbits(8) for _ in range(n))


@cocotb.test()
async def test_csum_diff(dut):
    """fold16 and x86_unfolded checksums of random buffers and seeds."""
    tb = TB(dut)
    for sig in ("in_valid", "mode", "x_bytes", "x_length", "x_present", "y_bytes",
                "y_present", "seed"):
        getattr(dut, sig).value = 0
    await tb.reset()
    await FallingEdge(tb.clk)
    for i in range(VECTORS):
        x86 = tb.rng.random() < 0.3
        frm, to = buffer(tb, x86), buffer(tb, x86)
        seed = tb.rng.choice((0, 0xFFFFFFFF, 0xFFFF, tb.rng.getrandbits(32)))
        mode = "x86_unfolded" if x86 else "fold16"
        dut.in_valid.value = 1
        dut.mode.value = int(x86)
        dut.x_bytes.value = int.from_bytes(frm, "little")
        dut.x_length.value = len(frm)
        dut.x_present.value = int(len(frm) > 0)
        dut.y_bytes.value = int.from_bytes(to, "little")
        dut.y_present.value = int(len(to) > 0)
        dut.seed.value = seed
        await RisingEdge(tb.clk)
        await ReadOnly()
        tb.check("out_value", int(dut.out_value.value), O.csum_diff(frm, to, seed, mode),
                 vector=i, mode=mode, x=frm.hex(), y=to.hex(), seed=hex(seed))
        tb.check("out_valid", int(dut.out_valid.value), 1)
        await FallingEdge(tb.clk)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_extern_csum")
