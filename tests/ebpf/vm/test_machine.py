"""The reference VM: one small test per ISA corner, expected values worked out by hand.

Each expectation comes from the RFC 9669 text or kernel/bpf/core.c + verifier.c
(do_misc_fixups), not from running the VM twice.
"""

from __future__ import annotations

import pytest

from ebpf.code.asm import assemble_insns
from ebpf.errors import VmError
from ebpf.kernel_enums import MAP_TYPE_IDS
from ebpf.loader.program import Function, MapDef, ProgramDef, SourceLine
from ebpf.vm.limits import MAX_TAIL_CALL_CNT
from ebpf.vm.machine import Vm

M64 = (1 << 64) - 1


def prog(text: str, name: str = "t", lines: dict[int, SourceLine] | None = None) -> ProgramDef:
    insns = assemble_insns(text)
    p = ProgramDef(name, "xdp", "xdp", insns, [], lines or {}, [])
    p.functions = [Function(name, 0, p.num_slots, "xdp")]
    return p


def run(text: str, mem: bytes = b"", maps: list | None = None, **kw):
    return Vm(maps or [], prog(text), **kw).run(mem)


def r0(text: str) -> int:
    return run(text + "\nexit").ret


# --- ALU ----------------------------------------------------------------------------------

def test_add64_wraps():
    """64-bit add wraps modulo 2**64."""
    assert r0("lddw %r0, 0xffffffffffffffff\nadd %r0, 2") == 1


def test_alu32_zero_extends():
    """A 32-bit op clears the upper half of the destination."""
    assert r0("lddw %r0, 0x1234567800000001\nadd32 %r0, 1") == 2


def test_mov32_imm_zero_extends_and_mov64_sign_extends():
    """mov32 -1 gives 0xffffffff; mov (64) -1 gives all ones."""
    assert r0("mov32 %r0, -1") == 0xFFFFFFFF
    assert r0("mov %r0, -1") == M64


def test_div64_by_zero_is_zero():
    """Division by a zero register gives 0."""
    assert r0("mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1") == 0


def test_div32_by_zero_low_bits_is_zero():
    """ALU32 division looks only at the low 32 bits of src: 1<<32 counts as zero."""
    assert r0("mov %r0, 7\nlddw %r1, 0x100000000\ndiv32 %r0, %r1") == 0


def test_mod64_by_zero_leaves_dst():
    """Modulo by zero leaves a 64-bit destination unchanged."""
    assert r0("lddw %r0, 0x1234567890\nmov %r1, 0\nmod %r0, %r1") == 0x1234567890


def test_mod32_by_zero_zero_extends_dst():
    """ALU32 modulo by zero keeps dst's low 32 bits and clears the upper half."""
    assert r0("lddw %r0, 0xaaaaaaaa12345678\nmov %r1, 0\nmod32 %r0, %r1") == 0x12345678


def test_sdiv64_int_min_by_minus_one():
    """LLONG_MIN sdiv -1 is LLONG_MIN (the verifier rewrites it to neg)."""
    assert r0("lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1") == 1 << 63


def test_sdiv32_int_min_by_minus_one():
    """INT_MIN sdiv32 -1 is INT_MIN, zero-extended."""
    assert r0("mov32 %r0, 0x80000000\nsdiv32 %r0, -1") == 0x80000000


def test_sdiv_truncates_toward_zero():
    """-7 sdiv 2 is -3 (C semantics), not -4."""
    assert r0("mov %r0, -7\nsdiv %r0, 2") == (-3) & M64


def test_sdiv_by_zero_is_zero():
    """Signed division by zero also gives 0."""
    assert r0("mov %r0, -7\nmov %r1, 0\nsdiv %r0, %r1") == 0


def test_smod_sign_follows_dividend():
    """-7 smod 2 = -1 and 7 smod -2 = 1."""
    assert r0("mov %r0, -7\nsmod %r0, 2") == M64
    assert r0("mov %r0, 7\nsmod %r0, -2") == 1


