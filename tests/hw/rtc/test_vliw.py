"""hw.rtc.vliw: packing blocks into VLIW rows, and cycles per packet on the hXDP profile."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ebpf.kernel_enums import HELPER_IDS
from ebpf.vm.machine import Vm
from hw.rtc.common import RtcError, build_cfg
from hw.rtc.vliw import (
    OPTIMIZATIONS,
    VliwOp,
    block_ops,
    cycles_per_packet,
    estimate_vliw,
    optimization_effects,
    packet_cycles,
    schedule_ops,
    schedule_program,
)
from hw.targets import load_target
from tests.conftest import CORPUS_NAMES
from tests.hw.rtc import corpus, prog, traces

HXDP = load_target("hxdp")


def rows_of(text: str, **kwargs) -> list[int]:
    """Rows per block (in slot order) of a program written in assembler (no optimisation
    unless ``optimizations`` is given)."""
    kwargs.setdefault("optimizations", ())
    sched = schedule_program(prog(text), HXDP, **kwargs)
    return [sched.blocks[s].num_rows for s in sorted(sched.blocks)]


# --- hand-made blocks with known optimal row counts ----------------------------------------

def test_independent_ops_pack_four_per_row():
    """Eight independent ops fill two rows of four lanes."""
    ops = [VliwOp((i,), frozenset(), frozenset({i + 1})) for i in range(8)]
    assert [len(r) for r in schedule_ops(ops, 4)] == [4, 4]


def test_independent_moves_then_exit():
    """Seven independent moves, mov r0 and exit: mov r0 first, exit in the second row."""
    body = "\n".join(f"mov %r{r}, {r}" for r in range(1, 8))
    assert rows_of(body + "\nmov %r0, 0\nexit") == [3]  # 9 ops, 4 lanes: ceil(9/4)
    body6 = "\n".join(f"mov %r{r}, {r}" for r in range(1, 7))
    assert rows_of(body6 + "\nmov %r0, 0\nexit") == [2]  # 8 ops: 2 full rows


@pytest.mark.parametrize("adds", [1, 3, 6])
def test_dependency_chain_takes_one_row_per_op(adds):
    """mov r1; n x add r1; mov r0, r1; exit is a RAW chain of n + 3 rows."""
    text = "mov %r1, 1\n" + "add %r1, 1\n" * adds + "mov %r0, %r1\nexit"
    assert rows_of(text) == [adds + 3]


@pytest.mark.parametrize(("per_row", "rows"), [(1, 3), (2, 2), (3, 1)])
def test_helper_call_limit_per_row(per_row, rows):
    """Three independent helper calls need ceil(3 / helper_calls_per_row) rows."""
    ops = [VliwOp((i,), frozenset(), frozenset({6 + i}), helper=True) for i in range(3)]
    assert len(schedule_ops(ops, 4, per_row)) == rows


def test_write_after_read_shares_a_row():
    """mov r2, r1; mov r1, 5: the writer may issue with the reader (WAR, latency 0)."""
    block = build_cfg(prog("mov %r2, %r1\nmov %r1, 5\nexit")).block_at(0)
    ops = block_ops(block)[:2]
    assert schedule_ops(ops, 4) == [[0, 1]]


@pytest.mark.parametrize(("text", "rows"), [
    ("stxdw [%r10-8], %r1\nldxdw %r2, [%r10-16]", 1),   # disjoint stack slots
    ("stxdw [%r10-8], %r1\nldxdw %r2, [%r10-8]", 2),    # same slot: load after store
    ("stxw [%r10-8], %r1\nldxw %r2, [%r10-6]", 2),      # overlapping bytes
    ("stxdw [%r3+0], %r1\nldxdw %r2, [%r10-16]", 2),    # r3 may point into the stack
    ("ldxdw %r2, [%r3+0]\nldxdw %r4, [%r3+8]", 1),      # two loads never conflict
    ("ldxdw %r2, [%r3+0]\nstxdw [%r3+8], %r4", 2),      # store after load: ordered
])
def test_memory_ordering(text, rows):
    """Stores are ordered against other accesses except at disjoint constant r10 offsets."""
    block = build_cfg(prog(text + "\nexit")).block_at(0)
    ops = block_ops(block)[:-1]
    assert len(schedule_ops(ops, 4)) == rows


def test_lddw_is_one_op():
    """Four lddw (8 slots), mov r0, exit: 6 ops in 2 rows."""
    text = "\n".join(f"lddw %r{r}, 0x1122334455667788" for r in range(1, 5))
    sched = schedule_program(prog(text + "\nmov %r0, 0\nexit"), HXDP, optimizations=())
    assert sched.num_rows == 2
    assert sched.num_insns == 6
    assert sorted(s for row in sched.blocks[0].rows for s in row) == [0, 2, 4, 6, 8, 9]


def test_branch_is_alone_in_its_block_last_row():
    """The block's jump issues in the last row, after everything it depends on."""
    sched = schedule_program(prog("mov %r1, 1\nmov %r2, 2\njeq %r1, 0, +1\nmov %r0, 0\n"
                                  "exit"), HXDP, optimizations=())
    assert sched.blocks[0].rows == ((0, 1), (2,))


