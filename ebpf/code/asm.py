"""Assembler and printer for the uBPF / bpf_conformance text syntax.

``assemble()`` turns text into bytecode, ``disassemble()`` turns bytecode back into the same
syntax, so ``assemble(disassemble(code)) == code`` for every stream ``ebpf.code.isa.validate``
accepts. Mnemonics are not listed here: they are derived from ``ebpf.code.isa.OPCODES`` (the enum
names, lower-cased) and filtered through ``validate``, so the two cannot disagree.

==========================  ==============================================================
form                        meaning
==========================  ==============================================================
``add %r1, 5``              ALU64 (``AluOp`` name); ``add32`` is the ALU (32-bit) form
``add %r1, %r2``            register source (``Source.X``); ``r1`` without ``%`` also works
``sdiv``/``smod[32]``       DIV/MOD with off=1 (v4)
``movsx832 %r0, %r1``       MOV X with off=8/16/32: ``movsx{8,16}32``, ``movsx{8,16,32}64``
``neg %r1`` / ``neg32``     NEG
``le16 %r1`` / ``be64``     ALU END to little / big endian, imm = width
``bswap16 %r1``             ALU64 END (v4); ``swap16`` is accepted as an alias
``ldxb %r0, [%r1+2]``       LDX MEM; ``[%r1-2]`` and ``[%r1]`` too; ``ldxs{b,h,w}``: MEMSX
``stw [%r1+2], 7``          ST MEM; ``stxdw [%r10-8], %r1`` is STX MEM
``lddw %r1, 0x1122..``      64-bit immediate (two slots), value taken modulo 2**64
``lddw %r1, map_fd 3``      pseudo source, ``PseudoSrc`` name: ``map_fd N``, ``map_value N, OFF``,
                            ``btf_id N``, ``func TARGET``, ``map_idx N``, ``map_idx_value N, OFF``;
                            a second number (next_imm) may follow any of them, default 0
``ldabsw 12``               legacy packet load (``ldabs{b,h,w}``)
``ldindw %r1, 12``          legacy packet load, %r1 is the src register
``ja TARGET``               JMP JA (off); ``ja32 TARGET`` (alias ``gotol``) is JMP32 JA (imm)
``jeq %r1, 0x10, TARGET``   JCOND (``JmpOp`` name), imm or register; ``jeq32`` is JMP32
``call 1``                  helper call (also ``call helper 1``)
``call local TARGET``       bpf-to-bpf call, imm = target - (pc + 1)
``call kfunc 5``            kernel function by BTF id (``call runtime 5`` is an alias)
``exit``                    return
``lock add [%r1+0], %r2``   atomic; ``lock fetch add|or|and|xor``, ``lock xchg``,
                            ``lock cmpxchg``; the ``32`` suffix (``lock add32``) is the W form
==========================  ==============================================================

TARGET is a label name or a relative slot offset: ``+3``, ``-2`` or a bare ``3`` (as in the
conformance suite's ``ja32 3``). A reference to ``exit`` with no ``exit:`` label goes to the
first ``exit`` instruction, as bpf_conformance does. Labels are ``name:`` (an instruction may
follow on the same line); ``#`` starts a comment; blank lines are ignored. Numbers are
decimal or hex with an optional sign. A 32-bit immediate may be written signed or unsigned
(``0xffffffff`` == ``-1``); offsets must fit signed 16 bits. The printer writes jumps with
explicit relative offsets (``+N``/``-N``), so its output needs no labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from ebpf.code.isa import (
    ATOMIC_IMMS,
    LDDW_OPCODE,
    OPCODES,
    AluOp,
    AtomicOp,
    CallKind,
    Endian,
    Insn,
    InsnClass,
    JmpOp,
    Kind,
    OpSpec,
    PseudoSrc,
    Size,
    Source,
    decode,
    encode,
    slot_offsets,
    to_s32,
    validate,
)
from ebpf.errors import AsmError, IsaError

__all__ = ["assemble", "assemble_insns", "disassemble", "format_insn", "mnemonic"]

# --------------------------------------------------------------------------------------------
# Mnemonic tables, derived from OPCODES
# --------------------------------------------------------------------------------------------

# The field that tells apart several spellings of one opcode (sdiv vs div, le16 vs le32, ...).
_VARIANT_FIELD = {Kind.ALU: "off", Kind.ENDIAN: "imm", Kind.BSWAP: "imm", Kind.ATOMIC: "imm"}
_MEM_PREFIX = {Kind.LD_ABS: "ldabs", Kind.LD_IND: "ldind", Kind.LDX: "ldx", Kind.LDXSX: "ldxs",
               Kind.ST: "st", Kind.STX: "stx"}
_WIDTHS = (8, 16, 32, 64)
_ALIASES = {"gotol": "ja32", **{f"swap{w}": f"bswap{w}" for w in (16, 32, 64)}}
_CALL_ALIASES = {"runtime": CallKind.KFUNC}  # bpf_conformance's name for a kfunc call
_VALUE_PSEUDOS = frozenset({PseudoSrc.MAP_VALUE, PseudoSrc.MAP_IDX_VALUE})


def _atomic_words(imm: int) -> str:
    """``add``, ``fetch add``, ``xchg``, ... for an atomic imm from ``ATOMIC_IMMS``."""
    if imm in (AtomicOp.XCHG, AtomicOp.CMPXCHG) or not imm & AtomicOp.FETCH:
        return AtomicOp(imm).name.lower()
    return "fetch " + AtomicOp(imm & ~AtomicOp.FETCH).name.lower()


def _candidates(spec: OpSpec) -> Iterator[tuple[int | None, str]]:
    """(variant value, mnemonic) pairs for ``spec``; ``_build_tables`` keeps those validate takes."""
    kind, bits = spec.kind, ("" if spec.is64 else "32")
    if kind is Kind.ALU:
        name = AluOp(spec.op).name.lower()  # type: ignore[arg-type]
        yield 0, name + bits
        if spec.op in (AluOp.DIV, AluOp.MOD):
            yield 1, "s" + name + bits  # signed division (v4)
        if spec.op is AluOp.MOV:
            for width in _WIDTHS:  # sign-extending move (v4)
                yield width, f"movsx{width}{64 if spec.is64 else 32}"
    elif kind is Kind.NEG:
        yield None, "neg" + bits
    elif kind is Kind.ENDIAN:
        order = Endian(spec.opcode & Source.X).name.removeprefix("TO_").lower()
        for width in _WIDTHS:
            yield width, f"{order}{width}"
    elif kind is Kind.BSWAP:
        for width in _WIDTHS:
            yield width, f"bswap{width}"
    elif kind in (Kind.JA, Kind.JCOND):
        yield None, JmpOp(spec.op).name.lower() + bits  # type: ignore[arg-type]
    elif kind in (Kind.CALL, Kind.EXIT):
        yield None, JmpOp(spec.op).name.lower()  # type: ignore[arg-type]
    elif kind is Kind.LDDW:
        yield None, "lddw"
    elif kind is Kind.ATOMIC:
        suffix = "" if spec.size is Size.DW else "32"
        for imm in sorted(ATOMIC_IMMS):
            yield int(imm), f"lock {_atomic_words(imm)}{suffix}"
    else:
        yield None, _MEM_PREFIX[kind] + Size(spec.size).name.lower()  # type: ignore[arg-type]


def _accepts(spec: OpSpec, value: int | None) -> bool:
    """True when validate() takes ``spec``'s opcode with its variant field set to ``value``."""
    if value is None:
        return True
    insn = replace(Insn(spec.opcode), **{_VARIANT_FIELD[spec.kind]: value})
    try:
        validate(insn)
    except IsaError:
        return False
    return True


