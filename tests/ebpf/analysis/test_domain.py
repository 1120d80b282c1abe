"""Tnum and range arithmetic checked against brute force over small domains."""

from __future__ import annotations

import itertools
import random

import pytest

from ebpf.analysis.domain import (
    M64,
    Scalar,
    alu,
    endian,
    refine,
    s64,
    sext,
    tn_max_le,
    tn_min_ge,
    trunc,
)
from ebpf.code.isa import AluOp
from ebpf.vm.alu import ALU32_OPS, ALU64_OPS, JMP32_OPS, JMP64_OPS

RNG = random.Random(7)
SMALL = list(range(16))
NEGATIVE = [M64 - i for i in range(4)]  # -1 .. -4


def abstract(values) -> Scalar:
    out = None
    for v in values:
        c = Scalar.const(v)
        out = c if out is None else out.join(c)
    return out


def samples(n: int = 40) -> list[Scalar]:
    """Abstractions of random small sets, some of negative numbers, some ranges."""
    out = [Scalar.const(0), Scalar.const(5), Scalar.urange(3, 9), Scalar.srange(-3, 2)]
    for _ in range(n):
        pool = NEGATIVE if RNG.random() < 0.2 else SMALL
        out.append(abstract(RNG.sample(pool, RNG.randint(1, min(4, len(pool))))))
    return out


def gamma(s: Scalar) -> list[int]:
    vals = s.values(64)
    assert vals is not None, s
    return vals


SCALARS = samples()
OPS = [AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV, AluOp.MOD, AluOp.OR, AluOp.AND,
       AluOp.XOR, AluOp.LSH, AluOp.RSH, AluOp.ARSH]


@pytest.mark.parametrize("is64", [True, False], ids=["alu64", "alu32"])
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name.lower())
def test_alu_is_sound(op, is64):
    """Every concrete result of op on members of A and B is a member of alu(op, A, B)."""
    table = ALU64_OPS if is64 else ALU32_OPS
    for a, b in itertools.product(SCALARS, repeat=2):
        if op in (AluOp.LSH, AluOp.RSH, AluOp.ARSH) and b.umax > 70:
            continue
        got = alu(op, a, b, is64=is64)
        for x in gamma(a):
            for y in gamma(b):
                want = table[(op, 0)](x, y)
                assert got.contains(want), (op, a, b, x, y, want, got)


def test_signed_division_and_movsx_are_sound():
    """sdiv / smod (off 1) and movsx (off 8/16/32) contain every concrete result."""
    for (op, off), a, b in itertools.product([(AluOp.DIV, 1), (AluOp.MOD, 1), (AluOp.MOV, 8),
                                              (AluOp.MOV, 16), (AluOp.MOV, 32)],
                                             SCALARS[:15], SCALARS[:15]):
        got = alu(op, a, b, off=off)
        for x in gamma(a):
            for y in gamma(b):
                assert got.contains(ALU64_OPS[(op, off)](x, y))


def test_constants_fold_exactly():
    """Two constants give the VM's exact result, division by zero included."""
    assert alu(AluOp.DIV, Scalar.const(7), Scalar.const(0)) == Scalar.const(0)
    assert alu(AluOp.MOD, Scalar.const(7), Scalar.const(0), is64=False) == Scalar.const(7)
    assert alu(AluOp.SUB, Scalar.const(0), Scalar.const(1), is64=False) == Scalar.const(2**32 - 1)
    assert alu(AluOp.LSH, Scalar.const(1), Scalar.const(65)) == Scalar.const(2)


def test_precision_of_common_idioms():
    """ihl * 4 after a byte load is 0..60 in steps of 4; masks and shifts keep known bits."""
    byte = Scalar.urange(0, 255)
    hdr = alu(AluOp.AND, alu(AluOp.LSH, byte, Scalar.const(2), is64=False), Scalar.const(60))
    assert (hdr.umin, hdr.umax, hdr.value, hdr.mask) == (0, 60, 0, 60)
    assert hdr.values(8) is None and len(hdr.values(16)) == 16
    assert alu(AluOp.ADD, Scalar.const(14), hdr).umax == 74
    assert alu(AluOp.RSH, byte, Scalar.const(4)).umax == 15


