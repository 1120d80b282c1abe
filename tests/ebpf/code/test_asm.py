"""Tests for ebpf.code.asm: known encodings, errors, the round trip, conformance-style programs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpf.code.asm import assemble, assemble_insns, disassemble, format_insn, mnemonic
from ebpf.code.isa import OPCODES, Insn, decode, encode, validate
from ebpf.errors import AsmError, IsaError
from tests.budget import examples
from tests.ebpf.strategies import insn_streams, raw_insns, valid_insns

# Expected bytes are worked out by hand from RFC 9669: opcode, (src << 4 | dst), off (le16),
# imm (le32); a 64-bit load adds a slot whose only non-zero field is the upper imm.
KNOWN = [
    ("mov32 %r0, 0", "b4 00 0000 00000000"),
    ("mov %r1, %r2", "bf 21 0000 00000000"),
    ("mov r1, r2", "bf 21 0000 00000000"),
    ("mov %r0, -0x10", "b7 00 0000 f0ffffff"),
    ("add32 %r1, -1", "04 01 0000 ffffffff"),
    ("sub %r3, 0x7fffffff", "17 03 0000 ffffff7f"),
    ("arsh32 %r4, %r5", "cc 54 0000 00000000"),
    ("neg %r2", "87 02 0000 00000000"),
    ("neg32 %r2", "84 02 0000 00000000"),
    ("be16 %r1", "dc 01 0000 10000000"),
    ("le64 %r2", "d4 02 0000 40000000"),
    ("ldxb %r0, [%r1+2]", "71 10 0200 00000000"),
    ("ldxdw %r0, [%r1]", "79 10 0000 00000000"),
    ("stw [%r1+2], 0x11223344", "62 01 0200 44332211"),
    ("stdw [%r10-4], 0x88776655", "7a 0a fcff 55667788"),
    ("stxdw [%r10-8], %r1", "7b 1a f8ff 00000000"),
    ("lddw %r1, 0x123456789abcdef0", "18 01 0000 f0debc9a  00 00 0000 78563412"),
    ("lddw %r1, -1", "18 01 0000 ffffffff  00 00 0000 ffffffff"),
    ("lddw %r1, map_fd 3", "18 11 0000 03000000  00 00 0000 00000000"),
    ("lddw %r2, map_value 3, 8", "18 22 0000 03000000  00 00 0000 08000000"),
    ("lddw %r1, btf_id 42", "18 31 0000 2a000000  00 00 0000 00000000"),
    ("lddw %r1, map_idx 0", "18 51 0000 00000000  00 00 0000 00000000"),
    ("lddw %r1, map_idx_value 2, 16", "18 61 0000 02000000  00 00 0000 10000000"),
    ("ldabsh 12", "28 00 0000 0c000000"),
    ("ldindw %r1, 4", "40 10 0000 04000000"),
    ("ja +3", "05 00 0300 00000000"),
    ("ja -1", "05 00 ffff 00000000"),
    ("jne32 %r1, %r2, -2", "5e 21 feff 00000000"),
    ("jsle32 %r3, -5, +1", "d6 03 0100 fbffffff"),
    ("jset %r1, 0x80000000, +1", "45 01 0100 00000080"),
    ("call 1", "85 00 0000 01000000"),
    ("call helper 1", "85 00 0000 01000000"),
    ("call kfunc 7", "85 20 0000 07000000"),
    ("call runtime 7", "85 20 0000 07000000"),
    ("call local -3", "85 10 0000 fdffffff"),
    ("exit", "95 00 0000 00000000"),
    ("lock add [%r1+0], %r2", "db 21 0000 00000000"),
    ("lock fetch add [%r1], %r2", "db 21 0000 01000000"),
    ("lock xchg [%r1], %r2", "db 21 0000 e1000000"),
    ("lock cmpxchg32 [%r10-8], %r1", "c3 1a f8ff f1000000"),
    ("lock fetch xor32 [%r2+4], %r3", "c3 32 0400 a1000000"),
    ("lock or32 [%r2], %r3", "c3 32 0000 40000000"),
    ("sdiv %r1, 3", "37 01 0100 03000000"),
    ("smod32 %r1, %r2", "9c 21 0100 00000000"),
    ("movsx1632 %r0, %r1", "bc 10 1000 00000000"),
    ("movsx3264 %r2, %r3", "bf 32 2000 00000000"),
    ("ldxsh %r0, [%r1-2]", "89 10 feff 00000000"),
    ("ldxsw %r4, [%r5]", "81 54 0000 00000000"),
    ("bswap64 %r3", "d7 03 0000 40000000"),
    ("swap16 %r3", "d7 03 0000 10000000"),
    ("ja32 -1", "06 00 0000 ffffffff"),
    ("gotol +5", "06 00 0000 05000000"),
]


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("line", "expected"), KNOWN, ids=[line for line, _ in KNOWN])
def test_known_encoding(line: str, expected: str) -> None:
    """Each line assembles to the bytes the RFC's encoding rules give."""
    assert assemble(line) == hexbytes(expected)


