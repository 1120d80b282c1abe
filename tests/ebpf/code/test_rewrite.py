"""ebpf.code.rewrite: insert_at's offset fix-ups on hand-built programs, inject_clock on the
corpus, clock_state; the kernel side of the clock is in test_kernel_raw.py."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ebpf.code.asm import assemble_insns, disassemble
from ebpf.code.isa import LDDW_OPCODE, CallKind, Insn, Kind, PseudoSrc, slot_offsets
from ebpf.code.rewrite import (
    CLOCK_MAP,
    RewriteError,
    clock_reads,
    clock_state,
    inject_clock,
    insert_at,
    jump_target,
)
from ebpf.helpers.core import HelperEnv
from ebpf.loader.elf import load
from ebpf.loader.program import Function, ProgramDef, SourceLine
from ebpf.maps.state import dump_state
from ebpf.vm.machine import Vm
from tests.conftest import corpus_object

THREE = assemble_insns("mov %r0, 7\nmov %r1, 8\nmov %r2, 9")  # 3 slots for 1: delta +2


def make(text: str, functions: list[tuple[str, int, int]] | None = None,
         lines: dict[int, int] | None = None) -> ProgramDef:
    """A ProgramDef from assembler text; functions as (name, start, size), lines as slot ->
    line number (file "t.c")."""
    insns = assemble_insns(text)
    total = sum(i.slots for i in insns)
    funcs = [Function(n, s, z, ".text") for n, s, z in functions or [("main", 0, total)]]
    return ProgramDef("main", "xdp", "xdp", insns, funcs,
                      {s: SourceLine("t.c", n) for s, n in (lines or {}).items()}, [],
                      own_slots=funcs[0].size)


def listing(prog: ProgramDef) -> list[str]:
    """One line per instruction as the disassembler prints it (jumps as +N / -N)."""
    return disassemble(prog.insns).splitlines()


def targets(prog: ProgramDef) -> dict[int, int]:
    """slot -> the slot it jumps to / calls, for every instruction with a relative field."""
    out = {}
    for insn, at in zip(prog.insns, slot_offsets(prog.insns), strict=True):
        target = jump_target(insn, at)
        if target is not None:
            out[at] = target
    return out


# -- insert_at: jumps ------------------------------------------------------------------------
def test_forward_jump_across_the_patch_grows_by_delta():
    """A forward jump over the patched slot gains the two extra slots: +3 becomes +5."""
    prog = make("jeq %r1, 0, +3\nmov %r0, 1\ncall 5\nmov %r0, 2\nexit")
    out = insert_at(prog, 2, THREE)
    assert out.insns[0].off == 5
    assert targets(out) == {0: 6}
    assert out.insns[6].kind is Kind.EXIT


def test_backward_jump_across_the_patch_grows_by_delta():
    """A backward jump from after the patch to before it: -4 becomes -6."""
    prog = make("mov %r0, 0\nadd %r0, 1\ncall 5\nmov %r1, 1\nja -4\nexit")
    out = insert_at(prog, 2, THREE)
    assert out.insns[6].off == -6
    assert targets(out) == {6: 1}


def test_jumps_that_do_not_cross_keep_their_offsets():
    """Jumps entirely before or entirely after the patched slot are unchanged."""
    prog = make("jeq %r1, 0, +1\nmov %r0, 1\ncall 5\njne %r1, 0, +1\nmov %r0, 2\nexit")
    out = insert_at(prog, 2, THREE)
    assert (out.insns[0].off, out.insns[5].off) == (1, 1)
    assert targets(out) == {0: 2, 5: 7}


def test_jump_to_the_patched_slot_lands_on_the_new_code():
    """A jump into the patch (to the replaced slot) reaches the first new instruction, from
    before (offset unchanged) and from after (offset shrinks by delta)."""
    prog = make("jeq %r1, 0, +1\nmov %r0, 1\ncall 5\njne %r1, 0, -2\nexit")
    out = insert_at(prog, 2, THREE)
    assert out.insns[0].off == 1
    assert out.insns[5].off == -4
    assert targets(out) == {0: 2, 5: 2}
    assert out.insns[2] == THREE[0]


def test_jump_to_the_slot_after_the_patch_follows_it():
    """A jump to the instruction right after the replaced one still reaches it."""
    prog = make("jeq %r1, 0, +2\nmov %r0, 1\ncall 5\nexit")
    out = insert_at(prog, 2, THREE)
    assert out.insns[0].off == 4
    assert out.insns[targets(out)[0]].kind is Kind.EXIT


def test_jumps_inside_the_new_code_count_new_slots():
    """Jumps in new_insns are taken as they stand: one leaving the new code (+3 past its
    end) is not re-based, one inside it is not either."""
    new = assemble_insns("jeq %r0, 0, +1\nmov %r0, 1\nja +1")
    prog = make("mov %r0, 0\ncall 5\nmov %r0, 2\nexit")
    out = insert_at(prog, 1, new)
    assert [i.off for i in out.insns[1:4]] == [1, 0, 1]
    assert targets(out) == {1: 3, 3: 5}
    assert out.insns[5].kind is Kind.EXIT


def test_jmp32_conditional_and_gotol_are_fixed():
    """jeq32 (off) and ja32 / gotol (imm) across the patch both grow by delta."""
    prog = make("jeq32 %r1, 0, +2\nja32 +1\ncall 5\nexit")
    out = insert_at(prog, 2, THREE)
    assert out.insns[0].off == 4
    assert (out.insns[1].imm, out.insns[1].off) == (3, 0)
    assert targets(out) == {0: 5, 1: 5}


def test_jump_into_the_middle_of_the_replaced_slots_is_refused():
    """With remove=2 the second replaced instruction is gone: a jump to it raises."""
    prog = make("jeq %r1, 0, +1\nmov %r0, 1\ncall 5\nexit")
    with pytest.raises(RewriteError, match=r"insn at slot 0 targets slot 2, inside the "
                                           r"replaced slots 1\.\.2"):
        insert_at(prog, 1, THREE, remove=2)


def test_offset_that_no_longer_fits_16_bits_is_refused():
    """A jump of +32767 across a growing patch would need 32769: RewriteError."""
    insns = [*assemble_insns("ja +32767\ncall 5"), *assemble_insns("mov %r0, 0") * 32766,
             *assemble_insns("exit")]
    prog = ProgramDef("big", "xdp", "xdp", insns, [Function("big", 0, len(insns), "xdp")],
                      {}, [])
    with pytest.raises(RewriteError, match=r"offset 32769 to slot 32768 no longer fits off"):
        insert_at(prog, 1, THREE)


# -- insert_at: lddw -------------------------------------------------------------------------
def test_second_slot_of_lddw_is_not_an_instruction():
    """Patching at a lddw's second slot raises; the patch after it is found by slot."""
    prog = make("lddw %r1, 0x100000000\ncall 5\nexit")
    with pytest.raises(RewriteError, match="slot 1 does not start an instruction"):
        insert_at(prog, 1, THREE)
    out = insert_at(prog, 2, THREE)
    assert out.num_slots == 6
    assert out.insns[0].imm64 == 0x100000000


