"""ALU instructions in the translation: folding, pointer arithmetic, byte shuffles, ops.

Constants fold with the VM's own operation tables (``ebpf.vm.alu.ALU64_OPS`` / ``ALU32_OPS``),
so folded results are the kernel's. Additions of constants or scalars to packet, map-value
and stack pointers fold into the pointer (``Pkt`` keeps the variable part in a container and
the constant apart, for the window op's offset field). Shifts by whole bytes, ORs of
disjoint bytes and byte masks have exact byte views (``offload.lower.state``): when the
result is a parser extract or a slice of a container, no op runs. Everything else is one
VLIW op into a new container, speculated (guard TRUE). Multiplication wider than the
target's multiplier and division without a divider (other than by powers of two) are
lowering reasons.
"""

from __future__ import annotations

from typing import Any

from ebpf.analysis.dataflow import Region
from ebpf.code.isa import AluOp, Kind, Source
from ebpf.vm.alu import ALU32_OPS, ALU64_OPS
from offload.lower.ir import (
    DATA_LEN,
    M32,
    M64,
    TRUE,
    Const,
    Ctx,
    MapPtr,
    MapVal,
    Pkt,
    PktEnd,
    Stack,
    Val,
    Value,
)
from offload.lower.state import Low32, Phi, State, canonical, shuffle, view_of

_ALU_NAMES = {AluOp.ADD: "add", AluOp.SUB: "sub", AluOp.MUL: "mul", AluOp.OR: "or",
              AluOp.AND: "and", AluOp.LSH: "lsh", AluOp.RSH: "rsh", AluOp.ARSH: "arsh",
              AluOp.XOR: "xor", AluOp.DIV: "div", AluOp.MOD: "mod"}