# --- hXDP optimisations ---------------------------------------------------------------------

def test_movi_exit_fuses_only_when_asked():
    """mov r0, 1; exit takes two rows, one with the parametrized exit."""
    assert rows_of("mov %r0, 1\nexit") == [2]
    assert rows_of("mov %r0, 1\nexit", optimizations=["movi_exit"]) == [1]


def test_mov_alu_becomes_three_operand():
    """mov r1, r2; add r1, 5; mov r0, r1; exit: 4 rows, 3 with the fused op."""
    text = "mov %r1, %r2\nadd %r1, 5\nmov %r0, %r1\nexit"
    assert rows_of(text) == [4]
    assert rows_of(text, optimizations=["mov_alu"]) == [3]


def test_bounds_checks_removed_only_when_asked():
    """xdp_tx's packet bounds check goes away with "bounds_checks", with the data_end load and
    the pointer arithmetic only it read (hXDP Fig. 3: three instructions); no block grows."""
    p = corpus("xdp_tx").programs[0]
    plain = schedule_program(p, HXDP, optimizations=())
    opt = schedule_program(p, HXDP, optimizations=["bounds_checks"])
    assert plain.removed == frozenset()
    by_slot = dict(zip(p.get_slot_offsets(), p.insns, strict=True))
    jumps = {s for s in opt.removed if by_slot[s].opcode & 0x0F == 0x0D}  # JMP, reg source
    assert len(jumps) == 1
    others = [by_slot[s] for s in opt.removed - jumps]
    # r2 = data_end (ldxw [r1+4]), r3 = r1 (mov), r3 += 14: what fed only the check
    assert sorted((i.opcode, i.off, i.imm) for i in others) == [
        (0x07, 0, 14), (0x61, 4, 0), (0xBF, 0, 0)]
    assert all(opt.blocks[s].num_rows <= plain.blocks[s].num_rows for s in plain.blocks)
    assert opt.num_rows < plain.num_rows
    with pytest.raises(RtcError, match="unknown VLIW optimisation 'loop_unroll'"):
        schedule_program(p, HXDP, optimizations=["loop_unroll"])


# a 6-byte copy from packet bytes 0-5 to 6-11, in the order clang emits xdp_tx's swap
COPY6 = "\n".join(f"ldxb %r2, [%r1+{o}]\nstxb [%r1+{o + 6}], %r2" for o in (2, 3, 0, 1, 4, 5))
COPY3H = "\n".join(f"ldxh %r2, [%r1+{o}]\nstxh [%r1+{o + 6}], %r2" for o in (0, 2, 4))
DATA = "ldxw %r1, [%r1+0]\n"


@pytest.mark.parametrize(("body", "fused"), [
    (COPY6, True),
    (COPY3H, True),
    (COPY6.replace("+11], %r2", "+11], %r3"), False),     # stores another register
    (COPY6.replace("[%r1+5]\n", "[%r1+7]\n"), False),     # the bytes are not contiguous
    (COPY6.replace("+6]", "+2]").replace("+8]", "+4]").replace("+7]", "+3]")
     .replace("+9]", "+5]").replace("+10]", "+6]").replace("+11]", "+7]"), False),  # overlap
])
def test_ldst6_fuses_six_byte_copies(body, fused):
    """A 6 B copy by byte or half-word pairs becomes one load and one store; near misses
    stay as they are."""
    block = build_cfg(prog(DATA + body + "\nmov %r0, 3\nexit")).block_at(0)
    plain = block_ops(block)
    ops = block_ops(block, ["ldst6"])
    assert len(ops) == (5 if fused else len(plain))  # data load, 6 B load, 6 B store, mov, exit
    if fused:
        assert [op.mem for op in ops[1:3]] == ["load", "store"]
        assert sorted(s for op in ops for s in op.slots) == sorted(block.slots)


