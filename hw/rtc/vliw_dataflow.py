"""Register data flow for the hXDP optimisations of ``hw.rtc.vliw``: which instructions the
bounds-check removal leaves dead (liveness), and which argument-register writes repeat the
value the register holds (``"helper_args"``: symbolic values). Both iterate over the CFG of
``hw.rtc.common.build_cfg``; see ``hw.rtc.vliw``'s docstring for why each is sound on
Sephirot."""

from __future__ import annotations

from ebpf.analysis import branch_target
from ebpf.code.isa import FRAME_POINTER, AluOp, CallKind, Insn, Kind, Source
from hw.rtc.common import Block, Cfg, insn_regs


def fusible_mov_alu(first: Insn, second: Insn) -> bool:
    s1, s2 = first.spec, second.spec
    return (first.kind is Kind.ALU and s1.op is AluOp.MOV and s1.source is Source.X
            and first.off == 0 and first.src != first.dst
            and second.kind is Kind.ALU and s2.source is Source.K and s2.op is not AluOp.MOV
            and second.dst == first.dst)


_PURE = (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP, Kind.LDDW, Kind.LDX, Kind.LDXSX)


def successors(cfg: Cfg, b: Block) -> list[int]:
    last = b.last
    target = branch_target(last, b.slots[-1])
    succ = [] if target is None or last.kind is Kind.CALL else [target]
    if last.kind not in (Kind.JA, Kind.EXIT):
        succ.append(b.end)
    return [s for s in succ if s in cfg.blocks]


def _live_transfer(b: Block, live: frozenset[int], gone: set[int] | frozenset[int],
                   dead: set[int] | None = None) -> frozenset[int]:
    """Registers live at the start of ``b`` given those live at its end, skipping the slots
    in ``gone``; with ``dead``, collects the side-effect-free instructions nothing reads."""
    for insn, slot in zip(reversed(b.insns), reversed(b.slots), strict=True):
        if slot in gone:
            continue
        reads, writes = insn_regs(insn)
        if insn.kind is Kind.CALL and insn.src != CallKind.HELPER:
            reads = frozenset(range(1, 6))
        if dead is not None and insn.kind in _PURE and writes and not writes & live:
            dead.add(slot)
            continue
        live = (live - writes) | reads
    return live


def dead_code(cfg: Cfg, removed: frozenset[int]) -> frozenset[int]:
    """Slots of side-effect-free instructions (ALU, loads, lddw) whose results nothing reads
    once the ``removed`` slots are gone. Register liveness, iterated over the CFG; ``exit``
    reads r0, a bpf-to-bpf call r1-r5."""
    gone = set(removed)
    blocks = list(cfg)
    while True:
        live_in = {b.start: frozenset[int]() for b in blocks}
        changed = True
        while changed:
            changed = False
            for b in reversed(blocks):
                out = frozenset[int]().union(*(live_in[s] for s in successors(cfg, b)))
                new = _live_transfer(b, out, gone)
                if new != live_in[b.start]:
                    live_in[b.start] = new
                    changed = True
        dead: set[int] = set()
        for b in blocks:
            out = frozenset[int]().union(*(live_in[s] for s in successors(cfg, b)))
            _live_transfer(b, out, gone, dead)
        if not dead:
            return frozenset(gone - removed)
        gone |= dead


_ARG_REGS = frozenset(range(1, 6))
_VALUE_PASSES = 64
"""Passes over the CFG before the value analysis gives up (and removes nothing)."""


def _mentions(value: tuple, slot: int) -> bool:
    """Whether a symbolic register value depends on what the instruction at ``slot`` made."""
    if value[0] in ("d", "r") and value[1] == slot:
        return True
    return any(isinstance(v, tuple) and _mentions(v, slot) for v in value)