def test_forward_label() -> None:
    """A forward label resolves to target - (pc + 1)."""
    code = assemble("jeq %r1, 0x10, out\nmov %r0, 1\nout: exit")
    assert code == hexbytes("15 01 0100 10000000  b7 00 0000 01000000  95 00 0000 00000000")


def test_backward_label() -> None:
    """A backward label gives a negative offset."""
    code = assemble("top:\n  add %r1, 1\n  jne %r1, %r2, top\n")
    assert code == hexbytes("07 01 0000 01000000  5d 21 feff 00000000")


def test_label_counts_lddw_as_two_slots() -> None:
    """Label positions are slot indices, so a 64-bit load in between counts twice."""
    code = assemble("ja end\nlddw %r0, 1\nend: exit")
    assert code[:8] == hexbytes("05 00 0200 00000000")


def test_call_local_label() -> None:
    """``call local fn`` puts fn - (pc + 1) in imm with src=1."""
    code = assemble("call local fn\nexit\nfn: mov %r0, 7\nexit")
    assert code[:8] == hexbytes("85 10 0000 01000000")


def test_lddw_func_label() -> None:
    """``lddw %r1, func fn`` is src=4 with the relative slot offset of fn in imm."""
    code = assemble("lddw %r1, func fn\nexit\nfn: exit")
    assert code[:16] == hexbytes("18 41 0000 02000000  00 00 0000 00000000")


def test_ja32_label() -> None:
    """A JMP32 JA takes its label offset in imm, not off."""
    assert assemble("back: exit\nja32 back")[8:] == hexbytes("06 00 0000 feffffff")


def test_implicit_exit_label() -> None:
    """A jump to 'exit' with no such label goes to the first exit, as in bpf_conformance."""
    code = assemble("jne %r0, %r1, exit\nmov %r0, 0\nexit\nexit")
    assert code[:8] == hexbytes("5d 10 0100 00000000")


def test_explicit_exit_label_wins() -> None:
    """A real 'exit:' label takes precedence over the implicit one."""
    code = assemble("ja exit\nexit\nexit: exit")
    assert code[:8] == hexbytes("05 00 0100 00000000")


def test_comments_blank_lines_and_shared_label_line() -> None:
    """'#' comments, blank lines and 'label: insn' on one line are accepted."""
    text = "# header\n\n  start: mov %r0, 1   # set\n\tja start # loop\n"
    assert assemble(text) == hexbytes("b7 00 0000 01000000  05 00 feff 00000000")


def test_numbers_decimal_hex_negative() -> None:
    """Immediates may be decimal, hex (either case), signed, or unsigned 32-bit spellings."""
    insns = assemble_insns("mov %r0, 10\nmov %r0, 0xFF\nmov %r0, -0x10\nmov %r0, 0xffffffff\n"
                           "mov %r0, +7\nmov %r0, 010")
    assert [i.imm for i in insns] == [10, 255, -16, -1, 7, 10]


def test_assemble_insns_returns_insns() -> None:
    """assemble_insns gives Insn objects, a 64-bit load as one Insn with next_imm."""
    insns = assemble_insns("lddw %r2, 0x100000001\nexit")
    assert insns == [Insn(0x18, 2, 0, 0, 1, 1), Insn(0x95)]


# --- errors -----------------------------------------------------------------------------------