def test_replacing_a_lddw_shrinks_jumps_across_it():
    """A 2-slot lddw replaced by one instruction: a jump over it shrinks by one slot."""
    prog = make("jeq %r1, 0, +3\nlddw %r0, 5\nmov %r0, 1\nexit")
    out = insert_at(prog, 1, assemble_insns("mov %r0, 5"))
    assert out.insns[0].off == 2
    assert targets(out) == {0: 3}
    assert out.num_slots == 4


def test_jump_over_a_lddw_before_the_patch():
    """A jump over a lddw that lies before the patched slot is counted in slots."""
    prog = make("ja +2\nlddw %r0, 5\ncall 5\nja -5\nexit")
    out = insert_at(prog, 3, THREE)
    assert out.insns[0].off == 2
    assert targets(out) == {0: 3, 6: 0}


# -- insert_at: bpf-to-bpf calls, functions, lines -------------------------------------------
TWO_FUNCS = """\
call local +3
lddw %r1, func +3
call 5
exit
mov %r0, 1
exit
mov %r0, 2
exit"""


def test_local_call_and_function_address_across_the_patch():
    """call local imm and lddw func imm over the patched slot grow by delta; function
    starts shift and the patched function grows."""
    prog = make(TWO_FUNCS, [("main", 0, 5), ("f", 5, 2), ("g", 7, 2)])
    assert targets(prog) == {0: 4, 1: 5}
    out = insert_at(prog, 3, THREE)
    assert out.insns[0].imm == 5 and out.insns[0].src == CallKind.LOCAL
    assert out.insns[1].imm == 5 and out.insns[1].src == PseudoSrc.FUNC
    assert targets(out) == {0: 6, 1: 7}
    assert [(f.name, f.start, f.size) for f in out.functions] == [
        ("main", 0, 7), ("f", 7, 2), ("g", 9, 2)]
    assert out.own_slots == 7


