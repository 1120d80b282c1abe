"""The eBPF instruction set (RFC 9669, versions 1-4), defined once as data.

Encoding fields are IntEnums; every valid opcode is built from them into ``OPCODES``, one
``OpSpec`` each, with the constraints the RFC puts on the other fields. Decoder, encoder,
validator, assembler, disassembler and VM all read this table; nothing else lists opcodes.

An instruction is 8 bytes little-endian: opcode (8), dst_reg (4, low nibble), src_reg (4),
offset (signed 16), imm (signed 32). The 64-bit immediate load (``lddw``) occupies two
slots; the second slot's imm is the upper 32 bits and every other field of it is zero.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum, IntEnum

from ebpf.errors import IsaError

SLOT_SIZE = 8
NUM_REGS = 11  # r0-r10; r10 is the read-only frame pointer
FRAME_POINTER = 10
_SLOT = struct.Struct("<BBhi")


class InsnClass(IntEnum):
    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Source(IntEnum):
    K = 0x00  # immediate operand
    X = 0x08  # register operand


class Size(IntEnum):
    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18


SIZE_BYTES = {Size.B: 1, Size.H: 2, Size.W: 4, Size.DW: 8}


class Mode(IntEnum):
    IMM = 0x00
    ABS = 0x20  # legacy packet access
    IND = 0x40  # legacy packet access
    MEM = 0x60
    MEMSX = 0x80  # sign-extending load (v4)
    ATOMIC = 0xC0


class AluOp(IntEnum):
    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class JmpOp(IntEnum):
    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0


class AtomicOp(IntEnum):
    """Atomic operations, as encoded in imm. FETCH (0x01) may be or-ed into ADD..XOR."""

    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH = 0x01
    XCHG = 0xE0 | 0x01
    CMPXCHG = 0xF0 | 0x01


ATOMIC_IMMS = frozenset(
    [AtomicOp.ADD, AtomicOp.OR, AtomicOp.AND, AtomicOp.XOR]
    + [op | AtomicOp.FETCH for op in (AtomicOp.ADD, AtomicOp.OR, AtomicOp.AND, AtomicOp.XOR)]
    + [AtomicOp.XCHG, AtomicOp.CMPXCHG]
)


class PseudoSrc(IntEnum):
    """src_reg of a 64-bit immediate load: how imm is to be interpreted."""

    IMM64 = 0  # imm64 is the value
    MAP_FD = 1  # map by file descriptor -> map address
    MAP_VALUE = 2  # map by fd, next_imm = offset into its value -> address
    BTF_ID = 3  # variable by BTF id -> address
    FUNC = 4  # imm = relative instruction offset of a function -> code address
    MAP_IDX = 5  # map by index in fd_array -> map address
    MAP_IDX_VALUE = 6  # map by index, next_imm = offset -> address of value


class CallKind(IntEnum):
    """src_reg of a CALL instruction."""

    HELPER = 0  # imm = helper id
    LOCAL = 1  # bpf-to-bpf call, imm = relative offset in slots (BPF_PSEUDO_CALL)
    KFUNC = 2  # imm = BTF id of a kernel function (BPF_PSEUDO_KFUNC_CALL)


class Endian(IntEnum):
    """Source bit of ALU END: the byte order to convert to (from host, little-endian)."""

    TO_LE = 0x00
    TO_BE = 0x08


class Kind(Enum):
    """What an opcode does, for the consumers that dispatch on it."""

    ALU = "alu"  # dst = dst op src/imm
    NEG = "neg"  # dst = -dst
    ENDIAN = "endian"  # to le/be, imm = 16/32/64
    BSWAP = "bswap"  # unconditional byte swap (ALU64 END, v4)
    JA = "ja"  # goto +off (JMP) or gotol +imm (JMP32, v4)
    JCOND = "jcond"  # if dst op src/imm goto +off
    CALL = "call"
    EXIT = "exit"
    LDDW = "lddw"
    LD_ABS = "ld_abs"
    LD_IND = "ld_ind"
    LDX = "ldx"
    LDXSX = "ldxsx"
    ST = "st"
    STX = "stx"
    ATOMIC = "atomic"


@dataclass(frozen=True)
class OpSpec:
    """One valid opcode and the constraints on the rest of the instruction."""

    opcode: int
    kind: Kind
    cls: InsnClass
    op: int | None = None  # AluOp or JmpOp
    source: Source | None = None
    size: Size | None = None
    mode: Mode | None = None

    @property
    def is64(self) -> bool:
        """True when the operation works on 64-bit registers (ALU64 / JMP)."""
        return self.cls in (InsnClass.ALU64, InsnClass.JMP)

    @property
    def slots(self) -> int:
        return 2 if self.kind is Kind.LDDW else 1

    @property
    def width(self) -> int:
        """Access width in bytes for loads and stores."""
        assert self.size is not None
        return SIZE_BYTES[self.size]


def _build_table() -> dict[int, OpSpec]:
    table: dict[int, OpSpec] = {}

    def add(spec: OpSpec) -> None:
        assert spec.opcode not in table, hex(spec.opcode)
        table[spec.opcode] = spec

    for cls in (InsnClass.ALU, InsnClass.ALU64):
        for op in AluOp:
            if op is AluOp.NEG:
                add(OpSpec(cls | op, Kind.NEG, cls, op, Source.K))
            elif op is AluOp.END:
                if cls is InsnClass.ALU:
                    for endian in Endian:
                        add(OpSpec(cls | op | endian, Kind.ENDIAN, cls, op))
                else:
                    add(OpSpec(cls | op, Kind.BSWAP, cls, op))
            else:
                for src in Source:
                    add(OpSpec(cls | op | src, Kind.ALU, cls, op, src))
    for cls in (InsnClass.JMP, InsnClass.JMP32):
        for op in JmpOp:
            if op is JmpOp.JA:
                add(OpSpec(cls | op, Kind.JA, cls, op))
            elif op in (JmpOp.CALL, JmpOp.EXIT):
                if cls is InsnClass.JMP:
                    add(OpSpec(cls | op, Kind.CALL if op is JmpOp.CALL else Kind.EXIT, cls, op))
            else:
                for src in Source:
                    add(OpSpec(cls | op | src, Kind.JCOND, cls, op, src))
    add(OpSpec(InsnClass.LD | Mode.IMM | Size.DW, Kind.LDDW, InsnClass.LD, size=Size.DW,
               mode=Mode.IMM))
    for size in (Size.W, Size.H, Size.B):
        add(OpSpec(InsnClass.LD | Mode.ABS | size, Kind.LD_ABS, InsnClass.LD, size=size,
                   mode=Mode.ABS))
        add(OpSpec(InsnClass.LD | Mode.IND | size, Kind.LD_IND, InsnClass.LD, size=size,
                   mode=Mode.IND))
        add(OpSpec(InsnClass.LDX | Mode.MEMSX | size, Kind.LDXSX, InsnClass.LDX, size=size,
                   mode=Mode.MEMSX))
    for size in Size:
        add(OpSpec(InsnClass.LDX | Mode.MEM | size, Kind.LDX, InsnClass.LDX, size=size,
                   mode=Mode.MEM))
        add(OpSpec(InsnClass.ST | Mode.MEM | size, Kind.ST, InsnClass.ST, size=size,
                   mode=Mode.MEM))
        add(OpSpec(InsnClass.STX | Mode.MEM | size, Kind.STX, InsnClass.STX, size=size,
                   mode=Mode.MEM))
    for size in (Size.W, Size.DW):
        add(OpSpec(InsnClass.STX | Mode.ATOMIC | size, Kind.ATOMIC, InsnClass.STX, size=size,
                   mode=Mode.ATOMIC))
    return table


OPCODES: dict[int, OpSpec] = _build_table()
LDDW_OPCODE = InsnClass.LD | Mode.IMM | Size.DW


@dataclass(frozen=True)
class Insn:
    """One instruction; ``next_imm`` is the second slot's imm of a 64-bit load, else None."""

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    next_imm: int | None = None

    @property
    def spec(self) -> OpSpec:
        try:
            return OPCODES[self.opcode]
        except KeyError:
            raise IsaError(f"unknown opcode 0x{self.opcode:02x}") from None

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    @property
    def slots(self) -> int:
        return 2 if self.next_imm is not None else 1

    @property
    def imm64(self) -> int:
        """The unsigned 64-bit immediate of a 64-bit load."""
        assert self.next_imm is not None
        return (self.imm & 0xFFFFFFFF) | ((self.next_imm & 0xFFFFFFFF) << 32)

    def encode(self) -> bytes:
        raw = _SLOT.pack(self.opcode, (self.src << 4) | self.dst, self.off, self.imm)
        if self.next_imm is not None:
            raw += _SLOT.pack(0, 0, 0, self.next_imm)
        return raw