def _build_tables() -> tuple[dict[tuple[int, int | None], str],
                             dict[str, list[tuple[OpSpec, int | None]]]]:
    names: dict[tuple[int, int | None], str] = {}
    forms: dict[str, list[tuple[OpSpec, int | None]]] = {}
    for spec in OPCODES.values():
        for value, name in _candidates(spec):
            if _accepts(spec, value):
                names[spec.opcode, value] = name
                forms.setdefault(name, []).append((spec, value))
    for name, specs in forms.items():  # one spelling = one opcode, or an imm/register pair
        assert len(specs) == 1 or {s.source for s, _ in specs} == set(Source), name
    return names, forms


_NAMES, _FORMS = _build_tables()

# --------------------------------------------------------------------------------------------
# Printer
# --------------------------------------------------------------------------------------------


def _reg(num: int) -> str:
    return f"%r{num}"


def _num(value: int) -> str:
    """Small numbers in decimal, large ones in (signed) hex."""
    return str(value) if -0x10000 < value < 0x10000 else f"{'-' if value < 0 else ''}{abs(value):#x}"


def _rel(value: int) -> str:
    return f"{value:+d}"


def _mem(reg: int, off: int) -> str:
    return f"[{_reg(reg)}{_rel(off) if off else ''}]"


def mnemonic(insn: Insn) -> str:
    """The mnemonic of a valid instruction (``add32``, ``lock fetch add``, ``lddw``...)."""
    spec = insn.spec
    variant = _VARIANT_FIELD.get(spec.kind)
    return _NAMES[insn.opcode, None if variant is None else getattr(insn, variant)]