def test_smod_by_minus_one_is_zero():
    """x smod -1 is 0, including LLONG_MIN."""
    assert r0("lddw %r0, 0x8000000000000000\nsmod %r0, -1") == 0


def test_smod_by_zero_leaves_dst():
    """Signed modulo by zero leaves dst (64-bit) unchanged."""
    assert r0("mov %r0, -7\nmov %r1, 0\nsmod %r0, %r1") == (-7) & M64


def test_smod32_negative_zero_extends():
    """-7 smod32 3 is -1 as a u32: 0xffffffff, upper half clear."""
    assert r0("mov %r0, -7\nsmod32 %r0, 3") == 0xFFFFFFFF


def test_lsh64_amount_masked_to_63():
    """A register shift by 65 shifts by 1."""
    assert r0("mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1") == 2


def test_lsh32_amount_masked_to_31():
    """A 32-bit register shift by 33 shifts by 1 and zero-extends."""
    assert r0("lddw %r0, 0xffffffff80000001\nmov %r1, 33\nlsh32 %r0, %r1") == 2


def test_rsh32_ignores_upper_half():
    """rsh32 shifts only the low 32 bits."""
    assert r0("lddw %r0, 0xffffffff00000010\nrsh32 %r0, 4") == 1


def test_arsh64_sign_fills():
    """Arithmetic shift right keeps the sign."""
    assert r0("lddw %r0, 0x8000000000000000\narsh %r0, 63") == M64


def test_arsh32_sign_fills_then_zero_extends():
    """arsh32 of 0x80000000 by 4 is 0xf8000000 with the upper half clear."""
    assert r0("mov32 %r0, 0x80000000\narsh32 %r0, 4") == 0xF8000000


def test_neg32_zero_extends():
    """neg32 of 1 is 0xffffffff."""
    assert r0("mov %r0, 1\nneg32 %r0") == 0xFFFFFFFF


def test_movsx_64():
    """movsx8/16/32 to 64 bits sign-extend the low byte/half/word."""
    assert r0("mov %r1, 0x80\nmovsx864 %r0, %r1") == 0xFFFFFFFFFFFFFF80
    assert r0("mov %r1, 0x7fff\nmovsx1664 %r0, %r1") == 0x7FFF
    assert r0("mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1") == 0xFFFFFFFF80000000


def test_movsx_32_zero_extends():
    """movsx8 to 32 bits sign-extends to 32 and clears the upper half."""
    assert r0("mov %r1, 0xff\nmovsx832 %r0, %r1") == 0xFFFFFFFF
    assert r0("mov %r1, 0x8000\nmovsx1632 %r0, %r1") == 0xFFFF8000


def test_bswap():
    """bswap16/32/64 reverse the low bytes and drop the rest."""
    assert r0("lddw %r0, 0x0123456789abcdef\nbswap16 %r0") == 0xEFCD
    assert r0("lddw %r0, 0x0123456789abcdef\nbswap32 %r0") == 0xEFCDAB89
    assert r0("lddw %r0, 0x0123456789abcdef\nbswap64 %r0") == 0xEFCDAB8967452301


def test_le_truncates_be_swaps():
    """On little-endian, le16 truncates and be16/be32 swap."""
    assert r0("lddw %r0, 0x0123456789abcdef\nle16 %r0") == 0xCDEF
    assert r0("lddw %r0, 0x0123456789abcdef\nle64 %r0") == 0x0123456789ABCDEF
    assert r0("lddw %r0, 0x0123456789abcdef\nbe16 %r0") == 0xEFCD
    assert r0("lddw %r0, 0x0123456789abcdef\nbe32 %r0") == 0xEFCDAB89


def test_lddw_loads_64_bits():
    """lddw loads a full 64-bit immediate."""
    assert r0("lddw %r0, 0xfedcba9876543210") == 0xFEDCBA9876543210


# --- jumps --------------------------------------------------------------------------------

def test_jgt_unsigned_vs_jsgt_signed():
    """-1 is greater than 1 unsigned, smaller signed."""
    src = "mov %r0, 0\nmov %r1, -1\njgt %r1, 1, +1\nexit\nmov %r0, 1\njsgt %r1, 1, +1\nexit\nmov %r0, 2"
    assert r0(src) == 1