def lddw(dst: int, value: int, src: int = PseudoSrc.IMM64) -> Insn:
    """A 64-bit immediate load of ``value`` (taken modulo 2**64)."""
    value &= 0xFFFFFFFFFFFFFFFF
    return Insn(LDDW_OPCODE, dst, src, 0, to_s32(value & 0xFFFFFFFF), to_s32(value >> 32))


def to_s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def validate(insn: Insn, index: int = 0) -> OpSpec:
    """Check ``insn`` against the RFC's constraints; return its spec or raise IsaError."""
    spec = OPCODES.get(insn.opcode)
    where = f"insn {index}"
    if spec is None:
        raise IsaError(f"{where}: unknown opcode 0x{insn.opcode:02x}")
    for name, value, lo, hi in (("dst", insn.dst, 0, 15), ("src", insn.src, 0, 15),
                                ("off", insn.off, -(1 << 15), (1 << 15) - 1),
                                ("imm", insn.imm, -(1 << 31), (1 << 31) - 1)):
        if not lo <= value <= hi:
            raise IsaError(f"{where}: {name} {value} out of range")
    if insn.dst >= NUM_REGS:
        raise IsaError(f"{where}: bad dst register r{insn.dst} (opcode 0x{insn.opcode:02x})")
    if insn.src >= NUM_REGS:
        raise IsaError(f"{where}: bad src register r{insn.src} (opcode 0x{insn.opcode:02x})")

    def reserved(field: str, value: int, allowed: Iterable[int] = (0,)) -> None:
        if value not in allowed:
            raise IsaError(f"{where}: opcode 0x{insn.opcode:02x} needs {field} in "
                           f"{sorted(int(a) for a in allowed)}, got {value}")

    kind = spec.kind
    if (kind is Kind.LDDW) != (insn.next_imm is not None):
        raise IsaError(f"{where}: only lddw has a second slot")
    if kind is Kind.ALU:
        if spec.source is Source.K:
            reserved("src", insn.src)
        else:
            reserved("imm", insn.imm)
        if spec.op in (AluOp.DIV, AluOp.MOD):
            reserved("off", insn.off, (0, 1))
        elif spec.op is AluOp.MOV and spec.source is Source.X:
            reserved("off", insn.off, (0, 8, 16, 32) if spec.is64 else (0, 8, 16))
        else:
            reserved("off", insn.off)
    elif kind is Kind.NEG:
        reserved("src", insn.src)
        reserved("off", insn.off)
        reserved("imm", insn.imm)
    elif kind in (Kind.ENDIAN, Kind.BSWAP):
        reserved("src", insn.src)
        reserved("off", insn.off)
        reserved("imm", insn.imm, (16, 32, 64))
    elif kind is Kind.JA:
        reserved("dst", insn.dst)
        reserved("src", insn.src)
        if spec.cls is InsnClass.JMP:
            reserved("imm", insn.imm)
        else:
            reserved("off", insn.off)
    elif kind is Kind.JCOND:
        if spec.source is Source.K:
            reserved("src", insn.src)
        else:
            reserved("imm", insn.imm)
    elif kind is Kind.CALL:
        reserved("dst", insn.dst)
        reserved("off", insn.off)
        reserved("src", insn.src, tuple(CallKind))
    elif kind is Kind.EXIT:
        reserved("dst", insn.dst)
        reserved("src", insn.src)
        reserved("off", insn.off)
        reserved("imm", insn.imm)
    elif kind is Kind.LDDW:
        reserved("src", insn.src, tuple(PseudoSrc))
        reserved("off", insn.off)
        if not -(1 << 31) <= insn.next_imm <= (1 << 31) - 1:  # type: ignore[operator]
            raise IsaError(f"{where}: next_imm {insn.next_imm} out of range")
    elif kind is Kind.LD_ABS:
        reserved("dst", insn.dst)
        reserved("src", insn.src)
        reserved("off", insn.off)
    elif kind is Kind.LD_IND:
        reserved("dst", insn.dst)
        reserved("off", insn.off)
    elif kind in (Kind.LDX, Kind.LDXSX):
        reserved("imm", insn.imm)
    elif kind is Kind.ST:
        reserved("src", insn.src)
    elif kind is Kind.STX:
        reserved("imm", insn.imm)
    elif kind is Kind.ATOMIC:
        reserved("imm", insn.imm, ATOMIC_IMMS)
    return spec