def test_patch_inside_a_subprogram():
    """A patch in a sub-program grows it, shifts the next one, leaves calls before alone,
    and fixes a call from after it back to before it."""
    text = "call local +2\ncall local +3\nexit\ncall 5\nexit\ncall local -3\nexit"
    prog = make(text, [("main", 0, 3), ("f", 3, 2), ("g", 5, 2)])
    out = insert_at(prog, 3, THREE)
    assert targets(out) == {0: 3, 1: 7, 7: 3}
    assert [(f.start, f.size) for f in out.functions] == [(0, 3), (3, 4), (7, 2)]
    assert out.own_slots == 3


def test_patch_at_a_function_start_belongs_to_that_function():
    """Replacing a function's first instruction: the function starts at the new code; the
    previous function keeps its size; a call to it lands on the new code."""
    prog = make("call local +1\nexit\ncall 5\nexit", [("main", 0, 2), ("f", 2, 2)])
    out = insert_at(prog, 2, THREE)
    assert [(f.start, f.size) for f in out.functions] == [(0, 2), (2, 4)]
    assert targets(out) == {0: 2}


def test_function_boundary_inside_removed_slots_is_refused():
    """Removing across a function boundary raises, naming the function."""
    prog = make("mov %r0, 0\nexit\ncall 5\nexit", [("main", 0, 2), ("f", 2, 2)])
    with pytest.raises(RewriteError, match="function 'main' ends at slot 2, inside"):
        insert_at(prog, 1, THREE, remove=2)


def test_source_lines_follow_the_code():
    """Lines before stay, the patched slot's line stays on the new code, lines after shift."""
    prog = make("mov %r0, 0\ncall 5\nmov %r1, 1\nexit", lines={0: 10, 1: 11, 2: 12, 3: 13})
    out = insert_at(prog, 1, THREE)
    assert {s: line.line for s, line in out.lines.items()} == {0: 10, 1: 11, 4: 12, 5: 13}
    assert out.source_line(3).line == 11


def test_remove_zero_inserts_a_prologue():
    """remove=0 puts the new code in front of the instruction at slot: jumps to that slot
    run the new code first; the old instruction keeps its line after it."""
    prog = make("jeq %r1, 0, +1\nmov %r0, 1\nexit", lines={2: 7})
    out = insert_at(prog, 2, THREE, remove=0)
    assert listing(out)[2:] == ["mov %r0, 7", "mov %r1, 8", "mov %r2, 9", "exit"]
    assert targets(out) == {0: 2}
    assert {s: line.line for s, line in out.lines.items()} == {2: 7, 5: 7}


def test_remove_zero_at_the_end_appends():
    """remove=0 at the slot count appends; nothing else moves."""
    prog = make("ja +0\nexit")
    out = insert_at(prog, 2, THREE, remove=0)
    assert out.num_slots == 5
    assert out.insns[:2] == prog.insns


def test_bad_arguments():
    """remove past the end or a negative remove raise RewriteError."""
    prog = make("call 5\nexit")
    with pytest.raises(RewriteError, match="cannot remove 3 instructions at slot 1"):
        insert_at(prog, 1, THREE, remove=3)
    with pytest.raises(RewriteError, match="remove must be 0 or more"):
        insert_at(prog, 0, THREE, remove=-1)


def test_input_program_is_not_mutated():
    """insert_at returns a new ProgramDef; the input's lists and dicts are untouched."""
    prog = make(TWO_FUNCS, [("main", 0, 5), ("f", 5, 2), ("g", 7, 2)], {3: 1})
    before = copy.deepcopy(prog)
    out = insert_at(prog, 3, THREE)
    assert prog == before
    assert out is not prog and out.insns is not prog.insns


def test_map_indices_include_new_references():
    """A lddw map_idx_value in the new code adds its map index to map_indices."""
    prog = make("call 5\nexit")
    out = insert_at(prog, 0, clock_reads(4))
    assert out.map_indices == [4]


# -- inject_clock ----------------------------------------------------------------------------
def clock_calls(prog: ProgramDef) -> int:
    return sum(1 for i in prog.insns if i.kind is Kind.CALL and i.src == CallKind.HELPER
               and i.imm in (5, 125, 160))


