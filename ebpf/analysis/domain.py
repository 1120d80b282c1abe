"""The abstract domain: scalars (tnum and ranges), values, states and their joins.

Scalars as the kernel verifier tracks them: known bits (tnum) and unsigned/signed ranges.

A ``Scalar`` stands for a set of 64-bit values: those that agree with ``value`` on the bits
clear in ``mask`` (the tnum of kernel/bpf/tnum.c) and lie in ``[umin, umax]`` unsigned and
``[smin, smax]`` signed. ``Scalar.make`` keeps the four views in sync (the kernel's
__update_reg_bounds, __reg_deduce_bounds and __reg_bound_offset) and returns None for the
empty set, which is how a branch that cannot be taken shows.

``alu`` computes every eBPF ALU operation (64-bit, or 32-bit with the result zero-extended),
exactly on constants (with the reference VM's operation tables, ``ebpf.vm``) and soundly
otherwise. ``refine`` narrows two operands to the values where a comparison holds.
Soundness of both is tested against brute force over small domains.

``Val`` is what a register or stack slot holds, ``State`` a program point's registers,
frames and proven packet ranges; ``join_states`` is where paths meet (ebpf.analysis.
dataflow says how packet bases are renamed there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar

from ebpf.code.isa import AluOp
from ebpf.vm.alu import ALU32_OPS, ALU64_OPS

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
SIGN = 1 << 63
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1
# A comparison's negation, and the relation with the operands swapped (a R b == b SWAP[R] a).
NEGATE = {"eq": "ne", "ne": "eq", "ugt": "ule", "uge": "ult", "ult": "uge", "ule": "ugt",
          "sgt": "sle", "sge": "slt", "slt": "sge", "sle": "sgt", "set": "nset", "nset": "set"}
SWAP = {"eq": "eq", "ne": "ne", "ugt": "ult", "uge": "ule", "ult": "ugt", "ule": "uge",
        "sgt": "slt", "sge": "sle", "slt": "sgt", "sle": "sge", "set": "set", "nset": "nset"}


def s64(u: int) -> int:
    """An unsigned 64-bit value read as two's complement."""
    u &= M64
    return u - (1 << 64) if u & SIGN else u


# --- tnums: (value, mask) ----------------------------------------------------------------

def tn_range(lo: int, hi: int) -> tuple[int, int]:
    """The tnum of every value in [lo, hi] (unsigned)."""
    bits = (lo ^ hi).bit_length()
    if bits > 63:
        return 0, M64
    delta = (1 << bits) - 1
    return lo & ~delta, delta


def tn_max_le(v: int, m: int, x: int) -> int | None:
    """The largest value <= x that the tnum (v, m) allows, or None."""
    best = None
    prefix = 0
    for i in range(63, -1, -1):
        b = 1 << i
        xb = x & b
        if xb and (m & b or not v & b):
            best = prefix | ((v | m) & (b - 1))  # this bit 0 (below x), the rest as high as allowed
        if m & b or (v & b) == xb:
            prefix |= xb
        else:
            return best
    return prefix


def tn_min_ge(v: int, m: int, x: int) -> int | None:
    """The smallest value >= x that the tnum (v, m) allows, or None."""
    y = tn_max_le(~v & ~m & M64, m, ~x & M64)
    return None if y is None else ~y & M64


def tn_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    sm, sv = (a[1] + b[1]) & M64, (a[0] + b[0]) & M64
    chi = ((sm + sv) & M64) ^ sv
    mu = chi | a[1] | b[1]
    return sv & ~mu & M64, mu