def test_jmp_imm_is_sign_extended():
    """jeq r, -1 compares with 0xffffffffffffffff."""
    assert r0("mov %r0, 0\nmov %r1, -1\njeq %r1, -1, +1\nexit\nmov %r0, 1") == 1


def test_jmp32_compares_low_half():
    """jeq32 ignores the upper 32 bits; jeq (64) does not."""
    src = ("mov %r0, 0\nlddw %r1, 0x1ffffffff\njeq %r1, -1, +2\njeq32 %r1, -1, +1\nexit\n"
           "mov %r0, 1")
    assert r0(src) == 1


def test_jset():
    """jset jumps when dst & src is non-zero."""
    assert r0("mov %r0, 0\nmov %r1, 6\njset %r1, 1, +1\nmov %r0, 1") == 1
    assert r0("mov %r0, 0\nmov %r1, 6\njset %r1, 2, +1\nmov %r0, 1") == 0


def test_jslt32_signed_low_half():
    """jslt32 treats 0x80000000 as negative."""
    assert r0("mov %r0, 0\nmov32 %r1, 0x80000000\njslt32 %r1, 0, +1\nexit\nmov %r0, 1") == 1


def test_gotol_uses_imm():
    """ja32 (gotol) takes its offset from imm."""
    assert r0("mov %r0, 1\nja32 +1\nmov %r0, 2") == 1


def test_path_records_block_starts():
    """The path lists the entry and every slot control lands on after a branch."""
    t = run("mov %r0, 0\njeq %r0, 0, +1\nmov %r0, 1\njne %r0, 0, +1\nexit\nexit")
    assert t.path == [0, 3, 4]
    assert t.insns == 4  # slots 0, 1, 3, 4


# --- loads, stores, atomics ----------------------------------------------------------------

def test_sign_extending_loads():
    """ldxsb/ldxsh/ldxsw sign-extend; ldxb zero-extends."""
    mem = bytes([0x80, 0xFF, 0x00, 0x80])
    assert run("ldxsb %r0, [%r1+0]\nexit", mem).ret == 0xFFFFFFFFFFFFFF80
    assert run("ldxsh %r0, [%r1+0]\nexit", mem).ret == 0xFFFFFFFFFFFFFF80
    assert run("ldxsw %r0, [%r1+0]\nexit", mem).ret == 0xFFFFFFFF8000FF80 & 0xFFFFFFFFFFFFFFFF
    assert run("ldxb %r0, [%r1+0]\nexit", mem).ret == 0x80


def test_st_imm_truncates_and_sign_extends():
    """stdw stores the sign-extended imm; stb stores its low byte."""
    t = run("stdw [%r1+0], -2\nstb [%r1+8], 0x1ff\nexit", bytes(9))
    assert t.packet_out == bytes([0xFE] + [0xFF] * 7 + [0xFF])


def test_stack_roundtrip():
    """A value stored at fp-8 loads back."""
    assert r0("lddw %r1, 0x1122334455667788\nstxdw [%r10-8], %r1\nldxdw %r0, [%r10-8]") == \
        0x1122334455667788


def test_atomic_add_and_fetch_add():
    """lock add adds; lock fetch add puts the old value in src."""
    src = ("stdw [%r10-8], 40\nmov %r1, 2\nlock add [%r10-8], %r1\nmov %r2, 5\n"
           "lock fetch add [%r10-8], %r2\nldxdw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r2")
    assert r0(src) == (47 << 8) | 42


def test_atomic_fetch_or_and_xor():
    """fetch or/and/xor return the old value and store the result."""
    assert r0("stdw [%r10-8], 0xc\nmov %r0, 3\nlock fetch or [%r10-8], %r0\n"
              "ldxdw %r1, [%r10-8]\nlsh %r1, 8\nor %r0, %r1") == (0xF << 8) | 0xC
    assert r0("stdw [%r10-8], 0xc\nmov %r0, 6\nlock fetch and [%r10-8], %r0\n"
              "ldxdw %r1, [%r10-8]\nlsh %r1, 8\nor %r0, %r1") == (0x4 << 8) | 0xC
    assert r0("stdw [%r10-8], 0xc\nmov %r0, 6\nlock fetch xor [%r10-8], %r0\n"
              "ldxdw %r1, [%r10-8]\nlsh %r1, 8\nor %r0, %r1") == (0xA << 8) | 0xC


