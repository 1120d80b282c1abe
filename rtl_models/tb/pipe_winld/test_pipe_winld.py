"""pipe_winld against the model's window access (docs/pipeline.md 5.4).

Random heads in [-H, W), signed 16-bit offsets and (wldv) 64-bit C[a], clustered around
the window's edges so that both in-window loads and faults (reason 1) occur; every size,
zero- and sign-extended. The window holds random bytes.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tbkit import TB
from rtl_models.tbkit.oracle import empty_config, packet, window_load
from rtl_models.tbkit.phv import POS_BITS

VECTORS = 1500


def offset_and_a(tb: TB, variable: bool, head: int, t) -> tuple[int, int]:
    """An offset (signed 16 bits) and C[a] putting the access near the window's edges."""
    edge = tb.rng.choice((-t.window_headroom - head, t.window_bytes - head,
                          tb.rng.randrange(-t.window_headroom, t.window_bytes) - head))
    x = edge + tb.rng.randrange(-9, 9)
    if tb.rng.random() < 0.1:
        x = tb.rng.randrange(-(1 << 15), 1 << 15)
    if not variable:
        return max(-(1 << 15), min((1 << 15) - 1, x)), 0
    r = tb.rng.random()
    if r < 0.1:
        return tb.rng.randrange(-(1 << 15), 1 << 15), tb.rng.getrandbits(64)  # huge C[a]
    if r < 0.2:
        return tb.rng.randrange(-300, 300), O.M64 - tb.rng.randrange(0, 300)  # "negative"
    a = tb.rng.randrange(0, 600)
    return max(-(1 << 15), min((1 << 15) - 1, x - a)), a


@cocotb.test()
async def test_window_loads(dut):
    """Loads in and out of the window, constant and variable offsets, every size."""
    tb = TB(dut)
    cfg = empty_config()
    t = cfg.target
    for sig in ("in_valid", "variable", "sgn", "size", "offset", "a", "head", "win"):
        getattr(dut, sig).value = 0
    await tb.reset()
    await FallingEdge(tb.clk)
    faults = 0
    for i in range(VECTORS):
        data = bytes(tb.rng.getrandbits(8) for _ in range(tb.rng.randrange(14, 400)))
        pk = packet(cfg, data)
        pk.window[:] = bytes(tb.rng.getrandbits(8) for _ in range(len(pk.window)))
        pk.head = tb.rng.randrange(-t.window_headroom, t.window_bytes)
        variable = tb.rng.random() < 0.5
        size = tb.rng.choice((1, 2, 4, 8))
        signed = tb.rng.random() < 0.5
        offset, a = offset_and_a(tb, variable, pk.head, t)
        valid = tb.rng.random() < 0.9
        dut.in_valid.value = int(valid)
        dut.variable.value = int(variable)
        dut.sgn.value = int(signed)
        dut.size.value = O.SIZE_CODES[size]
        dut.offset.value = offset & 0xFFFF
        dut.a.value = a
        dut.head.value = pk.head & ((1 << POS_BITS) - 1)
        dut.win.value = int.from_bytes(bytes(pk.window), "little")
        exp = window_load(pk, offset + (a if variable else 0), size, signed)
        await RisingEdge(tb.clk)
        await ReadOnly()
        ctx = dict(vector=i, head=pk.head, offset=offset, a=hex(a), size=size,
                   variable=variable)
        tb.check("out_valid", int(dut.out_valid.value), int(valid and exp is not None), **ctx)
        tb.check("out_fault", int(dut.out_fault.value), int(valid and exp is None), **ctx)
        if valid and exp is not None:
            tb.check("out_value", int(dut.out_value.value), exp, **ctx)
        faults += valid and exp is None
        await FallingEdge(tb.clk)
    tb.log.info("%d loads, %d faults", VECTORS, faults)
    assert 0.1 * VECTORS < faults < 0.7 * VECTORS, "vectors should mix loads and faults"


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_winld")