def test_ldst6_pattern_is_a_copy_by_the_vm():
    """What ldst6 takes for a copy is one: the VM moves bytes 0-5 to 6-11 (COPY6 and
    COPY3H) and leaves every other byte as it was."""
    packet = bytes(range(64))
    for body in (COPY6, COPY3H):
        out = Vm(None, prog(DATA + body + "\nmov %r0, 3\nexit")).run_xdp(packet).trace
        assert out.packet_out == packet[:6] + packet[:6] + packet[12:]


def test_xdp_tx_swap_loses_ten_rows_to_ldst6():
    """xdp_tx.c's byte-wise copy (slots 22-33) is one of the copies; fusing it shortens the
    program."""
    p = corpus("xdp_tx").programs[0]
    with_it = schedule_program(p, HXDP)
    without = schedule_program(p, HXDP, optimizations=[o for o in OPTIMIZATIONS
                                                       if o != "ldst6"])
    ops = with_it.blocks[min(s for s, b in with_it.blocks.items() if len(b.ops) > 10)].ops
    assert any(op.slots == (22, 24, 26, 28, 30, 32) for op in ops)
    assert with_it.num_rows < without.num_rows


CALL_THEN_CHAIN = f"""
    mov %r6, 1
    call {HELPER_IDS['ktime_get_ns']}
    mov %r7, 5
    add %r7, 1
    add %r7, 2
    mov %r0, 1
    exit
"""


def test_code_motion_moves_work_above_a_helper_call():
    """The block after a helper call (its only predecessor) is scheduled with it: the
    chain's first move shares the call's row, 4 rows become 3, charged to the first block."""
    p = prog(CALL_THEN_CHAIN)
    base = ("movi_exit",)
    plain = schedule_program(p, HXDP, optimizations=base)
    moved = schedule_program(p, HXDP, optimizations=(*base, "code_motion"))
    assert [plain.blocks[s].num_rows for s in sorted(plain.blocks)] == [1, 3]
    assert moved.blocks[0].num_rows == 3 and moved.blocks[2].num_rows == 0
    assert moved.blocks[2].merged_into == 0
    trace = Vm(None, p).run_xdp(bytes(64)).trace
    assert packet_cycles(moved, trace, HXDP).rows == 3
    assert packet_cycles(plain, trace, HXDP).rows == 4


@pytest.mark.parametrize("text", [
    # a jump into the block after the call: it has two predecessors
    f"mov %r6, 1\njeq %r6, 0, +1\ncall {HELPER_IDS['ktime_get_ns']}\nmov %r0, 1\nexit",
    # tail_call may not return
    f"mov %r6, 1\ncall {HELPER_IDS['tail_call']}\nmov %r0, 1\nexit",
])
def test_code_motion_only_between_control_equivalent_blocks(text):
    """No merge where the next block can be reached another way or may not run."""
    sched = schedule_program(prog(text), HXDP, optimizations=["code_motion"])
    assert all(b.merged_into is None for b in sched.blocks.values())


REPEATED_ARGS = f"""
    mov %r6, 7
    mov %r1, 0
    mov %r2, %r6
    add %r2, 14
    call {HELPER_IDS['ktime_get_ns']}
    mov %r1, 0
    mov %r2, %r6
    add %r2, 14
    mov %r3, 5
    call {HELPER_IDS['ktime_get_ns']}
    mov %r2, %r6
    add %r2, 15
    mov %r0, 1
    exit
"""


def _without_helper_args(sched, prog_):
    """``prog_`` with the slots helper_args removed replaced by ``ja +0`` (no-ops)."""
    from dataclasses import replace as dc_replace

    from ebpf.code.isa import Insn

    others = schedule_program(prog_, HXDP, optimizations=[
        o for o in OPTIMIZATIONS if o != "helper_args"]).removed
    gone = sched.removed - others
    insns, slot = [], 0
    for insn in prog_.insns:
        insns.append(Insn(0x05) if slot in gone else insn)
        slot += insn.slots
    return gone, dc_replace(prog_, insns=insns)