def tn_sub(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    dv = (a[0] - b[0]) & M64
    chi = ((dv + a[1]) & M64) ^ ((dv - b[1]) & M64)
    mu = chi | a[1] | b[1]
    return dv & ~mu & M64, mu


def tn_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    acc_v = (a[0] * b[0]) & M64
    acc_m = (0, 0)
    while a[0] or a[1]:
        if a[0] & 1:
            acc_m = tn_add(acc_m, (0, b[1]))
        elif a[1] & 1:
            acc_m = tn_add(acc_m, (0, b[0] | b[1]))
        a = (a[0] >> 1, a[1] >> 1)
        b = ((b[0] << 1) & M64, (b[1] << 1) & M64)
    return tn_add((acc_v, 0), acc_m)


def _bswap(v: int, width: int) -> int:
    return int.from_bytes((v & ((1 << width) - 1)).to_bytes(width // 8, "little"), "big")


@dataclass(frozen=True, slots=True)
class Scalar:
    """A set of 64-bit values: known bits and unsigned / signed bounds."""

    value: int
    mask: int
    umin: int
    umax: int
    smin: int
    smax: int

    UNKNOWN: ClassVar[Scalar]

    @staticmethod
    def make(value: int = 0, mask: int = M64, umin: int = 0, umax: int = M64,
             smin: int = S64_MIN, smax: int = S64_MAX) -> Scalar | None:
        """The set these bounds describe, each view narrowed by the others; None if empty."""
        value &= M64 & ~mask
        for _ in range(6):
            before = (value, mask, umin, umax, smin, smax)
            umin, umax = max(umin, value), min(umax, value | mask)
            if umax & ~mask != value:
                umax = tn_max_le(value, mask, umax)  # type: ignore[assignment]
            if umin & ~mask != value and umax is not None:
                umin = tn_min_ge(value, mask, umin)  # type: ignore[assignment]
            if umin is None or umax is None:
                return None
            smin = max(smin, s64(value | (mask & SIGN)))
            smax = min(smax, s64(value | (mask & ~SIGN)))
            if umin > umax or smin > smax:
                return None
            if smin >= 0 or smax < 0:       # one side of zero: signed order = unsigned order
                umin, umax = max(umin, smin & M64), min(umax, smax & M64)
            if umax <= S64_MAX or umin > S64_MAX:
                smin, smax = max(smin, s64(umin)), min(smax, s64(umax))
            if umin > umax or smin > smax:
                return None
            rv, rm = tn_range(umin, umax)
            if (value ^ rv) & ~(mask | rm) & M64:
                return None
            mask &= rm
            value = (value | rv) & ~mask & M64
            if (value, mask, umin, umax, smin, smax) == before:
                break
        return Scalar(value, mask, umin, umax, smin, smax)

    @staticmethod
    def const(v: int) -> Scalar:
        v &= M64
        return Scalar(v, 0, v, v, s64(v), s64(v))

    @staticmethod
    def urange(lo: int, hi: int) -> Scalar:
        out = Scalar.make(umin=lo, umax=hi)
        assert out is not None, (lo, hi)
        return out

    @staticmethod
    def srange(lo: int, hi: int) -> Scalar:
        out = Scalar.make(smin=lo, smax=hi)
        assert out is not None, (lo, hi)
        return out

    @property
    def is_const(self) -> bool:
        return self.mask == 0

    @property
    def signed_value(self) -> int:
        return s64(self.value)

    def contains(self, x: int) -> bool:
        x &= M64
        return ((x & ~self.mask) == self.value and self.umin <= x <= self.umax
                and self.smin <= s64(x) <= self.smax)

    def values(self, limit: int = 16) -> list[int] | None:
        """Every value, when there are at most ``limit`` of them (else None)."""
        if self.umax - self.umin < 4 * limit:
            out = [x for x in range(self.umin, self.umax + 1) if self.contains(x)]
        elif self.smax - self.smin < 4 * limit:
            out = sorted(x & M64 for x in range(self.smin, self.smax + 1) if self.contains(x))
        elif self.mask.bit_count() <= 8:
            bits = [1 << i for i in range(64) if self.mask >> i & 1]
            out = sorted(x for x in (self.value | sum(b for j, b in enumerate(bits) if k >> j & 1)
                                     for k in range(1 << len(bits))) if self.contains(x))
        else:
            return None
        return out if len(out) <= limit else None

    def join(self, other: Scalar) -> Scalar:
        mu = self.mask | other.mask | (self.value ^ other.value)
        out = Scalar.make(self.value & ~mu, mu, min(self.umin, other.umin),
                          max(self.umax, other.umax), min(self.smin, other.smin),
                          max(self.smax, other.smax))
        assert out is not None
        return out

    def widen(self, other: Scalar) -> Scalar:
        """The join, with every bound that moved pushed to its extreme."""
        j = self.join(other)
        mask = j.mask
        if (j.umin, j.umax, j.smin, j.smax) != (self.umin, self.umax, self.smin, self.smax):
            low = (mask & -mask) or (1 << 63)   # keep the known bits below the lowest unknown
            mask |= M64 ^ (low - 1)
        out = Scalar.make(j.value & ~mask, mask, j.umin if j.umin >= self.umin else 0,
                          j.umax if j.umax <= self.umax else M64,
                          j.smin if j.smin >= self.smin else S64_MIN,
                          j.smax if j.smax <= self.smax else S64_MAX)
        assert out is not None
        return out

    def meet(self, other: Scalar) -> Scalar | None:
        if (self.value ^ other.value) & ~(self.mask | other.mask):
            return None
        mask = self.mask & other.mask
        return Scalar.make((self.value | other.value) & ~mask, mask,
                           max(self.umin, other.umin), min(self.umax, other.umax),
                           max(self.smin, other.smin), min(self.smax, other.smax))

    def with_bounds(self, **bounds: int) -> Scalar | None:
        fields = dict(value=self.value, mask=self.mask, umin=self.umin, umax=self.umax,
                      smin=self.smin, smax=self.smax)
        fields.update(bounds)
        return Scalar.make(**fields)

    def __str__(self) -> str:
        if self.is_const:
            return str(self.signed_value) if abs(self.signed_value) < 4096 else hex(self.value)
        if self == Scalar.UNKNOWN:
            return "?"
        if self.umax <= S64_MAX:
            return f"{self.umin}..{self.umax}"
        return f"s{self.smin}..{self.smax}" if self.smin > S64_MIN else f"?&{self.mask:#x}"


Scalar.UNKNOWN = Scalar(0, M64, 0, M64, S64_MIN, S64_MAX)


def trunc(a: Scalar, bits: int) -> Scalar:
    """The low ``bits`` of every value, zero-extended."""
    m = (1 << bits) - 1
    if a.umax <= m:
        return a
    if a.umin >> bits == a.umax >> bits:
        out = Scalar.make(a.value & m, a.mask & m, a.umin & m, a.umax & m)
    else:
        out = Scalar.make(a.value & m, a.mask & m, 0, m)
    assert out is not None
    return out


def sext(a: Scalar, bits: int) -> Scalar:
    """The low ``bits`` of every value, sign-extended to 64 bits."""
    a = trunc(a, bits)
    half = 1 << (bits - 1)
    ext = M64 ^ ((1 << bits) - 1)
    if a.umax < half:
        return a
    if a.umin >= half:
        out = Scalar.make(a.value | ext, a.mask, a.umin | ext, a.umax | ext)
    else:
        out = Scalar.make(a.value, a.mask | (ext if a.mask & half else 0), smin=-half,
                          smax=half - 1)
    assert out is not None
    return out


def endian(a: Scalar, to_be: bool, width: int) -> Scalar:
    """``le``/``be``/``bswap`` of ``width`` bits: truncation or an exact byte swap of the tnum."""
    a = trunc(a, width) if width < 64 else a
    if not to_be:
        return a
    out = Scalar.make(_bswap(a.value, width), _bswap(a.mask, width))
    assert out is not None
    return out


def _full(a: Scalar) -> Scalar | None:
    return Scalar.make(a.value, a.mask)


def _alu64(op: AluOp, a: Scalar, b: Scalar, shift_mask: int) -> Scalar | None:
    tn = (a.value, a.mask), (b.value, b.mask)
    if op is AluOp.ADD:
        v, m = tn_add(*tn)
        u = (a.umin + b.umin, a.umax + b.umax) if a.umax + b.umax <= M64 else (0, M64)
        s = (a.smin + b.smin, a.smax + b.smax)
        s = s if S64_MIN <= s[0] and s[1] <= S64_MAX else (S64_MIN, S64_MAX)
        return Scalar.make(v, m, *u, *s)
    if op is AluOp.SUB:
        v, m = tn_sub(*tn)
        u = (a.umin - b.umax, a.umax - b.umin) if a.umin >= b.umax else (0, M64)
        s = (a.smin - b.smax, a.smax - b.smin)
        s = s if S64_MIN <= s[0] and s[1] <= S64_MAX else (S64_MIN, S64_MAX)
        return Scalar.make(v, m, *u, *s)
    if op is AluOp.MUL:
        v, m = tn_mul(*tn)
        if a.umax * b.umax <= M64:
            return Scalar.make(v, m, a.umin * b.umin, a.umax * b.umax)
        return Scalar.make(v, m)
    if op is AluOp.AND:
        alpha, beta = a.value | a.mask, b.value | b.mask
        v = a.value & b.value
        return Scalar.make(v, alpha & beta & ~v, 0, min(a.umax, b.umax))
    if op is AluOp.OR:
        v = a.value | b.value
        return Scalar.make(v, (a.mask | b.mask) & ~v, max(a.umin, b.umin))
    if op is AluOp.XOR:
        mu = a.mask | b.mask
        return Scalar.make((a.value ^ b.value) & ~mu, mu)
    if op in (AluOp.LSH, AluOp.RSH, AluOp.ARSH):
        if not b.is_const:
            if op is AluOp.RSH and b.umax <= shift_mask:
                return Scalar.make(umin=a.umin >> b.umax, umax=a.umax >> b.umin)
            return Scalar.make() if op is not AluOp.RSH else Scalar.make(umax=a.umax)
        k = b.value & shift_mask
        if op is AluOp.LSH:
            v, m = (a.value << k) & M64, (a.mask << k) & M64
            if a.umax << k <= M64:
                return Scalar.make(v, m, a.umin << k, a.umax << k)
            return Scalar.make(v, m)
        if op is AluOp.RSH:
            return Scalar.make(a.value >> k, a.mask >> k, a.umin >> k, a.umax >> k)
        v, m = s64(a.value) >> k, s64(a.mask) >> k
        return Scalar.make(v & M64, m & M64, smin=a.smin >> k, smax=a.smax >> k)
    if op in (AluOp.DIV, AluOp.MOD):
        if b.is_const:
            c = b.value
            if op is AluOp.DIV:
                return Scalar.const(0) if c == 0 else Scalar.make(umin=a.umin // c,
                                                                  umax=a.umax // c)
            return a if c == 0 or a.umax < c else Scalar.make(umax=c - 1)
        if op is AluOp.DIV:
            return Scalar.make(umax=a.umax // b.umin) if b.umin else Scalar.make(umax=a.umax)
        return Scalar.make(umax=a.umax if b.umin == 0 else min(a.umax, b.umax - 1))
    return _full(a)


def alu(op: AluOp, a: Scalar, b: Scalar, *, is64: bool = True, off: int = 0) -> Scalar:
    """``a op b`` as ALU64 (``is64``) or ALU32 does it; ``off`` 1 = signed div/mod,
    8/16/32 on MOV = movsx. Division by zero follows the kernel (0, or ``a`` for mod).

    Every result is a superset of the concrete results; exact when both are constants.
    An operation with no possible result (cannot happen) raises AssertionError.
    """
    if a.is_const and b.is_const:
        fn = (ALU64_OPS if is64 else ALU32_OPS).get((op, off))
        if fn is not None:
            return Scalar.const(fn(a.value, b.value))
    if op is AluOp.MOV:
        out = sext(b, off) if off else b
        return out if is64 else trunc(out, 32)
    if off and op in (AluOp.DIV, AluOp.MOD):
        return Scalar.UNKNOWN if is64 else trunc(Scalar.UNKNOWN, 32)
    if is64:
        out = _alu64(op, a, b, 63)
    else:
        a32, b32 = trunc(a, 32), trunc(b, 32)
        if op is AluOp.ARSH:
            r = _alu64(op, sext(a32, 32), b32, 31)
        else:
            r = _alu64(op, a32, b32, 31)
        out = trunc(r, 32) if r is not None else None
    assert out is not None, (op, a, b)
    return out


def _exclude(a: Scalar, c: int) -> Scalar | None:
    """``a`` without the value ``c`` where that moves a bound."""
    umin, umax, smin, smax = a.umin, a.umax, a.smin, a.smax
    if umin == c:
        umin += 1
    if umax == c:
        umax -= 1
    if smin == s64(c):
        smin += 1
    if smax == s64(c):
        smax -= 1
    return a.with_bounds(umin=umin, umax=umax, smin=smin, smax=smax)


def refine(rel: str, a: Scalar, b: Scalar) -> tuple[Scalar, Scalar] | None:
    """(a, b) narrowed to the pairs where ``a rel b`` holds (64-bit); None: it never holds.

    ``rel``: eq ne ugt uge ult ule sgt sge slt sle set (a & b != 0) nset (a & b == 0).
    """
    if rel in ("ult", "ule", "slt", "sle"):
        out = refine(SWAP[rel], b, a)
        return None if out is None else (out[1], out[0])
    if rel == "eq":
        m = a.meet(b)
        return None if m is None else (m, m)
    if rel == "ne":
        if a.is_const and b.is_const:
            return None if a.value == b.value else (a, b)
        x = _exclude(a, b.value) if b.is_const else a
        y = _exclude(b, a.value) if a.is_const else b
        return None if x is None or y is None else (x, y)
    if rel in ("ugt", "uge"):
        step = rel == "ugt"
        if b.umin + step > M64 or a.umax < step:
            return None
        x = a.with_bounds(umin=max(a.umin, b.umin + step))
        y = b.with_bounds(umax=min(b.umax, a.umax - step))
    elif rel in ("sgt", "sge"):
        step = rel == "sgt"
        if b.smin + step > S64_MAX or a.smax - step < S64_MIN:
            return None
        x = a.with_bounds(smin=max(a.smin, b.smin + step))
        y = b.with_bounds(smax=min(b.smax, a.smax - step))
    elif rel == "set":
        if not (a.value | a.mask) & (b.value | b.mask):
            return None
        x, y = a, b
        if b.is_const and not a.value & b.value and b.value.bit_count() == 1:
            x = a.with_bounds(value=a.value | b.value, mask=a.mask & ~b.value)
    elif rel == "nset":
        if a.value & b.value:
            return None
        x, y = a, b
        if b.is_const:
            x = a.with_bounds(value=a.value & ~b.value, mask=a.mask & ~b.value)
    else:
        raise ValueError(f"unknown relation {rel!r}")
    return None if x is None or y is None else (x, y)


# --- values and states ------------------------------------------------------------------

DATA = "data"


class Region(StrEnum):
    """What a value is, or what memory an access touches."""

    NOT_INIT = "not_init"
    SCALAR = "scalar"
    CTX = "ctx"
    PACKET = "packet"
    PACKET_END = "packet_end"
    PACKET_META = "packet_meta"
    MAP_PTR = "map_ptr"
    MAP_VALUE = "map_value"
    STACK = "stack"
    FUNC = "func"
    UNKNOWN = "unknown"
    """A pointer or scalar, depending on the path; or memory the analysis cannot name."""


@dataclass(frozen=True, slots=True)
class Val:
    """A register or stack-slot value. Pointers: ``num`` + ``off`` is the offset in the region."""

    kind: Region
    num: Scalar = Scalar.UNKNOWN
    off: int = 0
    id: str | None = None
    map: int | None = None
    null: bool = False
    frame: int = 0
    """Stack pointers: 0 = the running function's frame, 1 = its caller's, ..."""

    @property
    def is_pointer(self) -> bool:
        return self.kind not in (Region.SCALAR, Region.NOT_INIT, Region.UNKNOWN)

    def offset(self) -> Scalar:
        return self.num if not self.off else alu(AluOp.ADD, self.num, Scalar.const(self.off))

    def __str__(self) -> str:
        if self.kind is Region.SCALAR:
            return str(self.num)
        extra = "".join(f" {k}={v}" for k, v in (("map", self.map), ("id", self.id),
                                                  ("frame", self.frame or None)) if v is not None)
        off = f"{self.num}" + (f"{self.off:+d}" if self.off else "")
        return f"{self.kind.value}{'?' if self.null else ''}[{off}]{extra}"


NOT_INIT = Val(Region.NOT_INIT)
UNKNOWN = Val(Region.SCALAR)


def scalar(num: Scalar) -> Val:
    return Val(Region.SCALAR, num)


def sized(size: int, signed: bool = False) -> Scalar:
    """A load of ``size`` bytes: zero-extended, or sign-extended (``ldxs*``)."""
    s = Scalar.urange(0, (1 << (8 * size)) - 1)
    return sext(s, 8 * size) if signed else s


Frame = tuple[tuple[tuple[int, int], Val], ...]


@dataclass(frozen=True)
class State:
    """Registers, the callers' saved r6-r9, the stack frames and the proven packet ranges."""

    regs: tuple[Val, ...]
    saved: tuple[tuple[Val, ...], ...] = ()
    frames: tuple[Frame, ...] = ((),)
    pkt: tuple[tuple[str, int], ...] = ((DATA, 0),)

    def reg(self, i: int) -> Val:
        return self.regs[i]

    def with_reg(self, i: int, v: Val) -> State:
        return replace(self, regs=self.regs[:i] + (v,) + self.regs[i + 1:])

    def proven(self, base: str | None) -> int:
        """Bytes after packet base ``base`` proven to lie before ``data_end``."""
        return dict(self.pkt).get(base or DATA, 0)

    def get_stack(self, frame: int, off: int, size: int) -> Val:
        """The value a load of ``size`` bytes at ``off`` of ``frame`` reads."""
        entries = dict(self.frames[frame]) if frame < len(self.frames) else {}
        v = entries.get((off, size))
        if v is not None:
            return v if v.kind is Region.SCALAR or size == 8 else scalar(sized(size))
        for (o, s), v in entries.items():
            if o <= off and off + size <= o + s and v.kind is Region.SCALAR and v.num.is_const:
                return scalar(Scalar.const((v.num.value >> (8 * (off - o)))
                                           & ((1 << (8 * size)) - 1)))
        return scalar(sized(size))

    def set_stack(self, frame: int, lo: int, hi: int, entry: tuple[int, int, Val] | None) -> State:
        """Forget what ``frame`` holds in [lo, hi), then store ``entry`` (off, size, value)."""
        if frame >= len(self.frames):
            return self
        kept = [(k, v) for k, v in self.frames[frame] if k[0] + k[1] <= lo or k[0] >= hi]
        if entry is not None:
            kept.append(((entry[0], entry[1]), entry[2]))
        frames = list(self.frames)
        frames[frame] = tuple(sorted(kept, key=lambda kv: kv[0]))
        return replace(self, frames=tuple(frames))

    def iter_values(self) -> Iterator[tuple[tuple, Val]]:
        """(location, value) of every register, saved register and stack entry."""
        for i, v in enumerate(self.regs):
            yield ("r", i), v
        for d, regs in enumerate(self.saved):
            for j, v in enumerate(regs):
                yield ("c", d, j), v
        for f, frame in enumerate(self.frames):
            for key, v in frame:
                yield ("s", f, key), v

    def map_values(self, fn: Callable[[Val], Val]) -> State:
        return replace(self, regs=tuple(fn(v) for v in self.regs),
                       saved=tuple(tuple(fn(v) for v in r) for r in self.saved),
                       frames=tuple(tuple((k, fn(v)) for k, v in f) for f in self.frames))

    def __str__(self) -> str:
        regs = " ".join(f"r{i}={v}" for i, v in enumerate(self.regs) if v.kind is not Region.NOT_INIT)
        stack = " ".join(f"fp{k[0]}/{k[1]}={v}" for k, v in self.frames[0])
        return f"{regs} | {stack} | pkt {dict(self.pkt)}"


def entry_state() -> State:
    """r1 = the XDP context, r10 = the frame pointer; nothing else initialised."""
    regs = [NOT_INIT] * 11
    regs[1] = Val(Region.CTX, Scalar.const(0))
    regs[10] = Val(Region.STACK, Scalar.const(0))
    return State(tuple(regs))


# --- joining ------------------------------------------------------------------------------

def _ids(st: State) -> set[str]:
    return {v.id for _, v in st.iter_values() if v.id is not None}


def _fresh(name: str, used: set[str]) -> str:
    k = 0
    out = name
    while out in used:
        k += 1
        out = f"{name}'{k}"
    used.add(out)
    return out


def join_states(a: State | None, b: State | None, at: int, widen: bool = False) -> State | None:
    """The least state (in this domain) above both; ``widen`` extrapolates ranges from ``a``."""
    if a is None or b is None:
        return a if b is None else b
    if a == b:
        return a
    va, vb = dict(a.iter_values()), dict(b.iter_values())
    def keeps(loc: tuple) -> bool:
        x, y = va[loc], vb[loc]
        return (x.id is not None and x.id == y.id and x.kind == y.kind and x.off == y.off
                and x.map == y.map and x.frame == y.frame)

    holders: dict[str, list[tuple]] = {}
    for side in (va, vb):
        for loc, v in side.items():
            if v.id is not None:
                holders.setdefault(v.id, []).append(loc)
    kept = {i for i, locs in holders.items() if all(loc in vb and loc in va and keeps(loc)
                                                     for loc in locs)}
    used = set(kept) | {DATA}
    pa, pb = dict(a.pkt), dict(b.pkt)
    pkt = {i: min(pa.get(i, 0), pb.get(i, 0)) for i in kept | {DATA}}
    comb = (lambda x, y: x.widen(y)) if widen else (lambda x, y: x.join(y))

    def one(loc: tuple) -> Val:
        x, y = va[loc], vb[loc]
        if x == y and (x.id is None or x.id in kept):
            return x
        if Region.NOT_INIT in (x.kind, y.kind):
            return NOT_INIT
        if x.kind is Region.SCALAR and y.kind is Region.SCALAR:
            return Val(Region.SCALAR, comb(x.num, y.num),
                       id=x.id if x.id == y.id and x.id in kept else None)
        zero = Scalar.const(0)
        if x.kind is Region.SCALAR and x.num == zero and y.is_pointer:
            x = replace(y, null=True, id=None)
        elif y.kind is Region.SCALAR and y.num == zero and x.is_pointer:
            y = replace(x, null=True, id=None)
        if x.kind != y.kind or not x.is_pointer or x.frame != y.frame:
            return UNKNOWN
        name = f"j{at}.{'.'.join(map(str, loc))}"
        null = x.null or y.null
        if x.kind is Region.PACKET:
            if x.id in kept and x.off == y.off:
                return replace(x, num=comb(x.num, y.num), null=null)
            new = _fresh(name, used)
            pkt[new] = min(max(0, pa.get(x.id or DATA, 0) - x.off) if x.id else 0,
                           max(0, pb.get(y.id or DATA, 0) - y.off) if y.id else 0)
            return Val(Region.PACKET, comb(x.offset(), y.offset()), 0, new, null=null)
        ident = x.id if x.id in kept else (_fresh(name, used) if null else None)
        return Val(x.kind, comb(x.num, y.num), 0, ident, x.map if x.map == y.map else None,
                   null, x.frame)

    regs = tuple(one(("r", i)) for i in range(len(a.regs)))
    saved = tuple(tuple(one(("c", d, j)) for j in range(len(a.saved[d])))
                  for d in range(min(len(a.saved), len(b.saved))))
    frames = tuple(tuple((k, one(("s", f, k))) for k, _ in a.frames[f] if ("s", f, k) in vb)
                   for f in range(min(len(a.frames), len(b.frames))))
    out = State(regs, saved, frames, ())
    live = _ids(out) | {DATA}
    return replace(out, pkt=tuple(sorted((i, n) for i, n in pkt.items() if i in live)))


def _retire(st: State, ident: str, scalar_id: bool = False) -> State:
    """Before ``ident`` names a new value, give its current holders another name."""
    if ident not in _ids(st):
        return st
    if scalar_id:
        return st.map_values(lambda v: replace(v, id=None) if v.id == ident else v)
    other = _fresh(ident, _ids(st))
    pkt = tuple(sorted((other if i == ident else i, n) for i, n in st.pkt))
    return replace(st.map_values(lambda v: replace(v, id=other) if v.id == ident else v), pkt=pkt)


def _narrow(st: State, reg: int, old: Val, num: Scalar) -> State:
    """Give register ``reg`` (and every copy of it, by id) the narrowed value ``num``."""
    if old.id is None:
        return st.with_reg(reg, replace(old, num=num))
    return st.map_values(lambda v: replace(v, num=num) if v.id == old.id else v)