def _value_transfer(b: Block, state: dict[int, tuple], gone: frozenset[int],
                    redundant: set[int] | None = None) -> dict[int, tuple]:
    """Symbolic register values after ``b`` (skipping the ``gone`` slots), given those at its
    start; with ``redundant``, collects the argument-register writes (r1-r5) that leave the
    register's value unchanged (``"helper_args"``), a ``mov rD, rS`` + ALU-immediate pair
    counting as one write.

    A value is a tuple: an instruction's operation on its operands' values, ``("d", slot,
    reg)`` for what a load or call at ``slot`` wrote, ``("r", slot, reg)`` for a register
    read at ``slot`` whose value was unknown. Before an instruction defines a value, every
    register holding a value that mentions its slot is forgotten (a loop may run it again)."""
    state = dict(state)
    items = [(i, s) for i, s in zip(b.insns, b.slots, strict=True) if s not in gone]

    def read(reg: int, slot: int) -> tuple:
        if reg == FRAME_POINTER:
            return ("fp",)
        if reg not in state:
            state[reg] = ("r", slot, reg)
        return state[reg]

    def forget(slot: int) -> None:
        for reg in [r for r, v in state.items() if _mentions(v, slot)]:
            del state[reg]

    k = 0
    while k < len(items):
        insn, slot = items[k]
        kind, spec = insn.kind, insn.spec
        pair = (k + 1 < len(items) and fusible_mov_alu(insn, items[k + 1][0]))
        if kind is Kind.ALU and spec.op is AluOp.MOV and spec.is64 and insn.off == 0:
            value = read(insn.src, slot) if spec.source is Source.X else ("k", insn.imm)
            if pair:
                nxt, nslot = items[k + 1]
                value = ("op", nxt.opcode, nxt.off, nxt.imm, value)
            old = state.get(insn.dst)
            if redundant is not None and insn.dst in _ARG_REGS and old == value:
                redundant.add(slot)
                if pair:
                    redundant.add(items[k + 1][1])
            forget(slot)
            state[insn.dst] = value
            k += 2 if pair else 1
            continue
        reads, writes = insn_regs(insn)
        if kind in (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP, Kind.LDDW):
            operands = tuple(read(r, slot) for r in sorted(reads))
            extra = (insn.src, insn.imm64) if kind is Kind.LDDW else (insn.off, insn.imm)
            value = ("op", insn.opcode, *extra, *operands)
            forget(slot)
            for reg in writes:
                state[reg] = value
        else:
            for reg in reads:
                read(reg, slot)
            if kind is Kind.CALL and insn.src == CallKind.HELPER:
                writes = frozenset({0})  # Sephirot keeps r1-r5 (module docstring)
            forget(slot)
            for reg in writes:
                state.pop(reg, None)
                if kind is not Kind.CALL or reg == 0:
                    state[reg] = ("d", slot, reg)
        k += 1
    return state


def redundant_arg_writes(cfg: Cfg, gone: frozenset[int]) -> frozenset[int]:
    """Slots of argument-register writes (r1-r5) that give the register the value it holds
    on every path (``"helper_args"``): a forward must-analysis of symbolic register values
    over the CFG (``_value_transfer``), nothing known at a function's entry."""
    blocks = list(cfg)
    preds: dict[int, list[int]] = {b.start: [] for b in blocks}
    for b in blocks:
        for s in successors(cfg, b):
            preds[s].append(b.start)
    out: dict[int, dict[int, tuple] | None] = {b.start: None for b in blocks}

    def entry(b: Block) -> dict[int, tuple]:
        known = [o for o in (out[p] for p in preds[b.start]) if o is not None]
        if not known or b.start in cfg.function_starts:
            return {}
        return {r: v for r, v in known[0].items() if all(o.get(r) == v for o in known[1:])}

    for _ in range(_VALUE_PASSES):
        changed = False
        for b in blocks:
            new = _value_transfer(b, entry(b), gone)
            if new != out[b.start]:
                out[b.start] = new
                changed = True
        if not changed:
            break
    else:  # pragma: no cover - no corpus program needs this many passes
        return frozenset()  # not converged: remove nothing (always sound)
    redundant: set[int] = set()
    for b in blocks:
        _value_transfer(b, entry(b), gone, redundant)
    return frozenset(redundant)