def test_helper_args_removes_only_repeated_argument_values():
    """A second call's r1 = 0 and r2 = r6 + 14 repeat what the registers hold (helpers write
    only r0): removed; r3 = 5 is new and r2 = r6 + 15 differs: kept."""
    p = prog(REPEATED_ARGS)
    sched = schedule_program(p, HXDP)
    gone, _ = _without_helper_args(sched, p)
    assert gone == {5, 6, 7}
    assert schedule_program(p, HXDP, optimizations=()).removed == frozenset()


@pytest.mark.parametrize("text", [
    # r1 is changed on one path into the join: not the same value on every path
    f"mov %r1, 0\nmov %r6, 1\njeq %r6, 0, +1\nmov %r1, 9\ncall {HELPER_IDS['ktime_get_ns']}\n"
    f"mov %r1, 0\ncall {HELPER_IDS['ktime_get_ns']}\nmov %r0, 1\nexit",
    # a loop re-loads r7: r2 = r7 names another value on the next iteration
    f"mov %r8, 3\nldxw %r7, [%r1+0]\nmov %r2, %r7\ncall {HELPER_IDS['ktime_get_ns']}\n"
    f"add %r8, -1\njne %r8, 0, -5\nmov %r0, 1\nexit",
    # a bpf-to-bpf call clobbers r1-r5
    "mov %r1, 0\ncall local +3\nmov %r1, 0\nmov %r0, 1\nexit\nmov %r0, 0\nexit",
])
def test_helper_args_keeps_writes_that_change_a_value(text):
    """Writes are kept where the register may hold another value: a join with a different
    write, a loop's fresh load, a bpf-to-bpf call."""
    local = "call local" in text
    p = prog(text, functions=[("main", 0, 5), ("f", 5, 2)] if local else None)
    sched = schedule_program(p, HXDP)
    gone, _ = _without_helper_args(sched, p)
    assert not gone


@pytest.mark.parametrize("name", ["rate_limiter", "syn_flood", "nat"])
def test_helper_args_removal_keeps_what_the_vm_computes(name):
    """The VM (which, like Sephirot, keeps r1-r5 across helper calls) gives the same
    verdict, helper calls with the same arguments and the same packet with the removed
    writes turned into no-ops."""
    obj = corpus(name)
    p = obj.get_program()
    _, changed = _without_helper_args(schedule_program(p, HXDP), p)
    from dataclasses import replace as dc_replace

    from sim.packets import random_packets
    a = Vm(obj, p)
    b = Vm(dc_replace(obj, programs=[changed if q is p else q for q in obj.programs]), changed)
    for pkt in random_packets(30, 3):
        ra, rb = a.run_xdp(pkt), b.run_xdp(pkt)
        assert (ra.verdict, ra.packet_out) == (rb.verdict, rb.packet_out)
        assert [(h.name, h.args) for h in ra.trace.helper_calls] == [
            (h.name, h.args) for h in rb.trace.helper_calls]


def test_helper_bench_args_set_once():
    """In Fig. 15's benchmark the calls after the first need no argument set-up."""
    from hw.cost import hxdp_bench as hb

    p = prog(hb.helper_calls(4))
    sched = schedule_program(p, HXDP)
    gone, changed = _without_helper_args(sched, p)
    assert len(gone) == 3 * 6  # three calls x (r1, r2, r3 = r6 + 14 as two, r4, r5)
    a, b = Vm(None, p).run_xdp(hb.PACKET), Vm(None, changed).run_xdp(hb.PACKET)
    assert a.verdict == b.verdict == 3
    calls = [(h.name, h.args) for h in a.trace.helper_calls]
    assert calls == [(h.name, h.args) for h in b.trace.helper_calls] and len(calls) == 4


def test_transmitted_packets_pay_the_transmit_path():
    """A one-row XDP_TX costs tx_cycles (the emission bounds it), a one-row XDP_DROP only
    its compute; early exit off adds the drain to the compute."""
    t = HXDP.timing
    for verdict, expected in ((3, max(t.tx_cycles, t.start_latency_cycles + 1)),
                              (1, t.start_latency_cycles + 1)):
        p = prog(f"mov %r0, {verdict}\nexit")
        cost = packet_cycles(schedule_program(p, HXDP), Vm(None, p).run_xdp(bytes(64)).trace,
                             HXDP)
        assert cost.compute_cycles == t.start_latency_cycles + 1
        assert cost.cycles == expected
        assert cost.emit_cycles == (t.tx_cycles if verdict == 3 else 0)