def test_inject_clock_on_rate_limiter():
    """rate_limiter: the ktime call becomes lddw map_idx_value(clock) + ldxdw (2 more slots),
    the clock map is appended, the input object is untouched."""
    obj = load(corpus_object("rate_limiter"))
    before = copy.deepcopy(obj.programs)
    new = inject_clock(obj)
    assert obj.programs == before and len(obj.maps) == 1
    assert [m.name for m in new.maps] == ["buckets", CLOCK_MAP]
    clock = new.maps[1]
    assert (clock.type_name, clock.key_size, clock.value_size, clock.max_entries) == (
        "array", 4, 8, 1)
    old, prog = obj.programs[0], new.programs[0]
    assert clock_calls(old) == 1 and clock_calls(prog) == 0
    assert prog.num_slots == old.num_slots + 2
    assert prog.functions[0].size == old.functions[0].size + 2
    reads = [i for i, insn in enumerate(prog.insns)
             if insn.opcode == LDDW_OPCODE and insn.src == PseudoSrc.MAP_IDX_VALUE]
    assert len(reads) == 1
    assert prog.insns[reads[0]: reads[0] + 2] == clock_reads(1)
    assert 1 in prog.map_indices


def test_inject_clock_keeps_every_jump_on_its_instruction():
    """Every jump of syn_flood still goes from and to the same instructions after injection
    (by instruction index, each clock call having become two instructions)."""
    obj = load(corpus_object("syn_flood"))
    old, new = obj.programs[0], inject_clock(obj).programs[0]
    sites = [i for i, insn in enumerate(old.insns) if clock_calls(
        dataclasses.replace(old, insns=[insn]))]
    assert sites

    def moved(index: int) -> int:  # old instruction index -> new
        return index + sum(1 for s in sites if s < index)

    def index_jumps(prog: ProgramDef) -> list[tuple[int, int]]:
        index = {at: i for i, at in enumerate(slot_offsets(prog.insns))}
        return [(index[s], index[t]) for s, t in targets(prog).items()]

    assert index_jumps(new) == [(moved(s), moved(t)) for s, t in index_jumps(old)]


def test_inject_clock_is_idempotent_and_leaves_clockless_programs():
    """Injecting twice gives the same object; a program without clock calls is unchanged."""
    obj = load(corpus_object("rate_limiter"))
    once = inject_clock(obj)
    assert inject_clock(once) == once
    plain = load(corpus_object("firewall"))
    injected = inject_clock(plain)
    assert [p.insns for p in injected.programs] == [p.insns for p in plain.programs]
    assert injected.maps[-1].name == CLOCK_MAP


def test_inject_clock_refuses_a_clashing_map():
    """An existing 'offload_clock' map of another shape raises RewriteError."""
    obj = load(corpus_object("rate_limiter"))
    new = inject_clock(obj)
    new.maps[-1].value_size = 4
    with pytest.raises(RewriteError, match="'offload_clock' exists and is not"):
        inject_clock(new)


def test_clock_state_is_a_state_entry():
    """clock_state(ns) is the clock map as state-document maps, u64 little-endian."""
    assert clock_state(0x0102030405060708) == {
        CLOCK_MAP: [{"key": "00000000", "value": "0807060504030201"}]}
    assert clock_state(-1)[CLOCK_MAP][0]["value"] == "ff" * 8


def test_vm_reads_the_injected_clock():
    """On the VM, rate_limiter after inject_clock stores the clock map's value as last_ns."""
    obj = inject_clock(load(corpus_object("rate_limiter")))
    vm = Vm(obj, obj.programs[0], env=HelperEnv())
    maps = {m.name: m for m in vm.maps}
    now = 0x1122334455667788
    maps[CLOCK_MAP].update(bytes(4), now.to_bytes(8, "little"))
    packet = bytes(Ether() / IP(src="10.1.2.3", dst="10.0.0.2") / UDP() / (b"x" * 18))
    assert vm.run_xdp(packet).verdict == 2
    entry = dump_state(maps)["maps"]["buckets"][0]
    assert entry["key"] == "0a010203"
    assert bytes.fromhex(entry["value"])[8:] == now.to_bytes(8, "little")


def test_clock_reads_are_three_slots():
    """clock_reads is lddw r0 (MAP_IDX_VALUE, index, offset 0) then ldxdw r0, [r0+0]."""
    reads = clock_reads(3)
    assert sum(i.slots for i in reads) == 3
    assert reads[0] == Insn(LDDW_OPCODE, 0, PseudoSrc.MAP_IDX_VALUE, 0, 3, 0)
    assert listing(ProgramDef("p", "xdp", "xdp", reads, [], {}, [])) == [
        "lddw %r0, map_idx_value 3, 0", "ldxdw %r0, [%r0]"]