class AluMixin:
    """The ALU part of ``offload.lower.translate.Translator``."""

    an: Any
    dag: Any
    params: Any
    base_rel: dict

    def _alu(self, n: int, st: State, slot: int, insn: Any) -> Any:
        spec = insn.spec
        is64 = spec.is64
        width = 64 if is64 else 32
        d = self.reg(st, insn.dst, n, slot)
        if spec.kind in (Kind.ENDIAN, Kind.BSWAP):
            to_be = spec.kind is Kind.BSWAP or bool(spec.opcode & 0x08)
            size = insn.imm // 8
            d = self.scalar(d, n, slot)
            if isinstance(d, Const):
                v = d.value & ((1 << insn.imm) - 1)
                return Const(int.from_bytes(v.to_bytes(size, "little"), "big") if to_be else v)
            if not to_be:
                if isinstance(d, Val) and d.bits <= insn.imm:
                    return d
                if isinstance(d, Val) and d.off == 0 and size in (1, 2, 4, 8):
                    return Val(d.src, 0, min(size, d.size))
            a = self.src_of(d, n, slot, insn.imm)
            return Val(self.alu(n, slot, TRUE, "be" if to_be else "le", a=a, size=size,
                                bits=insn.imm).dst)
        if spec.kind is Kind.NEG:
            d = self.scalar(d, n, slot)
            if isinstance(d, Const):
                return Const(-d.value & (M64 if is64 else M32))
            a = self.src_of(d, n, slot, width)
            return Val(self.alu(n, slot, TRUE, "neg", a=a, width=width).dst)
        op = AluOp(spec.op)
        off = insn.off if op in (AluOp.DIV, AluOp.MOD, AluOp.MOV) else 0
        s = self.reg(st, insn.src, n, slot) if spec.source is Source.X else \
            Const(insn.imm & (M64 if is64 else M32))
        if op is AluOp.MOV:
            return self._mov(n, slot, s, is64, off)
        if not is64:
            d = d.ptr if isinstance(d, Low32) else d
            s = s.ptr if isinstance(s, Low32) else s
        if op in (AluOp.ADD, AluOp.SUB) and (is64 or _pointerish(d) or _pointerish(s)
                                             or isinstance(d, PktEnd)):
            self._ranges = (self._scalar_range(n, slot, insn.dst),
                            self._scalar_range(n, slot, insn.src)
                            if spec.source is Source.X else None)
            ptr = self._pointer_math(n, slot, op, d, s, width, st)
            if ptr is not None:
                if not is64 and isinstance(ptr, (Pkt, PktEnd)):
                    return Low32(ptr)
                if not is64 and not isinstance(ptr, (Const, Val)):
                    raise self.unsupported(slot, "32-bit arithmetic on a pointer")
                if not is64 and isinstance(ptr, Const):
                    return Const(ptr.value & M32)
                return ptr
        d, s = self.scalar(d, n, slot), self.scalar(s, n, slot)
        for x in (d, s):
            if not isinstance(x, (Const, Val)):
                raise self.unsupported(slot, f"ALU operation on {_describe(x)}")
        table = ALU64_OPS if is64 else ALU32_OPS
        if isinstance(d, Const) and isinstance(s, Const):
            fn = table.get((op, off))
            if fn is None:
                raise self.unsupported(slot, f"ALU operation {op.name}")
            return Const(fn(d.value, s.value))
        return self._scalar_op(n, slot, op, off, d, s, width)

    def _mov(self, n: int, slot: int, s: Any, is64: bool, off: int) -> Any:
        if off:  # movsx
            s = self.scalar(s, n, slot)
            if isinstance(s, Const):
                return Const((ALU64_OPS if is64 else ALU32_OPS)[(AluOp.MOV, off)](0, s.value))
            a = self.src_of(s, n, slot, off)
            return Val(self.alu(n, slot, TRUE, "sext", a=a, size=off // 8,
                                width=64 if is64 else 32).dst)
        if is64:
            return s
        if _pointerish(s) or isinstance(s, PktEnd):
            return Low32(self.pointer(s, slot))  # (u32)ptr: only its differences are used
        s = self.scalar(s, n, slot)
        if isinstance(s, Const):
            return Const(s.value & M32)
        if isinstance(s, Val):
            if s.bits <= 32:
                return s
            if s.off + 4 <= 8:
                return Val(s.src, s.off, min(4, s.size))
        raise self.unsupported(slot, f"32-bit move of {_describe(s)}")

    def _pointer_math(self, n: int, slot: int, op: AluOp, d: Any, s: Any,
                      width: int = 64, st: State | None = None) -> Any:
        d, s = self.pointer(d, slot), self.pointer(s, slot)
        sign = 1 if op is AluOp.ADD else -1
        if isinstance(d, Pkt) and isinstance(s, Pkt) and op is AluOp.SUB:
            if d.base is s.base:
                return Const(d.k - s.k)
            a = self.src_of(d, n, slot)
            b = self.src_of(s, n, slot)
            return Val(self.alu(n, slot, TRUE, "sub", a=a, b=b, width=width).dst)
        if isinstance(d, PktEnd) and isinstance(s, Pkt) and op is AluOp.SUB:
            b, imm = self.operand_b(Const(s.k) if s.base is None else s, n, slot)
            v = self.alu(n, slot, TRUE, "sub", a=DATA_LEN, b=b, imm=imm, width=width)
            # after the adjusts on the path (a grown tail is in data_len from the next stage)
            self.he_read(v, n, st)
            return Val(v.dst)
        rng = self._ranges[1] if hasattr(self, "_ranges") else None
        if isinstance(s, (Pkt, MapVal, Stack)) and op is AluOp.ADD and not isinstance(
                d, (Pkt, MapVal, Stack, PktEnd, Ctx, MapPtr)):
            d, s = s, d
            rng = self._ranges[0] if hasattr(self, "_ranges") else None
        if isinstance(d, (MapVal, Stack)) and isinstance(s, Const):
            from dataclasses import replace
            return replace(d, off=d.off + sign * _signed(s.value))
        if isinstance(d, Pkt):
            s = self.scalar(s, n, slot)
            if isinstance(s, Const):
                return Pkt(d.base, d.k + sign * _signed(s.value))
            if not isinstance(s, Val):
                raise self.unsupported(slot, f"packet pointer plus {_describe(s)}")
            if op is AluOp.SUB:
                neg = self.alu(n, slot, TRUE, "neg", a=self.src_of(s, n, slot)).dst
                s, rng = Val(neg), None
            if d.base is None:
                base = self.src_of(s, n, slot)
                if rng is not None and isinstance(base, Value):
                    self.base_rel.setdefault(base.id, (None, rng[0], rng[1]))
                return Pkt(base, d.k)
            v = self.alu(n, slot, TRUE, "add", a=d.base, b=self.src_of(s, n, slot)).dst
            if rng is not None:
                self.base_rel[v.id] = (d.base, rng[0], rng[1])
            return Pkt(v, d.k)
        if isinstance(d, (PktEnd, Ctx, MapPtr, MapVal, Stack)):
            raise self.unsupported(slot, f"arithmetic on {_describe(d)}")
        return None

    def _scalar_range(self, n: int, slot: int, r: int) -> tuple[int, int] | None:
        """The analysis' unsigned range of scalar register ``r`` before ``slot``."""
        a = self.an.state_before(slot, self.dag.nodes[n].cs)
        if a is None:
            return None
        v = a.reg(r)
        if v.kind is not Region.SCALAR or v.num.umax > 1 << 16:
            return None
        return v.num.umin, v.num.umax

    def _scalar_op(self, n: int, slot: int, op: AluOp, off: int, d: Any, s: Any,
                   width: int) -> Any:
        p = self.params
        name = _ALU_NAMES.get(op)
        if name is None:
            raise self.unsupported(slot, f"ALU operation {op.name}")
        mask = M64 if width == 64 else M32
        if isinstance(s, Const):
            c = s.value & mask
            if c == 0 and op in (AluOp.ADD, AluOp.SUB, AluOp.OR, AluOp.XOR, AluOp.LSH,
                                 AluOp.RSH, AluOp.ARSH) and (width == 64 or d.bits <= 32):
                return d
            if op is AluOp.AND and c == mask and (width == 64 or d.bits <= 32):
                return d
        if op is AluOp.MUL:
            pw = _pow2(s) if isinstance(s, Const) else None
            if pw is None and isinstance(d, Const):
                pw, d, s = _pow2(d), s, d
            if pw is not None:
                name, s = "lsh", Const(pw)
            elif width > p.mul_max_bits:
                raise self.unsupported(slot, f"{width}-bit multiplication; {p.target} "
                                             f"multiplies {p.mul_max_bits}-bit values",
                                       "multiply by a power of two, or keep the product in a "
                                       "map")
        if op in (AluOp.DIV, AluOp.MOD):
            pw = _pow2(s) if isinstance(s, Const) and not off else None
            if pw is not None:
                name, s = ("rsh", Const(pw)) if op is AluOp.DIV else ("and", Const(s.value - 1))
            elif off and p.div == "full":
                name = "sdiv" if op is AluOp.DIV else "smod"
            elif p.div == "none" or (p.div == "constant" and not isinstance(s, Const)) or off:
                what = "division" if op is AluOp.DIV else "modulo"
                has = "no" if p.div == "none" else "a " + p.div
                raise self.unsupported(slot, f"{width}-bit {what}; {p.target} has {has} "
                                             f"divider", "use a power-of-two divisor")
        view = None
        if name in ("lsh", "rsh", "and", "or"):
            va = view_of(d)
            vb = s if isinstance(s, Const) else view_of(s)
            if va is not None and vb is not None:
                view = shuffle(name, width, va, vb)
            if view is None and name == "or" and isinstance(d, Const):
                vs = view_of(s)
                if vs is not None:
                    view = shuffle(name, width, vs, d)
            if view is not None:
                sym = canonical(view, lambda x, k: self.extract(x, k, slot),
                                self.params.window_bytes)
                if sym is not None:
                    return sym
        a = self.src_of(d, n, slot, width)
        b, imm = self.operand_b(s, n, slot, width)
        bits = _result_bits(name, d, s, width)
        v = self.alu(n, slot, TRUE, name, a=a, b=b, imm=imm, width=width, bits=bits).dst
        v.view = view
        return Val(v)