def _jump_rel(insn: Insn) -> int | None:
    """The relative slot offset a jump, local call or ``lddw func`` refers to, else None."""
    spec = insn.spec
    if spec.kind is Kind.JA:
        return insn.off if spec.cls is InsnClass.JMP else insn.imm
    if spec.kind is Kind.JCOND:
        return insn.off
    if spec.kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return insn.imm
    if spec.kind is Kind.LDDW and insn.src == PseudoSrc.FUNC:
        return insn.imm
    return None


def _operand(insn: Insn, spec: OpSpec) -> str:
    """The second operand of an ALU / JCOND instruction: register or immediate."""
    return _reg(insn.src) if spec.source is Source.X else _num(insn.imm)


def _fmt_call(insn: Insn, spec: OpSpec, name: str) -> str:
    if insn.src == CallKind.HELPER:
        return f"{name} {_num(insn.imm)}"
    target = _rel(insn.imm) if insn.src == CallKind.LOCAL else _num(insn.imm)
    return f"{name} {CallKind(insn.src).name.lower()} {target}"


def _fmt_lddw(insn: Insn, spec: OpSpec, name: str) -> str:
    if insn.src == PseudoSrc.IMM64:
        return f"{name} {_reg(insn.dst)}, {insn.imm64:#x}"
    value = _rel(insn.imm) if insn.src == PseudoSrc.FUNC else _num(insn.imm)
    text = f"{name} {_reg(insn.dst)}, {PseudoSrc(insn.src).name.lower()} {value}"
    if insn.next_imm or insn.src in _VALUE_PSEUDOS:
        text += f", {_num(insn.next_imm or 0)}"
    return text


_Printer = Callable[[Insn, OpSpec, str], str]
_PRINTERS: dict[Kind, _Printer] = {
    Kind.ALU: lambda i, s, n: f"{n} {_reg(i.dst)}, {_operand(i, s)}",
    Kind.NEG: lambda i, s, n: f"{n} {_reg(i.dst)}",
    Kind.ENDIAN: lambda i, s, n: f"{n} {_reg(i.dst)}",
    Kind.BSWAP: lambda i, s, n: f"{n} {_reg(i.dst)}",
    Kind.JA: lambda i, s, n: f"{n} {_rel(_jump_rel(i) or 0)}",
    Kind.JCOND: lambda i, s, n: f"{n} {_reg(i.dst)}, {_operand(i, s)}, {_rel(i.off)}",
    Kind.CALL: _fmt_call,
    Kind.EXIT: lambda i, s, n: n,
    Kind.LDDW: _fmt_lddw,
    Kind.LD_ABS: lambda i, s, n: f"{n} {_num(i.imm)}",
    Kind.LD_IND: lambda i, s, n: f"{n} {_reg(i.src)}, {_num(i.imm)}",
    Kind.LDX: lambda i, s, n: f"{n} {_reg(i.dst)}, {_mem(i.src, i.off)}",
    Kind.LDXSX: lambda i, s, n: f"{n} {_reg(i.dst)}, {_mem(i.src, i.off)}",
    Kind.ST: lambda i, s, n: f"{n} {_mem(i.dst, i.off)}, {_num(i.imm)}",
    Kind.STX: lambda i, s, n: f"{n} {_mem(i.dst, i.off)}, {_reg(i.src)}",
    Kind.ATOMIC: lambda i, s, n: f"{n} {_mem(i.dst, i.off)}, {_reg(i.src)}",
}


def format_insn(insn: Insn, index: int | None = None) -> str:
    """One instruction in assembler syntax; raises IsaError if ``validate`` rejects it.

    ``index`` is the instruction's slot index; when given, a jump, local call or ``lddw func``
    gets a ``# -> N`` comment naming the absolute target slot.
    """
    spec = validate(insn, index or 0)
    text = _PRINTERS[spec.kind](insn, spec, mnemonic(insn))
    rel = _jump_rel(insn)
    if index is not None and rel is not None:
        text += f"  # -> {index + 1 + rel}"
    return text