def test_every_optimisation_on_by_default():
    """schedule_program and estimate_vliw apply all of OPTIMIZATIONS unless told."""
    obj = corpus("xdp_tx")
    assert schedule_program(obj.programs[0], HXDP).optimizations == tuple(sorted(OPTIMIZATIONS))
    est = estimate_vliw(HXDP, obj, obj.programs[0], traces(obj, count=3))
    assert sorted(est.details["optimizations"]) == sorted(OPTIMIZATIONS)


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_optimised_schedules_cover_the_program(name):
    """With every optimisation each instruction is in exactly one op of one row or was
    removed, rows fit the lanes, and the program has no more rows nor packet cycles than
    without any."""
    obj = corpus(name)
    p = obj.programs[0]
    sched = schedule_program(p, HXDP)
    seen = list(sched.removed)
    for b in sched.blocks.values():
        ops_by_slot = {op.slot: op for op in b.ops}
        for row in b.rows:
            assert len(row) <= HXDP.vliw.lanes
            seen.extend(s for first in row for s in ops_by_slot[first].slots)
    assert sorted(seen) == sorted(s for blk in build_cfg(p) for s in blk.slots)
    eff = optimization_effects(HXDP, obj, p, traces(obj, count=5))
    assert eff["all"]["rows"] <= eff["none"]["rows"]
    assert eff["all"]["cycles"] <= eff["none"]["cycles"]


# --- an independent validity check over the corpus ------------------------------------------

def _regs(insn) -> tuple[set[int], set[int]]:
    """Registers read and written, from the opcode bits (not hw.rtc's tables)."""
    op, cls = insn.opcode, insn.opcode & 7
    code, src_x = op & 0xF0, bool(op & 0x08)
    mode = op & 0xE0
    if cls in (4, 7):  # ALU, ALU64
        if code == 0xB0:  # mov
            return ({insn.src} if src_x else set()), {insn.dst}
        if code in (0x80, 0xD0):  # neg, end
            return {insn.dst}, {insn.dst}
        return ({insn.dst, insn.src} if src_x else {insn.dst}), {insn.dst}
    if cls in (5, 6):  # JMP, JMP32
        if code == 0x80 and insn.src == 0:  # helper: r1-r5 in, r0 out (hXDP sec. 4.1.4)
            return set(range(1, 6)), {0}
        if code == 0x80:  # bpf-to-bpf call: arguments r1-r5 (conservative), clobbers r0-r5
            return set(range(1, 6)), set(range(6))
        if code == 0x90:
            return {0}, set()
        if code == 0x00:
            return set(), set()
        return ({insn.dst, insn.src} if src_x else {insn.dst}), set()
    if cls == 0:  # lddw
        return set(), {insn.dst}
    if cls == 1:  # ldx
        return {insn.src}, {insn.dst}
    if cls == 2:  # st
        return {insn.dst}, set()
    if mode == 0xC0:  # atomic
        if insn.imm == 0xF1:
            return {insn.dst, insn.src, 0}, {0}
        return {insn.dst, insn.src}, ({insn.src} if insn.imm & 1 else set())
    return {insn.dst, insn.src}, set()  # stx


