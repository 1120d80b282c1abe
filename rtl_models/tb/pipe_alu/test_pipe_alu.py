"""pipe_alu against hw/pipeline/ops.py: every ALU op, width, size and offset, random operands.

The DUT is built with MUL_MAX_BITS=64 and DIV="full" so that every op has hardware. One
vector per clock (the ALU is pipelined): operands change every cycle, and the slot executes
with probability 0.9 (out_valid must follow). Codes that are not ALU ops (nop, window and
adjust ops, reserved codes) must never write.
"""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hw.pipeline import ops as O
from rtl_models.tbkit import TB

EDGES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
         0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, O.M64, O.M64 - 1)
PER_FORM = 40  # random vectors per (op, width, size, offset, signed)


@dataclass(frozen=True)
class Vector:
    code: int
    valid: bool
    w32: bool = False
    signed: bool = False
    size: int = 8
    offset: int = 0
    sel: bool = False
    a: int = 0
    b: int = 0
    expected: int | None = None  # None: out_valid must be 0
    name: str = ""


class AluTB(TB):
    def __init__(self, dut) -> None:
        super().__init__(dut)
        for sig in ("in_valid", "opcode", "w32", "sgn", "size", "offset", "sel", "a", "b"):
            getattr(dut, sig).value = 0

    def drive(self, v: Vector) -> None:
        d = self.dut
        d.in_valid.value = int(v.valid)
        d.opcode.value = v.code
        d.w32.value = int(v.w32)
        d.sgn.value = int(v.signed)
        d.size.value = O.SIZE_CODES[v.size]
        d.offset.value = v.offset
        d.sel.value = int(v.sel)
        d.a.value = v.a
        d.b.value = v.b

    def operand(self) -> int:
        r = self.rng.random()
        if r < 0.25:
            return self.rng.choice(EDGES)
        if r < 0.5:
            return self.rng.randrange(0, 64)
        if r < 0.6:
            return O.M64 - self.rng.randrange(0, 64)
        return self.rng.getrandbits(64)


def forms():
    """(op, width, size, offset, signed) for every ALU op as ops.py allows them."""
    for op in O.VLIW_OPS:
        if op.kind != "alu":
            continue
        for width in op.widths:
            sizes = O.sext_sizes(width) if op.name == "sext" else (op.sizes or (8,))
            for size in sizes:
                offsets = range(0, 9 - size) if op.uses_offset else (0,)
                for offset in offsets:
                    for signed in ((False, True) if op.signed_ok else (False,)):
                        yield op, width, size, offset, signed


def vectors(tb: AluTB) -> list[Vector]:
    out = []
    for op, width, size, offset, signed in forms():
        for _ in range(PER_FORM):
            a, b = tb.operand(), tb.operand()
            if op.name in ("lsh", "rsh", "arsh") and tb.rng.random() < 0.5:
                b = tb.rng.randrange(0, 128)  # amounts past the width are masked
            sel = tb.rng.random() < 0.5
            valid = tb.rng.random() < 0.9
            assert op.fn is not None
            exp = op.fn(O.OpInput(a=a, b=b, width=width, size=size, offset=offset,
                                  signed=signed, sel=sel))
            out.append(Vector(op.code, valid, width == 32, signed, size, offset, sel, a, b,
                              exp if valid else None,
                              f"{op.name}{width} size {size} offset {offset} signed {signed}"))
    for code in [0, *range(22, 64)]:  # not ALU ops: never write
        out.append(Vector(code, True, a=tb.operand(), b=tb.operand(), name=f"code {code}"))
    tb.rng.shuffle(out)
    return out


@cocotb.test()
async def test_alu_ops(dut):
    """Every ALU op and width against ops.py, one vector per clock."""
    tb = AluTB(dut)
    await tb.reset()
    vecs = vectors(tb)
    tb.log.info("%d vectors (seed %d)", len(vecs), tb.seed)
    await FallingEdge(tb.clk)
    checked = 0
    for v in vecs:
        tb.drive(v)  # between edges; the ALU registers its result at the next edge
        await RisingEdge(tb.clk)
        await ReadOnly()
        ctx = dict(op=v.name, a=hex(v.a), b=hex(v.b), sel=v.sel)
        tb.check("out_valid", int(dut.out_valid.value), int(v.expected is not None), **ctx)
        if v.expected is not None:
            tb.check("result", int(dut.out_result.value), v.expected, **ctx)
            checked += 1
        await FallingEdge(tb.clk)
    tb.log.info("%d results checked", checked)


def run(workdir=None) -> None:
    """Build the ALU with every capability and run this module (pytest entry)."""
    from rtl_models.runner import run_testbench

    run_testbench("pipe_alu", parameters={"MUL_MAX_BITS": 64, "DIV": "full"})
