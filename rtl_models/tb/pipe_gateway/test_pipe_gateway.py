"""pipe_gateway against docs/pipeline.md 5.1 and hw/pipeline/ops.py's comparisons.

Gateway words come from hw.pipeline.images.encode_gateway (the image encoder the RTL
loads); the read bus holds 64 random index values. Every comparison, width, slice, invert
and combine; B from the bus or the immediate; the pred comparison on random predicates.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from hw.pipeline.config import Gateway
from hw.pipeline.images import encode_gateway
from rtl_models.tbkit import TB

PER_FORM = 24


class GatewayTB(TB):
    def __init__(self, dut) -> None:
        super().__init__(dut)
        dut.in_valid.value = 0
        dut.cfg.value = 0
        dut.rd.value = 0
        dut.pin.value = 0

    def value(self) -> int:
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice((0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000,
                                    0xFFFFFFFF, O.M64, 1 << 63))
        return self.rng.getrandbits(self.rng.choice((8, 16, 32, 64)))


def expected(g: Gateway, rd: list[int], pin: int) -> int:
    """The model's gateway (hw/pipeline/model.py, PipelineModel._stage)."""
    if g.cmp == "pred":
        r = bool(pin >> g.a & 1)
    else:
        a = O.op_ext(O.OpInput(a=rd[g.a], size=g.a_size, offset=g.a_offset))
        b = rd[g.b] if g.b is not None else g.imm
        r = O.GATEWAY_BY_NAME[g.cmp].fn(a, b, g.width)
    r = r != g.invert
    q = bool(pin >> g.pred_in & 1) != g.pred_in_neg
    return int((r and q) if g.combine == "and" else (r or q))


def gateways(tb: GatewayTB):
    for cmp in O.GATEWAY_CMPS:
        for width in (32, 64):
            for _ in range(PER_FORM):
                size = tb.rng.choice((1, 2, 4, 8))
                use_b = tb.rng.random() < 0.5
                yield Gateway(dst=tb.rng.randrange(1, 64), cmp=cmp.name,
                              a=tb.rng.randrange(0, 64), b=tb.rng.randrange(0, 64) if use_b
                              else None, imm=0 if use_b else tb.value(), width=width,
                              a_offset=tb.rng.randrange(0, 9 - size), a_size=size,
                              invert=tb.rng.random() < 0.5,
                              combine=tb.rng.choice(O.COMBINES),
                              pred_in=tb.rng.randrange(0, 64),
                              pred_in_neg=tb.rng.random() < 0.5)


@cocotb.test()
async def test_gateway_compares(dut):
    """Every comparison and width, slices, invert, combine, B bus or immediate."""
    tb = GatewayTB(dut)
    await tb.reset()
    await FallingEdge(tb.clk)
    n = 0
    for g in gateways(tb):
        rd = [tb.value() for _ in range(64)]
        if tb.rng.random() < 0.3:  # make equality likely
            rd[g.a] = rd[g.b if g.b is not None else 0] if g.b is not None else (
                g.imm << (8 * g.a_offset)) & O.M64
        pin = tb.rng.getrandbits(64) | 1
        dut.in_valid.value = 1
        dut.cfg.value = encode_gateway(g)
        dut.rd.value = sum(v << (64 * i) for i, v in enumerate(rd))
        dut.pin.value = pin
        await RisingEdge(tb.clk)
        await ReadOnly()
        ctx = dict(gateway=g, a=hex(rd[g.a]), pin=hex(pin))
        tb.check("out_en", int(dut.out_en.value), 1, **ctx)
        tb.check("out_dst", int(dut.out_dst.value), g.dst, **ctx)
        tb.check("out_value", int(dut.out_value.value), expected(g, rd, pin), **ctx)
        n += 1
        await FallingEdge(tb.clk)
    dut.cfg.value = 0  # a gateway not in use
    await RisingEdge(tb.clk)
    await ReadOnly()
    tb.check("out_en (unused gateway)", int(dut.out_en.value), 0)
    tb.log.info("%d gateways checked", n)


def run(workdir=None) -> None:
    from rtl_models.runner import run_testbench

    run_testbench("pipe_gateway")