def iter_slots(code: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield raw (opcode, dst, src, off, imm) per 8-byte slot."""
    if len(code) % SLOT_SIZE:
        raise IsaError(f"code length {len(code)} is not a multiple of {SLOT_SIZE}")
    for pos in range(0, len(code), SLOT_SIZE):
        opcode, regs, off, imm = _SLOT.unpack_from(code, pos)
        yield opcode, regs & 0x0F, regs >> 4, off, imm


def decode(code: bytes, *, check: bool = True) -> list[Insn]:
    """Decode raw bytecode into instructions (a 64-bit load is one Insn spanning two slots).

    With ``check`` every instruction is validated; the error names the slot index.
    """
    slots = list(iter_slots(code))
    insns: list[Insn] = []
    i = 0
    while i < len(slots):
        opcode, dst, src, off, imm = slots[i]
        next_imm = None
        if opcode == LDDW_OPCODE:
            if i + 1 >= len(slots):
                raise IsaError(f"insn {i}: lddw is missing its second slot")
            op2, dst2, src2, off2, next_imm = slots[i + 1]
            if check and (op2, dst2, src2, off2) != (0, 0, 0, 0):
                raise IsaError(f"insn {i + 1}: second slot of lddw must be zero apart from imm")
        insn = Insn(opcode, dst, src, off, imm, next_imm)
        if check:
            validate(insn, i)
        insns.append(insn)
        i += insn.slots
    return insns


def encode(insns: Iterable[Insn]) -> bytes:
    return b"".join(insn.encode() for insn in insns)


def slot_offsets(insns: Iterable[Insn]) -> list[int]:
    """The slot index of every instruction (what llvm-objdump prints)."""
    out, pos = [], 0
    for insn in insns:
        out.append(pos)
        pos += insn.slots
    return out