def test_atomic_fetch_add32_zero_extends():
    """A 32-bit fetch add returns the old word zero-extended and touches only 4 bytes."""
    prefix = "stdw [%r10-8], -1\nlddw %r0, 0x1234567800000001\nlock fetch add32 [%r10-8], %r0\n"
    assert r0(prefix) == 0xFFFFFFFF  # old low word, upper half of r0 cleared
    # low word wrapped to 0, high word untouched
    assert r0(prefix + "ldxdw %r0, [%r10-8]") == 0xFFFFFFFF00000000


def test_atomic_xchg():
    """xchg stores src and returns the old value in src."""
    assert r0("stdw [%r10-8], 7\nmov %r0, 9\nlock xchg [%r10-8], %r0\nldxdw %r1, [%r10-8]\n"
              "lsh %r1, 8\nor %r0, %r1") == (9 << 8) | 7


def test_atomic_cmpxchg_success_and_failure():
    """cmpxchg stores only when r0 matches memory and always returns the old value in r0."""
    ok = r0("stdw [%r10-8], 7\nmov %r0, 7\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\n"
            "ldxdw %r2, [%r10-8]\nlsh %r2, 8\nor %r0, %r2")
    assert ok == (9 << 8) | 7
    bad = r0("stdw [%r10-8], 7\nmov %r0, 8\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\n"
             "ldxdw %r2, [%r10-8]\nlsh %r2, 8\nor %r0, %r2")
    assert bad == (7 << 8) | 7


def test_atomic_cmpxchg32_compares_low_half_of_r0():
    """cmpxchg32 compares (u32) r0 and loads the old word zero-extended."""
    src = ("stw [%r10-8], 7\nlddw %r0, 0xabcdef0000000007\nmov %r1, 9\n"
           "lock cmpxchg32 [%r10-8], %r1\nldxw %r2, [%r10-8]\nlsh %r2, 32\nor %r0, %r2")
    assert r0(src) == (9 << 32) | 7


# --- calls --------------------------------------------------------------------------------

def test_local_call_preserves_callee_saved_registers():
    """r6-r9 survive a bpf-to-bpf call whose callee overwrites them."""
    src = """
mov %r6, 1
mov %r9, 4
mov %r1, 10
call local f
add %r0, %r6
add %r0, %r9
exit
f:
mov %r6, 100
mov %r9, 100
mov %r0, %r1
exit
"""
    assert run(src).ret == 15


def test_stack_frames_are_isolated():
    """A callee's fp-8 is its own; a pointer to the caller's frame reaches the caller's."""
    src = """
stdw [%r10-8], 1
mov %r1, %r10
add %r1, -8
call local f
ldxdw %r0, [%r10-8]
exit
f:
stdw [%r10-8], 50
ldxdw %r2, [%r10-8]
stxdw [%r1+0], %r2
ldxdw %r3, [%r1+0]
add %r3, 1
stxdw [%r1+0], %r3
exit
"""
    assert run(src).ret == 51


def test_callee_stack_starts_zeroed():
    """A new frame reads as zeros even after an earlier call used it."""
    src = """
call local f
call local g
exit
f:
stdw [%r10-8], 99
exit
g:
ldxdw %r0, [%r10-8]
exit
"""
    assert run(src).ret == 0


def _nested_calls(depth: int) -> str:
    lines = []
    for i in range(depth):
        lines += [f"f{i}:", f"call local f{i + 1}", "exit"]
    lines += [f"f{depth}:", "mov %r0, 7", "exit"]
    return "\n".join(["call local f0", "exit"] + lines)


