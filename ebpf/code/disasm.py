"""Disassembly in llvm-objdump's syntax (`r1 += 5`, `if w1 == w2 goto +3`, `call 1`).

The text for instructions LLVM 14 knows matches `llvm-objdump -d` byte for byte (after
whitespace normalisation); the v4 additions (sdiv, movsx, bswap, gotol, sign-extending
loads, store immediate) use the spelling of later LLVM releases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ebpf.code.isa import (
    SIZE_BYTES,
    AluOp,
    AtomicOp,
    CallKind,
    Endian,
    Insn,
    InsnClass,
    JmpOp,
    Kind,
    PseudoSrc,
    Size,
    Source,
    slot_offsets,
)

ALU_OPERATORS = {
    AluOp.ADD: "+=", AluOp.SUB: "-=", AluOp.MUL: "*=", AluOp.DIV: "/=", AluOp.OR: "|=",
    AluOp.AND: "&=", AluOp.LSH: "<<=", AluOp.RSH: ">>=", AluOp.MOD: "%=", AluOp.XOR: "^=",
    AluOp.MOV: "=", AluOp.ARSH: "s>>=",
}
JMP_OPERATORS = {
    JmpOp.JEQ: "==", JmpOp.JGT: ">", JmpOp.JGE: ">=", JmpOp.JSET: "&", JmpOp.JNE: "!=",
    JmpOp.JSGT: "s>", JmpOp.JSGE: "s>=", JmpOp.JLT: "<", JmpOp.JLE: "<=", JmpOp.JSLT: "s<",
    JmpOp.JSLE: "s<=",
}
ATOMIC_OPERATORS = {AtomicOp.ADD: "+=", AtomicOp.OR: "|=", AtomicOp.AND: "&=",
                    AtomicOp.XOR: "^="}
SIZE_NAMES = {Size.B: "u8", Size.H: "u16", Size.W: "u32", Size.DW: "u64"}


def _reg(n: int, is64: bool) -> str:
    return f"{'r' if is64 else 'w'}{n}"


def _mem(base: int, off: int) -> str:
    return f"(r{base} {'-' if off < 0 else '+'} {abs(off)})"


def _jump(off: int) -> str:
    return f"{'-' if off < 0 else '+'}{abs(off)}"


def _alu(insn: Insn) -> str:
    spec = insn.spec
    is64 = spec.is64
    dst = _reg(insn.dst, is64)
    operand = _reg(insn.src, is64) if spec.source is Source.X else str(insn.imm)
    if spec.op in (AluOp.DIV, AluOp.MOD) and insn.off == 1:
        return f"{dst} s{ALU_OPERATORS[spec.op]} {operand}"
    if spec.op is AluOp.MOV and spec.source is Source.X and insn.off:
        return f"{dst} = (s{insn.off}){operand}"
    return f"{dst} {ALU_OPERATORS[spec.op]} {operand}"  # type: ignore[index]


def _neg(insn: Insn) -> str:
    reg = _reg(insn.dst, insn.spec.is64)
    return f"{reg} = -{reg}"


def _endian(insn: Insn) -> str:
    order = "be" if insn.opcode & Endian.TO_BE else "le"
    return f"r{insn.dst} = {order}{insn.imm} r{insn.dst}"


def _bswap(insn: Insn) -> str:
    return f"r{insn.dst} = bswap{insn.imm} r{insn.dst}"


def _ja(insn: Insn) -> str:
    if insn.spec.cls is InsnClass.JMP32:
        return f"gotol {_jump(insn.imm)}"
    return f"goto {_jump(insn.off)}"


def _jcond(insn: Insn) -> str:
    spec = insn.spec
    is64 = spec.is64
    operand = _reg(insn.src, is64) if spec.source is Source.X else str(insn.imm)
    op = JMP_OPERATORS[spec.op]  # type: ignore[index]
    return f"if {_reg(insn.dst, is64)} {op} {operand} goto {_jump(insn.off)}"


def _call(insn: Insn) -> str:
    # llvm-objdump prints the raw immediate for helper, local and kfunc calls alike.
    return f"call {insn.imm}"


def _exit(insn: Insn) -> str:
    return "exit"


def _lddw(insn: Insn) -> str:
    if insn.src == PseudoSrc.IMM64:
        value = insn.imm64
        if value >= 1 << 63:
            value -= 1 << 64
        return f"r{insn.dst} = {value} ll"
    return f"ld_pseudo r{insn.dst}, {insn.src}, {insn.imm & 0xFFFFFFFF}"


def _ld_abs(insn: Insn) -> str:
    return f"r0 = *({SIZE_NAMES[insn.spec.size]} *)skb[{insn.imm}]"  # type: ignore[index]


def _ld_ind(insn: Insn) -> str:
    return f"r0 = *({SIZE_NAMES[insn.spec.size]} *)skb[r{insn.src}]"  # type: ignore[index]


def _ldx(insn: Insn) -> str:
    size = SIZE_NAMES[insn.spec.size]  # type: ignore[index]
    return f"r{insn.dst} = *({size} *){_mem(insn.src, insn.off)}"


def _ldxsx(insn: Insn) -> str:
    bits = 8 * SIZE_BYTES[insn.spec.size]  # type: ignore[index]
    return f"r{insn.dst} = *(s{bits} *){_mem(insn.src, insn.off)}"


def _st(insn: Insn) -> str:
    size = SIZE_NAMES[insn.spec.size]  # type: ignore[index]
    return f"*({size} *){_mem(insn.dst, insn.off)} = {insn.imm}"


def _stx(insn: Insn) -> str:
    size = SIZE_NAMES[insn.spec.size]  # type: ignore[index]
    return f"*({size} *){_mem(insn.dst, insn.off)} = r{insn.src}"


def _atomic(insn: Insn) -> str:
    spec = insn.spec
    is64 = spec.size is Size.DW
    size = SIZE_NAMES[spec.size]  # type: ignore[index]
    src = _reg(insn.src, is64)
    addr = f"r{insn.dst} {'-' if insn.off < 0 else '+'} {abs(insn.off)}"
    bits = 64 if is64 else 32
    if insn.imm == AtomicOp.XCHG:
        return f"{src} = xchg_{bits}({addr}, {src})"
    if insn.imm == AtomicOp.CMPXCHG:
        return f"{_reg(0, is64)} = cmpxchg_{bits}({addr}, {_reg(0, is64)}, {src})"
    op = AtomicOp(insn.imm & ~AtomicOp.FETCH)
    if insn.imm & AtomicOp.FETCH:
        return f"{src} = atomic_fetch_{op.name.lower()}(({size} *)({addr}), {src})"
    # LLVM prints the plain (non-fetch) forms with an r register at both widths.
    return f"lock *({size} *){_mem(insn.dst, insn.off)} {ATOMIC_OPERATORS[op]} r{insn.src}"


FORMATTERS: dict[Kind, Callable[[Insn], str]] = {
    Kind.ALU: _alu, Kind.NEG: _neg, Kind.ENDIAN: _endian, Kind.BSWAP: _bswap, Kind.JA: _ja,
    Kind.JCOND: _jcond, Kind.CALL: _call, Kind.EXIT: _exit, Kind.LDDW: _lddw,
    Kind.LD_ABS: _ld_abs, Kind.LD_IND: _ld_ind, Kind.LDX: _ldx, Kind.LDXSX: _ldxsx,
    Kind.ST: _st, Kind.STX: _stx, Kind.ATOMIC: _atomic,
}


def format_insn(insn: Insn) -> str:
    """One instruction in llvm-objdump syntax (no address, no bytes)."""
    return FORMATTERS[insn.kind](insn)


def branch_target(insn: Insn, slot: int) -> int | None:
    """The slot a jump or local call at ``slot`` transfers to, else None."""
    kind = insn.kind
    if kind is Kind.JA:
        delta = insn.imm if insn.spec.cls is InsnClass.JMP32 else insn.off
        return slot + 1 + delta
    if kind is Kind.JCOND:
        return slot + 1 + insn.off
    if kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return slot + 1 + insn.imm
    return None


Symbolizer = Callable[[int], str | None]


def format_listing(insns: Sequence[Insn], *, base_slot: int = 0,
                   labels: dict[int, str] | None = None,
                   symbolize: Symbolizer | None = None,
                   comments: dict[int, list[str]] | None = None) -> list[str]:
    """Lines as `llvm-objdump -d` prints them: label headers, slot, raw bytes, text.

    ``labels`` maps a slot to the symbol defined there (printed as `<addr> <name>:`);
    ``symbolize`` turns a branch target byte offset into `<sym>` / `<sym+0x..>`;
    ``comments`` adds lines (e.g. C source) before a slot.
    """
    lines: list[str] = []
    for insn, rel in zip(insns, slot_offsets(insns), strict=True):
        slot = base_slot + rel
        if labels and slot in labels:
            if lines:
                lines.append("")
            lines.append(f"{slot * 8:016x} <{labels[slot]}>:")
        for comment in (comments or {}).get(slot, []):
            lines.append(comment)
        raw = insn.encode()
        hexbytes = " ".join(f"{b:02x}" for b in raw)
        text = format_insn(insn)
        if symbolize is not None and insn.kind in (Kind.JA, Kind.JCOND):
            target = branch_target(insn, slot)
            sym = symbolize(target * 8) if target is not None else None
            if sym:
                text += f" <{sym}>"
        lines.append(f"{slot:8d}:\t{hexbytes}\t{text}")
    return lines