def _mem(insn) -> tuple[str, tuple[int, int] | None]:
    cls, size = insn.opcode & 7, {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[insn.opcode & 0x18]
    if cls == 1:
        return "r", (insn.off, size) if insn.src == 10 else None
    if cls in (2, 3):
        return "w", (insn.off, size) if insn.dst == 10 else None
    if cls == 5 and insn.opcode & 0xF0 == 0x80:
        return "w", None
    return "", None


def _helper_call(insn) -> bool:
    return insn.opcode == 0x85 and insn.src == 0


def check_block(block, rows, lanes: int, helpers_per_row: int, late_calls: bool = False,
                ) -> None:
    """Every instruction once, lanes and helper calls per row, the jump last, every
    RAW/WAW (1 row), WAR (same row allowed) and memory (1 row) dependency respected; with
    ``late_calls`` ("call_args") a helper call may share the row of what it reads (a
    register or memory), not of an r0 write nor of another helper call."""
    row_of = {slot: r for r, row in enumerate(rows) for slot in row}
    assert sorted(row_of) == list(block.slots)
    for row in rows:
        assert len(row) <= lanes
        calls = [s for s in row if block.insns[block.slots.index(s)].opcode == 0x85
                 and block.insns[block.slots.index(s)].src == 0]
        assert len(calls) <= helpers_per_row
    last = block.insns[-1]
    if last.opcode & 7 in (5, 6):
        assert row_of[block.slots[-1]] == len(rows) - 1
    for a in range(len(block.insns)):
        for b in range(a + 1, len(block.insns)):
            ia, ib = block.insns[a], block.insns[b]
            ra, rb = row_of[block.slots[a]], row_of[block.slots[b]]
            (reads_a, writes_a), (reads_b, writes_b) = _regs(ia), _regs(ib)
            if late_calls and _helper_call(ib) and not _helper_call(ia):
                assert rb >= ra and (rb > ra or not writes_a & writes_b)
                continue
            if writes_a & reads_b or writes_a & writes_b:
                assert rb > ra, (block.slots[a], block.slots[b])
            if reads_a & writes_b:
                assert rb >= ra
            (ma, sa), (mb, sb) = _mem(ia), _mem(ib)
            if ma and mb and "w" in (ma, mb):
                apart = sa and sb and (sa[0] + sa[1] <= sb[0] or sb[0] + sb[1] <= sa[0])
                if not apart:
                    assert rb > ra, (block.slots[a], block.slots[b])


def test_checker_rejects_broken_schedules():
    """The validity check catches a RAW pair in one row and a jump before the last row."""
    block = build_cfg(prog("mov %r1, 1\nadd %r1, 1\nja +0\nexit")).block_at(0)
    check_block(block, [(0,), (1, 2)], 4, 1)
    with pytest.raises(AssertionError):
        check_block(block, [(0, 1), (2,)], 4, 1)
    with pytest.raises(AssertionError):
        check_block(block, [(0,), (2,), (1,)], 4, 1)


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_every_corpus_schedule_is_valid(name):
    """Each block of each corpus program: a valid schedule with rows <= instructions."""
    for p in corpus(name).programs:
        sched = schedule_program(p, HXDP, optimizations=())
        for block in build_cfg(p):
            bs = sched.blocks[block.start]
            check_block(block, bs.rows, HXDP.vliw.lanes, HXDP.vliw.helper_calls_per_row)
            assert bs.num_rows <= len(block)
        assert sched.num_rows <= sched.num_insns == len(p.insns)
        json.dumps(sched.to_dict())


def test_call_args_puts_a_call_in_its_arguments_row():
    """"call_args" (off by default): the call shares the row of its argument moves and of
    its key's store; without it the call takes a row of its own."""
    text = f"stw [%r10-4], 7\nmov %r1, 1\nmov %r2, 0\ncall {HELPER_IDS['redirect']}\nexit"
    assert rows_of(text) == [2, 1]
    assert rows_of(text, optimizations=["call_args"]) == [1, 1]
    assert "call_args" not in schedule_program(prog(text), HXDP).optimizations


def test_call_args_never_shares_a_row_with_an_r0_write_or_a_call():
    """A write of r0 (which the call also writes) and an earlier helper call still come a
    row before the call; a bpf-to-bpf call is not moved."""
    r0 = f"mov %r0, 5\nmov %r1, 1\ncall {HELPER_IDS['redirect']}\nexit"
    assert rows_of(r0, optimizations=["call_args"])[0] == 2
    (call,) = block_ops(build_cfg(prog(f"call {HELPER_IDS['redirect']}\nexit")).block_at(0),
                        ["call_args"])
    assert call.late_args
    first = replace(call, control=False)  # as in a code_motion chain
    assert len(schedule_ops([first, call], 4, 2)) == 2  # two calls a row apart
    local = prog("mov %r1, 1\ncall local +1\nexit\nmov %r0, 2\nexit",
                 functions=[("main", 0, 3), ("f", 3, 2)])
    sched = schedule_program(local, HXDP, optimizations=["call_args"])
    assert sched.blocks[0].num_rows == 2


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_call_args_schedules_are_valid_and_never_longer(name):
    """Each corpus block under "call_args": valid by the checker with late calls allowed,
    and no longer than without it."""
    for p in corpus(name).programs:
        plain = schedule_program(p, HXDP, optimizations=())
        late = schedule_program(p, HXDP, optimizations=["call_args"])
        for block in build_cfg(p):
            rows = late.blocks[block.start].rows
            check_block(block, rows, HXDP.vliw.lanes, HXDP.vliw.helper_calls_per_row,
                        late_calls=True)
            assert len(rows) <= plain.blocks[block.start].num_rows


JOIN_BELOW_BRANCH = """
    ldxw %r2, [%r1+0]
    mov %r6, 1
    jeq %r2, 0, +2
    mov %r3, 5
    ja +1
    mov %r3, 6
    mov %r7, 9
    mov %r8, 10
    add %r7, %r3
    mov %r0, 1
    exit
"""


def test_code_motion_hoists_join_ops_above_the_branch():
    """The join after an if/else is control equivalent with the block above the branch:
    its ops that depend on neither arm (r7 = 9, r8 = 10, r0 = 1) fill that block's free
    lanes; r7 += r3 (r3 comes from an arm) and the exit stay; the join's 2 rows become 1."""
    p = prog(JOIN_BELOW_BRANCH)
    plain = schedule_program(p, HXDP, optimizations=())
    moved = schedule_program(p, HXDP, optimizations=("code_motion",))
    assert plain.blocks[6].num_rows == 2 and moved.blocks[6].num_rows == 1
    assert moved.blocks[0].num_rows == plain.blocks[0].num_rows == 2
    assert sorted(s for row in moved.blocks[0].rows for s in row) == [0, 1, 2, 6, 7, 9]
    assert moved.blocks[6].rows == ((8, 10),)
    for pkt in (bytes(64), bytes([1]) + bytes(63)):
        trace = Vm(None, p).run_xdp(pkt).trace
        assert packet_cycles(moved, trace, HXDP).rows == packet_cycles(plain, trace, HXDP).rows - 1


@pytest.mark.parametrize(("text", "kept"), [
    # one arm exits: the join does not post-dominate the branch
    ("ldxw %r2, [%r1+0]\njeq %r2, 0, +2\nmov %r0, 2\nexit\nmov %r7, 9\nmov %r0, 1\nexit", 4),
    # an arm writes what the join's op reads
    ("ldxw %r2, [%r1+0]\njeq %r2, 0, +1\nmov %r7, 5\nmov %r8, %r7\nmov %r0, 1\nexit", 3),
    # an arm stores to the stack slot the join loads
    ("ldxw %r2, [%r1+0]\njeq %r2, 0, +1\nstw [%r10-4], 5\nldxw %r8, [%r10-4]\nmov %r0, 1\n"
     "exit", 3),
    # the join heads a loop: its add runs once per iteration, not once per branch
    ("ldxw %r2, [%r1+0]\njeq %r2, 0, +1\nmov %r3, 1\nadd %r7, 1\njlt %r7, 4, -2\n"
     "mov %r0, 1\nexit", 3),
])
def test_code_motion_keeps_join_ops_that_cannot_move(text, kept):
    """No op moves above a branch whose join another path skips, nor one that an arm's
    register write or store feeds."""
    moved = schedule_program(prog(text), HXDP, optimizations=("code_motion",))
    assert kept not in {s for row in moved.blocks[0].rows for s in row}
    assert any(kept in row for row in moved.blocks[kept].rows)


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_hoisted_ops_commute_with_what_they_pass(name):
    """Checked with the opcode-bit tables above (not hw.rtc's): every op code motion moves
    out of its block into an earlier block's rows has no register or memory dependency with
    the join's ops it passes nor with any instruction on any path between, and sits in a
    row after what it depends on in its new block."""
    for p in corpus(name).programs:
        cfg = build_cfg(p)
        sched = schedule_program(p, HXDP)
        home = {s: b.start for b in cfg for s in b.slots}
        insn = {s: i for b in cfg for s, i in zip(b.slots, b.insns, strict=True)}
        for start, bs in sched.blocks.items():
            chain = {start} | {s for s, o in sched.blocks.items() if o.merged_into == start}
            row_of = {s: r for r, row in enumerate(bs.rows) for s in row}
            for slot in [s for s in row_of if home[s] not in chain]:
                join = cfg.blocks[home[slot]]
                stay = {s for row in sched.blocks[join.start].rows for s in row}
                passed = [s for s in join.slots if s < slot and s in stay]
                seen, stack = set(), [start]
                while stack:  # blocks between: reachable from the branch, not through join
                    b = cfg.blocks[stack.pop()]
                    for t in (b.end, b.start + sum(i.slots for i in b.insns[:-1]) + 1
                              + b.last.off):
                        if t in cfg.blocks and t != join.start and t not in seen \
                                and t not in chain:
                            seen.add(t)
                            stack.append(t)
                passed += [s for b in seen for s in cfg.blocks[b].slots]
                r, w = _regs(insn[slot])
                m, a = _mem(insn[slot])
                for t in passed:
                    rt, wt = _regs(insn[t])
                    assert not (wt & (r | w) or rt & w), (name, slot, t)
                    mt, at = _mem(insn[t])
                    assert not (m and mt and "w" in (m, mt) and not (
                        a and at and (a[0] + a[1] <= at[0] or at[0] + at[1] <= a[0]))), (slot, t)
                for t, rt_ in row_of.items():
                    if home[t] in chain:
                        rt, wt = _regs(insn[t])
                        if wt & (r | w):
                            assert row_of[slot] > rt_, (name, slot, t)


# --- cycles per packet ----------------------------------------------------------------------

def test_cycles_count_rows_helpers_and_start():
    """mov r6; call ktime_get_ns | mov r0, 2; exit: start + 2 rows + the helper's cycles,
    and the pipeline's drain (depth - 1) when early exit is off."""
    p = prog(f"mov %r6, 1\ncall {HELPER_IDS['ktime_get_ns']}\nmov %r0, 2\nexit")
    trace = Vm(None, p).run_xdp(bytes(64)).trace
    t, depth = HXDP.timing, HXDP.vliw.pipeline_depth
    for opts, rows, drain in ((("movi_exit", "early_exit"), 2, 0), (("movi_exit",), 2, depth - 1),
                              ((), 3, depth - 1)):
        sched = schedule_program(p, HXDP, optimizations=opts)
        cost = packet_cycles(sched, trace, HXDP)
        assert (cost.rows, cost.helper_calls, cost.map_calls) == (rows, 1, 0)
        expected = t.start_latency_cycles + rows + t.helper_cycles + drain
        assert cost.cycles == cost.compute_cycles == expected
        assert cost.latency_cycles == expected + depth - 1
        assert cycles_per_packet(sched, trace, HXDP) == expected


def test_xdp_drop_matches_hxdp_published_rate():
    """XDP_DROP: 3 cycles at 156.25 MHz = 52 Mpps, the rate hXDP reports (OSDI 2020, sec. 5)."""
    obj = corpus("xdp_drop")
    est = estimate_vliw(HXDP, obj, obj.programs[0], traces(obj, count=5))
    assert est.cycles_per_packet == 3
    assert est.mpps_per_unit == pytest.approx(HXDP.get_reference("xdp_drop_mpps"), rel=0.01)
    # four 10 GbE ports (59.5 Mpps of 64 B frames) do not bind: the core does
    assert est.mpps_total == pytest.approx(156.25 / 3)
    assert est.line_rate_mpps == pytest.approx(40e9 / (84 * 8) / 1e6)
    assert est.bound == "compute" and est.feasible and est.source == "model"


def test_large_frames_are_bus_bound():
    """A 1500 B frame takes ceil(1500 / 32) = 47 cycles on the 256-bit packet bus."""
    obj = corpus("xdp_drop")
    est = estimate_vliw(HXDP, obj, obj.programs[0], traces(obj, count=2), frame_bytes=1500)
    assert est.cycles_per_packet == 47
    assert est.details["bus_cycles"] == 47


def test_estimate_reports_infeasible_programs():
    """lpm_router on hXDP: costed, but not feasible (LPM_TRIE, DEVMAP), reasons given."""
    obj = corpus("lpm_router")
    est = estimate_vliw(HXDP, obj, obj.programs[0], traces(obj, count=10))
    assert not est.feasible
    assert any("lpm_trie" in r for r in est.reasons)
    assert est.cycles_per_packet > 3
    json.dumps(est.to_dict())


def test_wrong_target_kind_is_refused():
    """A non-VLIW target raises RtcError naming its kind."""
    with pytest.raises(RtcError, match="'nfp' is a npu target, not vliw"):
        schedule_program(prog("exit"), load_target("nfp"))