def test_call_depth_limit():
    """Eight frames (main + 7 calls) run; a ninth is refused like MAX_CALL_FRAMES does."""
    assert run(_nested_calls(6)).ret == 7  # main, f0..f6: 8 frames
    with pytest.raises(VmError, match="9 frames is too deep"):
        run(_nested_calls(7))


def _tail_setup(body: str, slots: dict[int, str]) -> Vm:
    """A VM with a prog_array (map 0) and a counter array (map 1), programs by name."""
    progs: dict[str, ProgramDef] = {}
    jmp = MapDef("jmp", MAP_TYPE_IDS["prog_array"], 4, 4, 4, values=slots)
    counter = MapDef("cnt", MAP_TYPE_IDS["array"], 4, 8, 1)
    progs["entry"] = prog(body, name="entry")
    return Vm([jmp, counter], progs["entry"], resolver=lambda name: progs[name])


TAIL_SELF = """
mov %r6, %r1
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx 1
call 1
jeq %r0, 0, out
mov %r1, 1
lock add [%r0+0], %r1
mov %r1, %r6
lddw %r2, map_idx 0
mov %r3, 0
call 12
mov %r0, 77
exit
out:
mov %r0, 1
exit
"""


def test_tail_call_limit_is_33():
    """A self tail call runs 1 + 33 times, then the 34th attempt falls through."""
    vm = _tail_setup(TAIL_SELF, {0: "entry"})
    t = vm.run()
    assert t.ret == 77
    assert int.from_bytes(vm.maps[1].lookup(bytes(4)), "little") == MAX_TAIL_CALL_CNT + 1
    assert [tc.target for tc in t.tail_calls] == ["entry"] * 33 + [None]


def test_tail_call_to_empty_slot_falls_through():
    """An empty PROG_ARRAY slot continues after the call with r0 unchanged."""
    vm = _tail_setup("mov %r0, 5\nlddw %r2, map_idx 0\nmov %r3, 2\ncall 12\nexit", {})
    t = vm.run()
    assert t.ret == 5
    assert t.tail_calls[0].target is None


def test_tail_call_index_beyond_max_entries_falls_through():
    """An index >= max_entries falls through."""
    vm = _tail_setup("mov %r0, 6\nlddw %r2, map_idx 0\nmov %r3, 4\ncall 12\nexit", {0: "x"})
    assert vm.run().ret == 6


def test_tail_call_switches_program_keeping_registers():
    """The target program starts at slot 0 with the caller's registers."""
    progs = {"b": prog("mov %r0, %r7\nadd %r0, 1\nexit", name="b")}
    jmp = MapDef("jmp", MAP_TYPE_IDS["prog_array"], 4, 4, 2, values={1: "b"})
    entry = prog("mov %r7, 41\nlddw %r2, map_idx 0\nmov %r3, 1\ncall 12\nmov %r0, 0\nexit",
                 name="a")
    vm = Vm([jmp], entry, resolver=progs.__getitem__)
    t = vm.run()
    assert t.ret == 42
    assert t.tail_calls[0].target == "b"
    assert t.path == [0, 0]


# --- helpers and faults -----------------------------------------------------------------

def test_helper_call_recorded():
    """A helper call is traced with its id, name, arguments and return value."""
    t = run("mov %r0, 0\ncall 8\nexit")
    assert [(c.id, c.name, c.args, c.ret) for c in t.helper_calls] == \
        [(8, "get_smp_processor_id", [], 0)]


def test_unknown_helper_names_id_and_name():
    """An unimplemented helper raises VmError with its id, name and slot."""
    with pytest.raises(VmError, match=r"insn 1.*helper 9 \(bpf_skb_store_bytes\)"):
        run("mov %r0, 0\ncall 9\nexit")


def test_kfunc_unsupported():
    """kfunc calls raise VmError."""
    with pytest.raises(VmError, match="kfunc"):
        run("call kfunc 5\nexit")


def test_instruction_budget():
    """An endless loop stops at the budget with VmError."""
    with pytest.raises(VmError, match="insn 0.*instruction budget of 1000 exceeded"):
        run("ja -1\nexit", budget=1000)


