"""hw.rtc.vliw: packing blocks into VLIW rows, and cycles per packet on the hXDP profile."""

from __future__ import annotations

import json

import pytest

from ebpf.kernel_enums import HELPER_IDS
from ebpf.vm.machine import Vm
from hw.rtc.common import RtcError, build_cfg
from hw.rtc.vliw import (
    VliwOp,
    block_ops,
    cycles_per_packet,
    estimate_vliw,
    packet_cycles,
    schedule_ops,
    schedule_program,
)
from hw.targets import load_target
from tests.conftest import CORPUS_NAMES
from tests.hw.rtc import corpus, prog, traces

HXDP = load_target("hxdp")


def rows_of(text: str, **kwargs) -> list[int]:
    """Rows per block (in slot order) of a program written in assembler."""
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
    sched = schedule_program(prog(text + "\nmov %r0, 0\nexit"), HXDP)
    assert sched.num_rows == 2
    assert sched.num_insns == 6
    assert sorted(s for row in sched.blocks[0].rows for s in row) == [0, 2, 4, 6, 8, 9]


def test_branch_is_alone_in_its_block_last_row():
    """The block's jump issues in the last row, after everything it depends on."""
    sched = schedule_program(prog("mov %r1, 1\nmov %r2, 2\njeq %r1, 0, +1\nmov %r0, 0\n"
                                  "exit"), HXDP)
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
    """xdp_tx's packet bounds checks go away with "bounds_checks" and no block grows."""
    p = corpus("xdp_tx").programs[0]
    plain = schedule_program(p, HXDP)
    opt = schedule_program(p, HXDP, optimizations=["bounds_checks"])
    assert plain.removed == frozenset()
    by_slot = dict(zip(p.get_slot_offsets(), p.insns, strict=True))
    assert opt.removed
    assert all(by_slot[s].opcode & 0x0F == 0x0D for s in opt.removed)  # JMP, register source
    assert all(opt.blocks[s].num_rows <= plain.blocks[s].num_rows for s in plain.blocks)
    assert opt.num_rows < plain.num_rows
    with pytest.raises(RtcError, match="unknown VLIW optimisation 'loop_unroll'"):
        schedule_program(p, HXDP, optimizations=["loop_unroll"])


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
        if code == 0x80:  # call: arguments r1-r5 (conservative), clobbers r0-r5
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


def check_block(block, rows, lanes: int, helpers_per_row: int) -> None:
    """Every instruction once, lanes and helper calls per row, the jump last, every
    RAW/WAW (1 row), WAR (same row allowed) and memory (1 row) dependency respected."""
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
        sched = schedule_program(p, HXDP)
        for block in build_cfg(p):
            bs = sched.blocks[block.start]
            check_block(block, bs.rows, HXDP.vliw.lanes, HXDP.vliw.helper_calls_per_row)
            assert bs.num_rows <= len(block)
        assert sched.num_rows <= sched.num_insns == len(p.insns)
        json.dumps(sched.to_dict())


# --- cycles per packet ----------------------------------------------------------------------

def test_cycles_count_rows_helpers_and_start():
    """mov r6; call ktime_get_ns | mov r0, 2; exit: 1 + 3 rows + 4 helper cycles = 8."""
    p = prog(f"mov %r6, 1\ncall {HELPER_IDS['ktime_get_ns']}\nmov %r0, 2\nexit")
    sched = schedule_program(p, HXDP)
    trace = Vm(None, p).run_xdp(bytes(64)).trace
    cost = packet_cycles(sched, trace, HXDP)
    assert (cost.rows, cost.helper_calls, cost.map_calls) == (3, 1, 0)
    assert cost.cycles == 1 + 3 + 4
    assert cost.latency_cycles == 8 + 3
    assert cycles_per_packet(sched, trace, HXDP) == 8


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
