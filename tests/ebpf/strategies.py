"""Hypothesis strategies for eBPF instructions, built from ``ebpf.code.isa.OPCODES``.

Each opcode's strategy is chosen by its ``Kind``: the fields that kind uses are drawn from
their full range, the reserved ones stay zero, and enumerated fields (ALU ``off``, END
width, atomic op, call kind, ``lddw`` pseudo source) take only the values ``isa.validate``
accepts. ``valid_insns()`` therefore yields instructions ``validate`` passes, for every
opcode in the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import partial

from hypothesis import strategies as st

from ebpf.code.isa import (
    ATOMIC_IMMS,
    LDDW_OPCODE,
    NUM_REGS,
    OPCODES,
    CallKind,
    Insn,
    InsnClass,
    Kind,
    OpSpec,
    PseudoSrc,
    Source,
    validate,
)
from ebpf.errors import IsaError

REGS = st.integers(0, NUM_REGS - 1)
S16 = st.integers(-(1 << 15), (1 << 15) - 1)
S32 = st.integers(-(1 << 31), (1 << 31) - 1)


def _accepted(spec: OpSpec, field: str, candidates: Iterable[int]) -> list[int]:
    """The candidates ``validate`` takes for ``field`` of ``spec``'s opcode (others zero)."""
    out = []
    for value in candidates:
        try:
            validate(replace(Insn(spec.opcode), **{field: int(value)}))
        except IsaError:
            continue
        out.append(int(value))
    assert out, (hex(spec.opcode), field)
    return out


def _for_spec(spec: OpSpec) -> st.SearchStrategy[Insn]:
    """Valid instructions of one opcode, by the fields its Kind uses."""
    make = partial(st.builds, partial(Insn, spec.opcode))
    kind = spec.kind
    if kind is Kind.ALU:
        offs = st.sampled_from(_accepted(spec, "off", (0, 1, 8, 16, 32)))
        if spec.source is Source.K:
            return make(dst=REGS, off=offs, imm=S32)
        return make(dst=REGS, src=REGS, off=offs)
    if kind is Kind.NEG:
        return make(dst=REGS)
    if kind in (Kind.ENDIAN, Kind.BSWAP):
        return make(dst=REGS, imm=st.sampled_from(_accepted(spec, "imm", (16, 32, 64))))
    if kind is Kind.JA:
        return make(off=S16) if spec.cls is InsnClass.JMP else make(imm=S32)
    if kind is Kind.JCOND:
        if spec.source is Source.K:
            return make(dst=REGS, off=S16, imm=S32)
        return make(dst=REGS, src=REGS, off=S16)
    if kind is Kind.CALL:
        return make(src=st.sampled_from([int(k) for k in CallKind]), imm=S32)
    if kind is Kind.EXIT:
        return make()
    if kind is Kind.LDDW:
        return make(dst=REGS, src=st.sampled_from([int(p) for p in PseudoSrc]), imm=S32,
                    next_imm=S32)
    if kind is Kind.LD_ABS:
        return make(imm=S32)
    if kind is Kind.LD_IND:
        return make(src=REGS, imm=S32)
    if kind in (Kind.LDX, Kind.LDXSX):
        return make(dst=REGS, src=REGS, off=S16)
    if kind is Kind.ST:
        return make(dst=REGS, off=S16, imm=S32)
    if kind is Kind.STX:
        return make(dst=REGS, src=REGS, off=S16)
    if kind is Kind.ATOMIC:
        return make(dst=REGS, src=REGS, off=S16, imm=st.sampled_from(sorted(ATOMIC_IMMS)))
    raise AssertionError(f"no strategy for {kind}")


_BY_OPCODE = {opcode: _for_spec(spec) for opcode, spec in OPCODES.items()}


def valid_insns(opcode: int | None = None) -> st.SearchStrategy[Insn]:
    """One instruction ``isa.validate`` accepts: of ``opcode``, or of any opcode in OPCODES."""
    if opcode is not None:
        return _BY_OPCODE[opcode]
    return st.sampled_from(sorted(_BY_OPCODE)).flatmap(_BY_OPCODE.__getitem__)


def insn_streams(max_size: int = 24) -> st.SearchStrategy[list[Insn]]:
    """Lists of valid instructions (jump targets are not checked: that is the verifier's job)."""
    return st.lists(valid_insns(), max_size=max_size)


def raw_insns() -> st.SearchStrategy[Insn]:
    """Any opcode from OPCODES with arbitrary field values, most of them invalid."""
    return st.builds(
        Insn,
        st.sampled_from(sorted(OPCODES)),
        dst=st.integers(0, 15),
        src=st.integers(0, 15),
        off=st.one_of(st.integers(-2, 64), S16),
        imm=st.one_of(st.integers(-2, 256), S32),
    ).map(lambda insn: replace(insn, next_imm=0) if insn.opcode == LDDW_OPCODE else insn)