def disassemble(code: bytes | bytearray | memoryview | Iterable[Insn]) -> str:
    """Bytecode (validated by ``decode``) or instructions as text, one line per instruction."""
    if isinstance(code, (bytes, bytearray, memoryview)):
        insns = decode(bytes(code))
    else:
        insns = list(code)
    lines = [format_insn(insn, pos) for insn, pos in zip(insns, slot_offsets(insns), strict=True)]
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------------------------
# Assembler
# --------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A problem with the current line; ``_assemble`` adds the line number and text."""


_IDENT = r"[A-Za-z_][\w.]*"
_LABEL_RE = re.compile(rf"\s*({_IDENT})\s*:(.*)$")
_IDENT_RE = re.compile(rf"{_IDENT}$")
_LOCK_RE = re.compile(r"lock((?:\s+\w+)+)\s*(.*)$", re.IGNORECASE)
_NUM_RE = re.compile(r"([+-]?)\s*(0[xX][0-9a-fA-F]+|[0-9]+)$")
_REG_RE = re.compile(r"%?r([0-9]+)$", re.IGNORECASE)
_MEM_RE = re.compile(r"\[\s*([^\]+\-\s]+)\s*(?:([+-])\s*([0-9a-fA-Fx]+)\s*)?\]$")
_ARITY: dict[Kind, tuple[int, ...]] = {
    Kind.ALU: (2,), Kind.NEG: (1,), Kind.ENDIAN: (1,), Kind.BSWAP: (1,), Kind.JA: (1,),
    Kind.JCOND: (3,), Kind.CALL: (1,), Kind.EXIT: (0,), Kind.LDDW: (2, 3), Kind.LD_ABS: (1,),
    Kind.LD_IND: (2,), Kind.LDX: (2,), Kind.LDXSX: (2,), Kind.ST: (2,), Kind.STX: (2,),
    Kind.ATOMIC: (2,),
}


def _number(tok: str) -> int:
    m = _NUM_RE.match(tok.strip())
    if not m:
        raise _Bad(f"expected a number, got '{tok}'")
    sign, digits = m.groups()
    value = int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 10)
    return -value if sign == "-" else value


def _ranged(tok: str, lo: int, hi: int, what: str) -> int:
    value = _number(tok)
    if not lo <= value <= hi:
        raise _Bad(f"{what} {tok} out of range [{lo}, {hi}]")
    return value


def _imm32(tok: str) -> int:
    """A 32-bit immediate, signed or unsigned spelling (``0xffffffff`` is -1)."""
    return to_s32(_ranged(tok, -(1 << 31), (1 << 32) - 1, "immediate"))


def _off16(tok: str) -> int:
    return _ranged(tok, -(1 << 15), (1 << 15) - 1, "offset")


def _register(tok: str) -> int:
    m = _REG_RE.match(tok.strip())
    if not m or int(m.group(1)) > 15:
        raise _Bad(f"expected a register %r0-%r10, got '{tok}'")
    return int(m.group(1))


def _is_register(tok: str) -> bool:
    return _REG_RE.match(tok.strip()) is not None


def _memory(tok: str) -> tuple[int, int]:
    """``[%rN]``, ``[%rN+off]`` or ``[%rN-off]`` -> (register, offset)."""
    m = _MEM_RE.match(tok.strip())
    if not m:
        raise _Bad(f"expected a memory operand like [%r1+8], got '{tok}'")
    reg, sign, off = m.groups()
    return _register(reg), (_off16(sign + off) if off else 0)


@dataclass
class _Fixup:
    index: int  # position in the instruction list
    pc: int  # slot of the instruction
    field: str  # "off" or "imm"
    label: str
    lineno: int
    text: str


@dataclass
class _Line:
    """What the operand parsers need to know about the instruction being assembled."""

    pc: int
    index: int
    lineno: int
    text: str
    fixups: list[_Fixup] = field(default_factory=list)

    def target(self, tok: str, field_name: str) -> int:
        """A jump target: relative offset now, or 0 and a fixup for a label."""
        tok = tok.strip()
        if _NUM_RE.match(tok):
            bits = 16 if field_name == "off" else 32
            return _ranged(tok, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, "jump offset")
        if not _IDENT_RE.match(tok):
            raise _Bad(f"expected a label or +N/-N, got '{tok}'")
        self.fixups.append(_Fixup(self.index, self.pc, field_name, tok, self.lineno, self.text))
        return 0