def test_fall_off_end():
    """Running past the last instruction is an error."""
    with pytest.raises(VmError, match="fell off the end"):
        run("mov %r0, 0")


def test_error_names_source_line():
    """A fault names the slot and the C line from the program's line info."""
    p = prog("mov %r0, 0\nmov %r1, 0\nmov %r2, 1\nldxw %r0, [%r1+0]\nexit",
             lines={0: SourceLine("prog.c", 10), 3: SourceLine("prog.c", 42)})
    with pytest.raises(VmError, match=r"insn 3 \(prog.c:42\): null pointer"):
        Vm([], p).run()


def test_bad_jump_target_rejected_at_load():
    """A jump outside the program is refused when the VM is built."""
    with pytest.raises(VmError, match="insn 0.*jump target 5"):
        Vm([], prog("ja +4\nexit"))


def test_bpf_loop_calls_callback():
    """bpf_loop(5, cb, ctx, 0) calls cb(i, ctx) five times and returns 5."""
    src = """
stdw [%r10-8], 0
mov %r1, 5
lddw %r2, func cb
mov %r3, %r10
add %r3, -8
mov %r4, 0
call 181
ldxdw %r1, [%r10-8]
lsh %r0, 8
or %r0, %r1
exit
cb:
ldxdw %r3, [%r2+0]
add %r3, %r1
stxdw [%r2+0], %r3
mov %r0, 0
exit
"""
    assert run(src).ret == (5 << 8) | (0 + 1 + 2 + 3 + 4)


def test_bpf_loop_stops_when_callback_returns_one():
    """A callback returning 1 at i = 2 stops the loop; the result is i + 1 = 3."""
    src = """
mov %r1, 10
lddw %r2, func cb
mov %r3, 0
mov %r4, 0
call 181
exit
cb:
mov %r0, 0
jne %r1, 2, +1
mov %r0, 1
exit
"""
    assert run(src).ret == 3


def test_ld_abs_big_endian_and_out_of_range_exit():
    """LD_ABS reads big-endian; past the end the program returns 0."""
    mem = bytes([0x12, 0x34, 0x56, 0x78])
    assert run("ldabsh 1\nexit", mem).ret == 0x3456
    assert run("mov %r0, 9\nldabsw 1\nmov %r0, 5\nexit", mem).ret == 0
    assert run("mov %r1, 2\nldindb %r1, 1\nexit", mem).ret == 0x78


def test_tail_call_from_subprogram_returns_to_its_caller():
    """A tail call in a sub-program replaces it; the caller gets the target's r0 (x86 JIT)."""
    progs = {"b": prog("mov %r0, 5\nexit", name="b")}
    jmp = MapDef("jmp", MAP_TYPE_IDS["prog_array"], 4, 4, 1, values={0: "b"})
    entry = prog("call local f\nadd %r0, 1\nexit\nf:\nlddw %r2, map_idx 0\nmov %r3, 0\n"
                 "call 12\nmov %r0, 100\nexit", name="a")
    t = Vm([jmp], entry, resolver=progs.__getitem__).run()
    assert t.ret == 6
    assert t.path == [0, 3, 0, 1]  # entry, f, b's entry, back in a after the call


def test_path_records_calls_and_returns():
    """A bpf-to-bpf call adds the callee entry and the return slot to the path."""
    t = run("call local f\nexit\nf:\nmov %r0, 3\nexit")
    assert (t.ret, t.path) == (3, [0, 2, 1])


def test_trace_is_json_serialisable():
    """Trace.to_dict() survives json.dumps, bytes as hex."""
    import json

    m = MapDef("m", MAP_TYPE_IDS["hash"], 4, 4, 4)
    t = run("stw [%r10-4], 0x01020304\nlddw %r1, map_idx 0\nmov %r2, %r10\nadd %r2, -4\n"
            "call 1\nexit", maps=[m])
    doc = json.loads(json.dumps(t.to_dict()))
    assert doc["map_ops"][0]["key"] == "04030201"
    assert doc["helper_calls"][0]["name"] == "map_lookup_elem"
