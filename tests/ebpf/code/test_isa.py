"""The instruction table: encoding, decoding and the RFC 9669 field constraints."""

from __future__ import annotations

import pytest

from ebpf.code.isa import (
    OPCODES,
    AluOp,
    AtomicOp,
    Insn,
    InsnClass,
    JmpOp,
    Kind,
    Mode,
    PseudoSrc,
    Size,
    Source,
    decode,
    encode,
    lddw,
    slot_offsets,
    validate,
)
from ebpf.errors import IsaError


def test_table_size_matches_rfc():
    """The table holds every opcode RFC 9669 defines for versions 1-4, and no other."""
    # ALU/ALU64: 12 binary ops x 2 sources + NEG; END has 2 opcodes in ALU, 1 in ALU64.
    alu = 2 * (12 * 2 + 1) + 2 + 1
    # JMP: JA + 11 conditionals x 2 + CALL + EXIT; JMP32: JA (gotol) + 11 x 2.
    jmp = (1 + 22 + 2) + (1 + 22)
    # LD: lddw, 3 ABS, 3 IND; LDX: 4 MEM + 3 MEMSX; ST: 4; STX: 4 MEM + 2 ATOMIC.
    mem = 7 + 7 + 4 + 6
    assert len(OPCODES) == alu + jmp + mem


@pytest.mark.parametrize(
    ("insn", "raw"),
    [
        (Insn(0xB7, 1, 0, 0, 0), "b701000000000000"),  # r1 = 0
        (Insn(0x63, 10, 1, -4, 0), "631afcff00000000"),  # *(u32 *)(r10 - 4) = r1
        (Insn(0x07, 2, 0, 0, -4), "07020000fcffffff"),  # r2 += -4
        (Insn(0x85, 0, 0, 0, 1), "8500000001000000"),  # call 1
        (Insn(0xDB, 0, 1, 0, 0), "db10000000000000"),  # lock *(u64 *)(r0 + 0) += r1
        (Insn(0x95), "9500000000000000"),  # exit
    ],
)
def test_encode_matches_clang_bytes(insn, raw):
    """Encoding gives the bytes clang emits (taken from llvm-objdump of a clang object)."""
    assert insn.encode().hex() == raw
    assert decode(bytes.fromhex(raw)) == [insn]


def test_opcode_composition():
    """Opcodes are built from class, source/size, mode and operation fields."""
    assert InsnClass.ALU64 | AluOp.ADD | Source.X == 0x0F
    assert InsnClass.LDX | Mode.MEM | Size.DW == 0x79
    assert InsnClass.JMP32 | JmpOp.JSLE | Source.K == 0xD6
    assert OPCODES[0xD7].kind is Kind.BSWAP
    assert OPCODES[0x06].kind is Kind.JA  # gotol
    assert OPCODES[0x91].kind is Kind.LDXSX


def test_lddw_two_slots():
    """A 64-bit load spans two slots; the second holds the upper 32 bits."""
    insn = lddw(1, 0x123456789ABCDEF0)
    raw = insn.encode()
    assert raw.hex() == "18010000f0debc9a0000000078563412"
    assert decode(raw) == [insn]
    assert insn.imm64 == 0x123456789ABCDEF0
    assert slot_offsets([insn, Insn(0x95)]) == [0, 2]


def test_lddw_missing_second_slot():
    """A lddw at the end of the code is an error naming the slot."""
    with pytest.raises(IsaError, match="insn 0: lddw is missing its second slot"):
        decode(bytes.fromhex("1801000000000000"))


def test_lddw_second_slot_must_be_zero():
    """The second slot of lddw may only carry imm."""
    with pytest.raises(IsaError, match="insn 1: second slot"):
        decode(bytes.fromhex("1801000000000000" + "0100000000000000"))


@pytest.mark.parametrize(
    ("insn", "message"),
    [
        (Insn(0xFF), "unknown opcode 0xff"),
        (Insn(0x8F), "unknown opcode 0x8f"),  # NEG with the X bit
        (Insn(0x07, 1, 2, 0, 1), "needs src in \\[0\\], got 2"),  # ALU K with src set
        (Insn(0x0F, 1, 2, 0, 5), "needs imm in \\[0\\], got 5"),  # ALU X with imm set
        (Insn(0x3F, 1, 2, 2, 0), "needs off in \\[0, 1\\], got 2"),  # div off other than 0/1
        (Insn(0xBC, 1, 2, 32, 0), "needs off in \\[0, 8, 16\\], got 32"),  # movsx32 from s32
        (Insn(0xD4, 1, 0, 0, 8), "needs imm in \\[16, 32, 64\\], got 8"),
        (Insn(0xDB, 1, 2, 0, 0x02), "needs imm in"),  # atomic op unknown
        (Insn(0x95, 0, 0, 0, 1), "needs imm in \\[0\\], got 1"),  # exit with imm
        (Insn(0x85, 0, 3, 0, 1), "needs src in \\[0, 1, 2\\], got 3"),  # call kind
        (Insn(0x05, 0, 0, 1, 7), "needs imm in \\[0\\], got 7"),  # ja with imm
        (Insn(0x06, 0, 0, 7, 1), "needs off in \\[0\\], got 7"),  # gotol with off
        (Insn(0x61, 11, 1, 0, 0), "bad dst register r11"),
        (Insn(0x18, 1, 7, 0, 0, 0), "needs src in \\[0, 1, 2, 3, 4, 5, 6\\], got 7"),
    ],
)
def test_validate_rejects(insn, message):
    """Reserved fields and unknown encodings are rejected with the reason."""
    with pytest.raises(IsaError, match=message):
        validate(insn, 3)


def test_validate_accepts_v4_forms():
    """sdiv/smod (off 1), movsx, bswap, sign-extending loads, gotol and atomics validate."""
    for insn in (Insn(0x3F, 1, 2, 1), Insn(0x9C, 1, 2, 1), Insn(0xBF, 1, 2, 32),
                 Insn(0xBC, 1, 2, 8), Insn(0xD7, 1, 0, 0, 64), Insn(0x91, 1, 2, -3),
                 Insn(0x06, 0, 0, 0, -70000), Insn(0xC3, 1, 2, 0, AtomicOp.CMPXCHG),
                 Insn(0xDB, 1, 2, 0, AtomicOp.XOR | AtomicOp.FETCH),
                 Insn(0x18, 1, PseudoSrc.MAP_IDX_VALUE, 0, 2, 16)):
        validate(insn)


def test_decode_rejects_partial_slot():
    """Code whose length is not a multiple of 8 is rejected."""
    with pytest.raises(IsaError, match="not a multiple of 8"):
        decode(b"\x95" * 9)


def test_decode_names_slot_index():
    """The error from a bad instruction in a stream names its slot (after a lddw)."""
    code = encode([lddw(1, 5), Insn(0xB7, 0, 0, 0, 0), Insn(0xFF)])
    with pytest.raises(IsaError, match="insn 3: unknown opcode 0xff"):
        decode(code)