def _pointerish(sym: Any) -> bool:
    return isinstance(sym, (Pkt, PktEnd, MapVal, Stack)) or (
        isinstance(sym, Phi) and any(isinstance(x, Pkt) for _, x in sym.leaves()))

def _pow2(c: Const) -> int | None:
    v = c.value
    return v.bit_length() - 1 if v and not v & (v - 1) else None

def _signed(v: int) -> int:
    v &= M64
    return v - (1 << 64) if v >> 63 else v

def _result_bits(op: str, a: Any, b: Any, width: int) -> int:
    ab = a.bits if isinstance(a, Val) else max(1, a.value.bit_length())
    bb = b.bits if isinstance(b, Val) else max(1, b.value.bit_length())
    if op == "and":
        out = min(ab, bb)
    elif op in ("or", "xor"):
        out = max(ab, bb)
    elif op == "add":
        out = max(ab, bb) + 1
    elif op == "rsh" and isinstance(b, Const):
        out = max(1, ab - (b.value & (width - 1)))
    elif op == "lsh" and isinstance(b, Const):
        out = ab + (b.value & (width - 1))
    elif op == "mul":
        out = ab + bb
    elif op in ("div", "mod"):
        out = ab
    else:
        out = 64
    return min(out, width)


def _describe(sym: Any) -> str:
    return {Pkt: "a packet pointer", PktEnd: "data_end", Ctx: "the context pointer",
            MapPtr: "a map pointer", MapVal: "a map value pointer", Stack: "a stack pointer"
            }.get(type(sym), "a value the lowering does not follow")