_Forms = list[tuple[OpSpec, int | None]]


def _pick(forms: _Forms, register: bool) -> tuple[OpSpec, int | None]:
    """The form whose source (imm or register) matches the operand."""
    want = Source.X if register else Source.K
    for spec, value in forms:
        if spec.source in (None, want):
            return spec, value
    raise _Bad(f"expected {'an immediate' if register else 'a register'} as source operand")


def _asm_alu(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    spec, value = _pick(forms, _is_register(ops[1]))
    dst, off = _register(ops[0]), value or 0
    if spec.source is Source.X:
        return Insn(spec.opcode, dst, _register(ops[1]), off)
    return Insn(spec.opcode, dst, 0, off, _imm32(ops[1]))


def _asm_unary(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    spec, value = forms[0]
    return Insn(spec.opcode, _register(ops[0]), imm=value or 0)


def _asm_ja(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    spec, _ = forms[0]
    if spec.cls is InsnClass.JMP:
        return Insn(spec.opcode, off=line.target(ops[0], "off"))
    return Insn(spec.opcode, imm=line.target(ops[0], "imm"))


def _asm_jcond(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    spec, _ = _pick(forms, _is_register(ops[1]))
    dst = _register(ops[0])
    off = line.target(ops[2], "off")
    if spec.source is Source.X:
        return Insn(spec.opcode, dst, _register(ops[1]), off)
    return Insn(spec.opcode, dst, 0, off, _imm32(ops[1]))


def _asm_call(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    spec, _ = forms[0]
    words = ops[0].split(None, 1)
    if len(words) == 1:
        return Insn(spec.opcode, imm=_imm32(words[0]))
    how = words[0].lower()
    kind = _CALL_ALIASES.get(how) or CallKind.__members__.get(how.upper())
    if kind is None:
        choices = ", ".join(k.name.lower() for k in CallKind)
        raise _Bad(f"expected call {choices} or a helper number, got '{ops[0]}'")
    if kind is CallKind.LOCAL:
        return Insn(spec.opcode, src=int(kind), imm=line.target(words[1], "imm"))
    return Insn(spec.opcode, src=int(kind), imm=_imm32(words[1]))


def _asm_exit(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    return Insn(forms[0][0].opcode)


def _asm_lddw(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    dst = _register(ops[0])
    words = ops[1].split(None, 1)
    if len(words) == 1:
        if len(ops) == 3:
            raise _Bad("a plain 64-bit immediate takes no second value")
        value = _ranged(words[0], -(1 << 63), (1 << 64) - 1, "immediate")
        return Insn(LDDW_OPCODE, dst, 0, 0, to_s32(value), to_s32(value >> 32))
    src = PseudoSrc.__members__.get(words[0].upper())
    if src is None:
        choices = ", ".join(p.name.lower() for p in PseudoSrc)
        raise _Bad(f"expected a number or one of {choices}, got '{ops[1]}'")
    imm = line.target(words[1], "imm") if src is PseudoSrc.FUNC else _imm32(words[1])
    next_imm = _imm32(ops[2]) if len(ops) == 3 else 0
    return Insn(LDDW_OPCODE, dst, int(src), 0, imm, next_imm)


def _asm_ld_abs(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    return Insn(forms[0][0].opcode, imm=_imm32(ops[0]))


def _asm_ld_ind(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    return Insn(forms[0][0].opcode, src=_register(ops[0]), imm=_imm32(ops[1]))


def _asm_ldx(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    src, off = _memory(ops[1])
    return Insn(forms[0][0].opcode, _register(ops[0]), src, off)


def _asm_st(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    dst, off = _memory(ops[0])
    return Insn(forms[0][0].opcode, dst, 0, off, _imm32(ops[1]))


def _asm_stx(line: _Line, forms: _Forms, ops: list[str]) -> Insn:
    spec, value = forms[0]
    dst, off = _memory(ops[0])
    return Insn(spec.opcode, dst, _register(ops[1]), off, value or 0)


_Assembler = Callable[[_Line, _Forms, list[str]], Insn]
_ASSEMBLERS: dict[Kind, _Assembler] = {
    Kind.ALU: _asm_alu, Kind.NEG: _asm_unary, Kind.ENDIAN: _asm_unary, Kind.BSWAP: _asm_unary,
    Kind.JA: _asm_ja, Kind.JCOND: _asm_jcond, Kind.CALL: _asm_call, Kind.EXIT: _asm_exit,
    Kind.LDDW: _asm_lddw, Kind.LD_ABS: _asm_ld_abs, Kind.LD_IND: _asm_ld_ind,
    Kind.LDX: _asm_ldx, Kind.LDXSX: _asm_ldx, Kind.ST: _asm_st, Kind.STX: _asm_stx,
    Kind.ATOMIC: _asm_stx,
}


def _split(body: str) -> tuple[str, list[str]]:
    """Mnemonic (lower-case; ``lock ...`` spans several words) and comma-separated operands."""
    lock = _LOCK_RE.match(body)
    if lock:
        name, rest = "lock " + " ".join(lock.group(1).split()), lock.group(2)
    else:
        name, rest = (body.split(None, 1) + [""])[:2]
    name = name.lower()
    name = _ALIASES.get(name, name)
    ops = [op.strip() for op in rest.split(",")] if rest.strip() else []
    if any(not op for op in ops):
        raise _Bad("empty operand")
    return name, ops


def _assemble(text: str, check: bool) -> list[Insn]:
    insns: list[Insn] = []
    where: list[tuple[int, str]] = []  # (line number, text) per instruction
    labels: dict[str, tuple[int, int]] = {}  # name -> (slot, line number)
    fixups: list[_Fixup] = []
    first_exit: int | None = None
    pc = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        body = raw.split("#", 1)[0].strip()
        shown = raw.strip()
        try:
            while (m := _LABEL_RE.match(body)) is not None:
                name, body = m.group(1), m.group(2).strip()
                if name in labels:
                    raise _Bad(f"duplicate label '{name}' (first defined on line "
                               f"{labels[name][1]})")
                labels[name] = (pc, lineno)
            if not body:
                continue
            name, ops = _split(body)
            forms = _FORMS.get(name)
            if forms is None:
                raise _Bad(f"unknown mnemonic '{name}'")
            kind = forms[0][0].kind
            if len(ops) not in _ARITY[kind]:
                want = " or ".join(str(n) for n in _ARITY[kind])
                raise _Bad(f"'{name}' takes {want} operands, got {len(ops)}")
            line = _Line(pc, len(insns), lineno, shown)
            insn = _ASSEMBLERS[kind](line, forms, ops)
        except _Bad as exc:
            raise AsmError(f"line {lineno}: {exc}: {shown}") from None
        if kind is Kind.EXIT and first_exit is None:
            first_exit = pc
        fixups += line.fixups
        insns.append(insn)
        where.append((lineno, shown))
        pc += insn.slots

    for fix in fixups:
        if fix.label in labels:
            slot = labels[fix.label][0]
        elif fix.label == "exit" and first_exit is not None:
            slot = first_exit  # bpf_conformance's implicit label
        else:
            raise AsmError(f"line {fix.lineno}: undefined label '{fix.label}': {fix.text}")
        rel = slot - (fix.pc + 1)
        bits = 16 if fix.field == "off" else 32
        if not -(1 << (bits - 1)) <= rel < 1 << (bits - 1):
            raise AsmError(f"line {fix.lineno}: label '{fix.label}' is {rel} slots away, "
                           f"beyond a {bits}-bit {fix.field}: {fix.text}")
        insns[fix.index] = replace(insns[fix.index], **{fix.field: rel})

    if check:
        for insn, pos, (lineno, shown) in zip(insns, slot_offsets(insns), where, strict=True):
            try:
                validate(insn, pos)
            except IsaError as exc:
                raise AsmError(f"line {lineno}: {exc}: {shown}") from exc
    return insns


def assemble_insns(text: str, *, check: bool = True) -> list[Insn]:
    """Assemble ``text`` into instructions; errors are AsmError("line N: <problem>: <text>").

    With ``check`` (the default) every instruction must pass ``ebpf.code.isa.validate``; without
    it, only the field widths are enforced (for negative tests: ``mov %r11, 1``).
    """
    return _assemble(text, check)


def assemble(text: str, *, check: bool = True) -> bytes:
    """Assemble ``text`` into bytecode (8 bytes per slot, little-endian)."""
    return encode(_assemble(text, check))