ERRORS = [
    ("mov %r0, 1\nfoo %r1\nexit", r"^line 2: unknown mnemonic 'foo': foo %r1$"),
    ("lock nand [%r1], %r2", r"^line 1: unknown mnemonic 'lock nand'"),
    ("mov %r1", r"^line 1: 'mov' takes 2 operands, got 1: mov %r1$"),
    ("exit %r0", r"^line 1: 'exit' takes 0 operands, got 1"),
    ("mov %r1,", r"^line 1: empty operand"),
    ("add %r1, %x", r"^line 1: expected a number, got '%x'"),
    ("add foo, 1", r"^line 1: expected a register %r0-%r10, got 'foo'"),
    ("ldxw %r1, %r2", r"^line 1: expected a memory operand like \[%r1\+8\], got '%r2'"),
    ("movsx832 %r0, 5", r"^line 1: expected a register as source operand"),
    ("call bogus 3", r"^line 1: expected call helper, local, kfunc or a helper number"),
    ("lddw %r1, bogus 3", r"^line 1: expected a number or one of imm64, map_fd"),
    ("lddw %r1, 5, 6", r"^line 1: a plain 64-bit immediate takes no second value"),
    ("mov %r1, 0x100000000", r"^line 1: immediate 0x100000000 out of range"),
    ("mov %r1, -0x80000001", r"^line 1: immediate -0x80000001 out of range"),
    ("lddw %r1, 0x10000000000000000", r"^line 1: immediate 0x10000000000000000 out of range"),
    ("ldxw %r1, [%r2+40000]", r"^line 1: offset \+40000 out of range \[-32768, 32767\]"),
    ("stb [%r1-32769], 1", r"^line 1: offset -32769 out of range"),
    ("ja +32768", r"^line 1: jump offset \+32768 out of range"),
    ("exit\nja nowhere", r"^line 2: undefined label 'nowhere': ja nowhere$"),
    ("call local nowhere", r"^line 1: undefined label 'nowhere'"),
    ("a: exit\na: exit", r"^line 2: duplicate label 'a' \(first defined on line 1\): a: exit$"),
    ("mov %r11, 1", r"^line 1: insn 0: bad dst register r11 \(opcode 0xb7\): mov %r11, 1$"),
    ("exit\nstxw [%r1], %r12", r"^line 2: insn 1: bad src register r12"),
    ("mov %r16, 1", r"^line 1: expected a register %r0-%r10, got '%r16'"),
]


@pytest.mark.parametrize(("text", "pattern"), ERRORS, ids=[t for t, _ in ERRORS])
def test_error(text: str, pattern: str) -> None:
    """Bad input raises AsmError naming the line, the problem and the source text."""
    with pytest.raises(AsmError, match=pattern):
        assemble(text)


def test_label_out_of_range() -> None:
    """A label further than a 16-bit off can reach is an error on the jumping line."""
    text = "ja far\n" + "exit\n" * 40000 + "far: exit\n"
    with pytest.raises(AsmError, match=r"^line 1: label 'far' is 40000 slots away, beyond a "
                                       r"16-bit off: ja far$"):
        assemble(text)


def test_label_out_of_range_ok_for_ja32() -> None:
    """The same distance is fine for ja32, whose target is a 32-bit imm."""
    code = assemble("ja32 far\n" + "exit\n" * 40000 + "far: exit\n")
    assert code[:8] == hexbytes("06 00 0000 409c0000")


def test_check_false_skips_validation() -> None:
    """With check=False an invalid register assembles (for negative tests)."""
    assert assemble("mov %r11, 1", check=False) == hexbytes("b7 0b 0000 01000000")


# --- printer ----------------------------------------------------------------------------------


def test_format_insn_spelling() -> None:
    """The printer uses %rN, [%rN+off], signed relative targets and mnemonic variants."""
    text = ("mov32 %r0, 0\nldxb %r0, [%r1+2]\nstxdw [%r10-8], %r1\njeq %r1, 16, +1\n"
            "lock fetch add32 [%r10], %r1\nsdiv %r1, 3\nmovsx832 %r0, %r1\ncall local -3\n"
            "lddw %r2, map_value 3, 8\nlddw %r1, 0x123456789abcdef0\nbe16 %r1\nja32 +0\n"
            "call 1\nexit\n")
    assert [format_insn(i) for i in assemble_insns(text)] == text.splitlines()


def test_format_insn_index_notes_target() -> None:
    """Given its slot index, a jump is annotated with the absolute target slot."""
    assert format_insn(Insn(0x05, off=-2), 7) == "ja -2  # -> 6"
    assert format_insn(Insn(0xB7, imm=1), 7) == "mov %r0, 1"


def test_format_insn_rejects_invalid() -> None:
    """The printer only prints valid instructions."""
    with pytest.raises(IsaError, match="needs src in"):
        format_insn(Insn(0x07, src=1))


def test_disassemble_bytes_and_insns_agree() -> None:
    """disassemble() takes bytecode or Insn objects and prints one line per instruction."""
    code = assemble("lddw %r1, 1\nja -3\nexit")
    assert disassemble(code) == disassemble(decode(code))
    assert disassemble(code) == "lddw %r1, 0x1\nja -3  # -> 0\nexit\n"
    assert disassemble(b"") == ""


def test_mnemonic_of_variants() -> None:
    """mnemonic() picks the spelling from the variant field (off, imm)."""
    assert mnemonic(Insn(0x3F, off=1)) == "sdiv"
    assert mnemonic(Insn(0xD4, imm=32)) == "le32"
    assert mnemonic(Insn(0xC3, imm=0xF1)) == "lock cmpxchg32"


# --- properties -------------------------------------------------------------------------------


@given(insn_streams())
def test_roundtrip_streams(stream: list[Insn]) -> None:
    """assemble(disassemble(code)) == code and decode(code) == stream for valid streams."""
    code = encode(stream)
    assert decode(code) == stream
    assert assemble(disassemble(code)) == code