@pytest.mark.parametrize("is64", [True, False], ids=["jmp", "jmp32"])
def test_refine_is_sound(is64):
    """Pairs where the comparison holds survive refine, and refine says None only if none do."""
    rels = {"eq": "JEQ", "ne": "JNE", "ugt": "JGT", "uge": "JGE", "ult": "JLT", "ule": "JLE",
            "sgt": "JSGT", "sge": "JSGE", "slt": "JSLT", "sle": "JSLE", "set": "JSET"}
    from ebpf.code.isa import JmpOp

    table = JMP64_OPS if is64 else JMP32_OPS
    mask = M64 if is64 else 2**32 - 1
    for rel, name in rels.items():
        cmp = table[JmpOp[name]]
        for a, b in itertools.product(SCALARS[:25], repeat=2):
            if not is64 and (a.umax > 2**31 - 1 or b.umax > 2**31 - 1):
                continue
            got = refine(rel, a, b)
            holds = [(x, y) for x in gamma(a) for y in gamma(b) if cmp(x & mask, y & mask)]
            if not holds:
                continue
            assert got is not None, (rel, a, b)
            for x, y in holds:
                assert got[0].contains(x) and got[1].contains(y), (rel, a, b, x, y, got)


def test_refine_narrows_bounds_checks():
    """x < 20 false leaves 20..60; x == 7 leaves the constant; nset clears bits."""
    x = Scalar.urange(0, 60)
    assert refine("uge", x, Scalar.const(20))[0].umin == 20
    assert refine("eq", x, Scalar.const(7))[0] == Scalar.const(7)
    assert refine("ugt", Scalar.const(3), Scalar.const(5)) is None
    assert refine("nset", Scalar.urange(0, 7), Scalar.const(1))[0].values() == [0, 2, 4, 6]


def test_lattice_operations():
    """join and widen contain both sides; meet keeps the common members."""
    for a, b in itertools.product(SCALARS[:20], repeat=2):
        j, w = a.join(b), a.widen(b)
        m = a.meet(b)
        for x in gamma(a) + gamma(b):
            assert j.contains(x) and w.contains(x)
        common = set(gamma(a)) & set(gamma(b))
        assert (m is None and not common) or all(m.contains(x) for x in common)


def test_widen_reaches_a_fixpoint_quickly():
    """A counter growing by 2 stops after one widening, keeping its parity."""
    w = Scalar.make(0, 2, 0, 2).widen(Scalar.make(0, 6, 0, 6))
    assert w.umax >= 2**62 and not w.contains(3) and w.contains(1000)


def test_tnum_bound_search_brute_force():
    """tn_max_le / tn_min_ge find the nearest member of a tnum on every small case."""
    for v, m in [(0, 62), (2, 28), (1, 6), (8, 7), (0, 0), (5, 0)]:
        members = [y for y in range(128) if y & ~m == v]
        for x in range(100):
            le = [y for y in members if y <= x]
            ge = [y for y in members if y >= x]
            assert tn_max_le(v, m, x) == (max(le) if le else None)
            assert tn_min_ge(v, m, x) == (min(ge) if ge else None)


def test_truncation_sign_extension_and_byte_swap():
    """trunc, sext and bswap of a set contain the image of every member."""
    for a in SCALARS:
        for x in gamma(a):
            assert trunc(a, 8).contains(x & 0xFF)
            assert sext(a, 8).contains(s64((x & 0xFF) - (0x100 if x & 0x80 else 0)))
            assert endian(a, True, 16).contains(int.from_bytes((x & 0xFFFF).to_bytes(2, "little"),
                                                               "big"))
    assert endian(Scalar.const(0x0800), True, 16) == Scalar.const(0x0008)