@pytest.mark.parametrize("opcode", sorted(OPCODES), ids=lambda op: f"0x{op:02x}")
@settings(max_examples=examples(15), deadline=None)
@given(data=st.data())
def test_roundtrip_every_opcode(opcode: int, data: st.DataObject) -> None:
    """Every opcode in OPCODES prints to text that assembles back to the same instruction."""
    insn = data.draw(valid_insns(opcode))
    validate(insn)
    assert assemble_insns(format_insn(insn)) == [insn]


@settings(max_examples=examples(500))
@given(raw_insns())
def test_anything_validate_accepts_prints(insn: Insn) -> None:
    """Any field combination validate accepts has a spelling that assembles back to it."""
    try:
        validate(insn)
    except IsaError:
        return
    assert assemble_insns(format_insn(insn)) == [insn]


# --- bpf_conformance-style programs -------------------------------------------------------------


def asm_section(data: str) -> str:
    """The text of the '-- asm' section of a bpf_conformance .data file."""
    section = data.split("-- asm", 1)[1]
    return section.split("\n-- ", 1)[0]


SUM_VIA_LOCAL_CALL = """\
# r1-r5 are arguments; the callee sums them
-- asm
mov %r1, 1
mov %r2, 2
mov %r3, 3
mov %r4, 4
mov %r5, 5
mov %r6, 6
call local sum
jne %r6, 6, fail      # callee-saved register survives
exit
fail:
mov %r0, -1
exit
sum:
mov %r0, %r1
add %r0, %r2
add %r0, %r3
add %r0, %r4
add %r0, %r5
mov %r6, 0
exit
-- result
0xf
"""

COUNT_DOWN_LOOP = """\
-- asm
mov32 r0, 0
mov32 r1, 10
loop:
add32 r0, r1
sub32 r1, 1
jne32 r1, 0, loop
jgt r0, 55, exit      # implicit label: the first exit
lddw r2, 0xffffffff00000000
or r0, r2
rsh r0, 32
exit
-- result
0xffffffff
"""

STACK_ATOMICS = """\
-- asm
lddw %r0, 0x123456789abcdef0
stxdw [%r10-8], %r0
mov %r1, 1
lock add [%r10-8], %r1
lock fetch add32 [%r10-8], %r1
lock fetch or [%r10-8], %r1
lock and32 [%r10-8], %r1
lock xchg [%r10-8], %r1    # memory is now 1
mov %r0, 1
mov %r2, 7
lock cmpxchg32 [%r10-8], %r2
ldxdw %r0, [%r10-8]
exit
-- result
0x7
"""

V4_OPS = """\
-- asm
mov %r1, -7
sdiv %r1, 2           # -3
smod32 %r1, 2
lddw %r2, 0x00000000000080ff
movsx832 %r3, %r2
movsx1664 %r4, %r2
stxw [%r10-4], %r2
ldxsb %r5, [%r10-4]
ldxsh %r6, [%r10-4]
bswap16 %r2
ja32 +1
exit
gotol skip
exit
skip:
mov %r0, %r6
exit
-- result
0xffffffffffff80ff
"""

PROGRAMS = {
    "sum_via_local_call": (SUM_VIA_LOCAL_CALL, 18),
    "count_down_loop": (COUNT_DOWN_LOOP, 11),
    "stack_atomics": (STACK_ATOMICS, 14),
    "v4_ops": (V4_OPS, 17),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_conformance_style_program(name: str) -> None:
    """A small program in bpf_conformance's '-- asm' style assembles, validates, round-trips."""
    data, slots = PROGRAMS[name]
    code = assemble(asm_section(data))
    assert len(code) == 8 * slots
    insns = decode(code)  # validates every instruction
    assert assemble(disassemble(insns)) == code


def test_conformance_program_targets() -> None:
    """Labels in the conformance-style programs land where a hand count says."""
    call = assemble_insns(asm_section(SUM_VIA_LOCAL_CALL))[6]
    assert (call.src, call.imm) == (1, 4)  # slot 6 -> sum at slot 11
    loop = assemble_insns(asm_section(COUNT_DOWN_LOOP))
    assert loop[4].off == -3  # jne32 at slot 4 -> loop at slot 2
    assert loop[5].off == 4  # jgt at slot 5 -> first exit at slot 10 (lddw is two slots)
    v4 = assemble_insns(asm_section(V4_OPS))
    assert (v4[10].opcode, v4[10].imm) == (0x06, 1)  # ja32 at slot 11 -> slot 13
    assert (v4[12].opcode, v4[12].imm) == (0x06, 1)  # gotol at slot 13 -> skip at slot 15
