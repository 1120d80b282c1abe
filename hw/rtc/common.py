"""What the run-to-completion models share: the result type, basic blocks, the walk from a VM
trace to the blocks it executed, register use, and a small pointer analysis.

Basic blocks (``build_cfg``). Leaders are slot 0, every function entry (callbacks named by
``lddw rX, func`` included), every jump target, and the slot after every conditional
branch, ``ja``/``gotol``, call (helper, bpf-to-bpf, kfunc), ``exit`` and legacy packet load
(``LD_ABS``/``LD_IND``, which may leave the program). This is how hXDP's compiler cuts a
program (Brunella et al., OSDI 2020, sec. 3; its ``optimizer_core.py`` makes the slot after
each jump, call and exit a leader). A block never spans two functions; ``lddw`` is one
instruction of two slots.

The walk (``iter_executed_blocks``). ``Trace.path`` lists the slot where each straight-line
run starts (ebpf.vm.trace). A run goes block by block through fall-throughs until its block
ends in a control transfer: a branch, ``ja``, ``exit``, a bpf-to-bpf call, a taken tail call
(``Trace.tail_calls``) or a helper that called back into the program (``bpf_loop``). The
walk counts the instructions it covers and must reach ``Trace.insns`` exactly; otherwise it
raises ``RtcError`` (so a block table that disagrees with the VM never goes unnoticed).

Pointer analysis (``analyze_pointers``). A forward data-flow analysis over the blocks (a
fixpoint with joins, in the manner of the kernel verifier's register types, much
simplified) tags every register with what it holds: the context, a packet pointer, the
packet end, a stack pointer (with its constant offset when known), a map value, a map, or a
scalar (with its constant values when known). It classifies every memory instruction by
the memory it touches (stack, packet, ctx, map value, unknown), measures each function's
stack depth, and finds the constant verdicts the entry function can return.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ebpf.code.isa import (
    AluOp,
    AtomicOp,
    CallKind,
    Insn,
    InsnClass,
    Kind,
    PseudoSrc,
    Source,
    slot_offsets,
)
from ebpf.kernel_enums import MAP_HELPERS, helper_name  # noqa: F401  (MAP_HELPERS: npu, vliw)
from ebpf.loader.program import ProgramDef, SourceLine
from ebpf.vm.trace import Trace
from hw.errors import HwError
from hw.ethernet import wire_mpps  # noqa: F401  (hw.rtc.wire_mpps, used by the models)

# Helpers that run a callback of the program (the VM's start_callback); a run ends there.
CALLBACK_HELPERS = frozenset({"loop", "for_each_map_elem", "find_vma", "user_ringbuf_drain"})
# Helpers whose r0 is a pointer into a map value.
LOOKUP_HELPERS = frozenset({"map_lookup_elem", "map_lookup_percpu_elem"})
_CONTROL = (Kind.JA, Kind.JCOND, Kind.EXIT)


class RtcError(HwError):
    """A run-to-completion model cannot use its input (a trace that does not fit the program,
    a target of the wrong kind, a measurement that failed)."""


# --- the result --------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CostEstimate:
    """What one packet of one program costs on one target, and the packet rate that follows.

    ``ns_per_packet`` is the time one core (or the one VLIW core) spends on a packet;
    ``cycles_per_packet`` the same in core cycles when the model counts cycles (NPU, VLIW),
    else None. ``mpps_per_unit`` is one core's rate (Mpps), ``units`` the cores running the
    program, ``mpps_total`` = min(units x mpps_per_unit, ``line_rate_mpps``). ``source`` says
    where the per-packet cost comes from: ``"measured"`` (the kernel's BPF_PROG_TEST_RUN on
    this machine) or ``"model"`` (counted from VM traces). ``bound`` names what limits
    ``mpps_total``: ``"compute"``, ``"memory"`` (latency not hidden by threads), ``"bus"``
    (the packet bus of a soft core) or ``"line rate"``. ``feasible`` is False when the target
    refuses the program (``reasons`` say why); the numbers are then what it would cost if it
    ran. ``details`` holds the model's inputs and intermediate values, JSON-ready.
    """

    target: str
    kind: str
    program: str
    source: str
    ns_per_packet: float
    cycles_per_packet: float | None
    mpps_per_unit: float
    units: int
    mpps_total: float
    line_rate_mpps: float
    bound: str
    feasible: bool = True
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (``reasons`` a list)."""
        doc = asdict(self)
        doc["reasons"] = list(self.reasons)
        return doc

    def cores_for(self, mpps: float) -> int:
        """Cores (units) needed to sustain ``mpps`` (Mpps) at this per-core rate."""
        if mpps <= 0:
            return 0
        return math.ceil(mpps / self.mpps_per_unit - 1e-9)


# --- registers ---------------------------------------------------------------------------

def helper_nargs(helper_id: int) -> int:
    """Arguments the helper takes (r1..rN); 5 when the VM does not know the helper."""
    from ebpf.errors import VmError
    from ebpf.helpers.core import get_helper

    try:
        return get_helper(helper_id).nargs
    except VmError:
        return 5


def insn_regs(insn: Insn) -> tuple[frozenset[int], frozenset[int]]:
    """(registers read, registers written) by one instruction.

    Calls read their arguments (a helper's ``nargs``; r1-r5 for bpf-to-bpf and kfunc calls)
    and write r0-r5 (r0 the result, r1-r5 clobbered, as the eBPF calling convention has it).
    ``LD_ABS``/``LD_IND`` read r6 (the context) and write r0-r5 likewise. ``exit`` reads r0.
    An atomic with FETCH writes its source register (``cmpxchg`` reads and writes r0).
    """
    kind = insn.kind
    spec = insn.spec
    dst, src = insn.dst, insn.src
    if kind is Kind.ALU:
        reads = set() if spec.op is AluOp.MOV else {dst}
        if spec.source is Source.X:
            reads.add(src)
        return frozenset(reads), frozenset({dst})
    if kind in (Kind.NEG, Kind.ENDIAN, Kind.BSWAP):
        return frozenset({dst}), frozenset({dst})
    if kind is Kind.JA:
        return frozenset(), frozenset()
    if kind is Kind.JCOND:
        return frozenset({dst, src} if spec.source is Source.X else {dst}), frozenset()
    if kind is Kind.CALL:
        nargs = helper_nargs(insn.imm) if src == CallKind.HELPER else 5
        return frozenset(range(1, nargs + 1)), frozenset(range(0, 6))
    if kind is Kind.EXIT:
        return frozenset({0}), frozenset()
    if kind is Kind.LDDW:
        return frozenset(), frozenset({dst})
    if kind is Kind.LD_ABS:
        return frozenset({6}), frozenset(range(0, 6))
    if kind is Kind.LD_IND:
        return frozenset({6, src}), frozenset(range(0, 6))
    if kind in (Kind.LDX, Kind.LDXSX):
        return frozenset({src}), frozenset({dst})
    if kind is Kind.ST:
        return frozenset({dst}), frozenset()
    if kind is Kind.STX:
        return frozenset({dst, src}), frozenset()
    if kind is Kind.ATOMIC:
        if insn.imm == AtomicOp.CMPXCHG:
            return frozenset({dst, src, 0}), frozenset({0})
        if insn.imm & AtomicOp.FETCH:
            return frozenset({dst, src}), frozenset({src})
        return frozenset({dst, src}), frozenset()
    raise RtcError(f"no register model for {kind.value}")  # pragma: no cover


def jump_target(insn: Insn, slot: int) -> int | None:
    """The slot a jump or bpf-to-bpf call goes to; None for other instructions."""
    kind = insn.kind
    if kind is Kind.JA:
        rel = insn.off if insn.spec.cls is InsnClass.JMP else insn.imm
        return slot + 1 + rel
    if kind is Kind.JCOND:
        return slot + 1 + insn.off
    if kind is Kind.CALL and insn.src == CallKind.LOCAL:
        return slot + 1 + insn.imm
    return None


def is_block_end(insn: Insn) -> bool:
    """True when the slot after ``insn`` starts a new block."""
    return insn.kind in (*_CONTROL, Kind.CALL, Kind.LD_ABS, Kind.LD_IND)


# --- basic blocks ------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """A basic block: instructions ``insns`` at ``slots`` (lddw: its first slot)."""

    start: int
    slots: tuple[int, ...]
    insns: tuple[Insn, ...]
    function: str

    @property
    def end(self) -> int:
        """The slot after the block's last instruction."""
        return self.slots[-1] + self.insns[-1].slots

    @property
    def last(self) -> Insn:
        return self.insns[-1]

    def __len__(self) -> int:
        return len(self.insns)


@dataclass(frozen=True)
class Cfg:
    """The basic blocks of one linked program, by start slot."""

    program: str
    blocks: dict[int, Block]
    function_starts: frozenset[int]

    def block_at(self, slot: int) -> Block:
        block = self.blocks.get(slot)
        if block is None:
            raise RtcError(f"{self.program}: slot {slot} does not start a basic block")
        return block

    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks.values())


def build_cfg(prog: ProgramDef) -> Cfg:
    """Cut ``prog`` into basic blocks (the leaders are listed in the module docstring)."""
    offsets = slot_offsets(prog.insns)
    end = prog.num_slots
    func_starts = {f.start for f in prog.functions} | {0}
    leaders = set(func_starts)
    for insn, slot in zip(prog.insns, offsets, strict=True):
        target = jump_target(insn, slot)
        if target is not None:
            if not 0 <= target < end:
                raise RtcError(f"{prog.name}: insn {slot} jumps to slot {target}, outside "
                               f"the program's {end} slots")
            leaders.add(target)
        if insn.kind is Kind.LDDW and insn.src == PseudoSrc.FUNC:
            leaders.add(slot + 1 + insn.imm)  # a callback's entry
        if is_block_end(insn):
            leaders.add(slot + insn.slots)
    blocks: dict[int, Block] = {}
    cur_slots: list[int] = []
    cur_insns: list[Insn] = []

    def flush() -> None:
        if cur_slots:
            func = prog.function_at(cur_slots[0])
            blocks[cur_slots[0]] = Block(cur_slots[0], tuple(cur_slots), tuple(cur_insns),
                                         func.name if func else prog.name)
            cur_slots.clear()
            cur_insns.clear()

    for insn, slot in zip(prog.insns, offsets, strict=True):
        if slot in leaders:
            flush()
        cur_slots.append(slot)
        cur_insns.append(insn)
    flush()
    return Cfg(prog.name, blocks, frozenset(func_starts))


# --- from a trace to the blocks it executed ----------------------------------------------

@dataclass
class _Frame:
    prog: ProgramDef
    callback_slot: int | None = None  # the helper call that started this callback


def iter_executed_blocks(prog: ProgramDef, trace: Trace,
                         programs: Mapping[str, ProgramDef] | None = None,
                         cfgs: dict[str, Cfg] | None = None,
                         ) -> Iterator[tuple[ProgramDef, Block]]:
    """Every basic block the run in ``trace`` executed, in order, with its program.

    ``programs`` resolves tail-call targets by name (e.g. ``{p.name: p for p in
    obj.programs}``); ``cfgs`` caches block tables by program name. Raises RtcError when the
    blocks do not add up to ``trace.insns`` instructions.
    """
    cfgs = {} if cfgs is None else cfgs
    programs = programs or {}

    def cfg_of(p: ProgramDef) -> Cfg:
        cfg = cfgs.get(p.name)
        if cfg is None:
            cfg = cfgs[p.name] = build_cfg(p)
        return cfg

    path = trace.path
    taken = {t.path_index: t for t in trace.tail_calls if t.target is not None}
    cur = prog
    frames: list[_Frame] = []
    counted = 0
    for i, start in enumerate(path):
        cfg = cfg_of(cur)
        nxt = path[i + 1] if i + 1 < len(path) else None
        block = cfg.block_at(start)
        while True:
            yield cur, block
            counted += len(block)
            last, last_slot = block.last, block.slots[-1]
            kind = last.kind
            if nxt is None and counted >= trace.insns:
                break
            if kind in (Kind.JA, Kind.JCOND):
                break
            if kind is Kind.EXIT:
                if frames:
                    frame = frames.pop()
                    if (frame.callback_slot is not None and nxt is not None
                            and nxt != frame.callback_slot + 1):
                        frames.append(frame)  # the helper starts its next callback
                    cur = frame.prog
                break
            if kind is Kind.CALL and last.src == CallKind.LOCAL:
                frames.append(_Frame(cur))
                break
            if kind is Kind.CALL and last.src == CallKind.HELPER and nxt is not None:
                tail = taken.get(i + 1)
                if tail is not None and tail.slot == last_slot:
                    target = programs.get(tail.target or "")
                    if target is None:
                        raise RtcError(f"{prog.name}: the trace tail-calls '{tail.target}'; "
                                       f"pass its ProgramDef in programs")
                    cur = target
                    break
                if (helper_name(last.imm) in CALLBACK_HELPERS and nxt in cfg.function_starts
                        and nxt != block.end):
                    frames.append(_Frame(cur, last_slot))
                    break
            following = cfg.blocks.get(block.end)
            if following is None or following.function != block.function:
                raise RtcError(f"{cur.name}: the run from slot {start} falls off its function "
                               f"at slot {block.end} (trace does not fit the program)")
            block = following
    if counted != trace.insns:
        raise RtcError(f"{prog.name}: the trace's path covers {counted} instructions, the "
                       f"trace counts {trace.insns}")


# --- pointer analysis --------------------------------------------------------------------

CTX, PKT, PKT_END, STACK, MAP_VALUE, MAP_PTR, SCALAR, UNKNOWN, UNINIT = (
    "ctx", "packet", "packet_end", "stack", "map_value", "map", "scalar", "unknown", "uninit")
MEMORY_LEVELS = (STACK, PKT, CTX, MAP_VALUE, UNKNOWN)
_POINTERS = (CTX, PKT, PKT_END, STACK, MAP_VALUE)
_MAX_CONSTS = 16
_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


@dataclass(frozen=True)
class Val:
    """An abstract register value: a kind, an offset (stack: from the frame's r10; ctx: the
    field offset) when known, the frame function of a stack pointer, and the constant values
    of a scalar when known (at most 16)."""

    kind: str
    off: int | None = None
    consts: frozenset[int] | None = None
    frame: int | None = None

    def join(self, other: Val) -> Val:
        if self == other or other.kind == UNINIT:
            return self
        if self.kind == UNINIT:
            return other
        if self.kind != other.kind:
            return _UNKNOWN
        off = self.off if self.off == other.off else None
        frame = self.frame if self.frame == other.frame else None
        consts = None
        if self.consts is not None and other.consts is not None:
            union = self.consts | other.consts
            consts = union if len(union) <= _MAX_CONSTS else None
        return Val(self.kind, off, consts, frame)


_UNKNOWN = Val(UNKNOWN)
_UNINIT = Val(UNINIT)
_SCALAR = Val(SCALAR)


@dataclass(frozen=True)
class _State:
    regs: tuple[Val, ...]
    spills: tuple[tuple[int, Val], ...] = ()  # 8-byte stack slots: offset -> value

    def join(self, other: _State) -> _State:
        regs = tuple(a.join(b) for a, b in zip(self.regs, other.regs, strict=True))
        mine, theirs = dict(self.spills), dict(other.spills)
        spills = tuple(sorted((k, v.join(theirs[k])) for k, v in mine.items() if k in theirs))
        return _State(regs, spills)

    def set(self, reg: int, val: Val) -> _State:
        regs = list(self.regs)
        regs[reg] = val
        return replace(self, regs=tuple(regs))


@dataclass(frozen=True)
class PointerInfo:
    """What ``analyze_pointers`` found.

    ``regions``: slot -> the memory a load, store or atomic touches (``MEMORY_LEVELS``).
    ``stack_offsets``: slot -> the constant stack offset accessed (r10-relative, negative),
    for accesses through a stack pointer of known offset. ``variable_stack``: slots accessing
    the stack at an offset not known at load time. ``stack_depth``: function name -> bytes
    of its own frame used (the deepest constant offset reached, pointers passed to helpers
    included). ``exit_verdicts``: the constant values (u32) r0 may hold at the entry
    function's exits, or None when some exit returns a value not known at load time.
    ``reachable``: block starts the analysis reached from slot 0.
    """

    regions: dict[int, str]
    stack_offsets: dict[int, int]
    variable_stack: frozenset[int]
    stack_depth: dict[str, int]
    exit_verdicts: frozenset[int] | None
    reachable: frozenset[int]
    map_value_stores: frozenset[int]
    exit_values: dict[int, frozenset[int] | None] = field(default_factory=dict)
    """Entry-function exit slot -> the constant u32 values r0 may hold there (None: not known)."""
    bounds_checks: frozenset[int] = frozenset()
    """Conditional jumps comparing a packet pointer with the packet end."""


def _const(val: Val) -> int | None:
    if val.kind == SCALAR and val.consts is not None and len(val.consts) == 1:
        return next(iter(val.consts))
    return None


def _scalar(*values: int) -> Val:
    return Val(SCALAR, consts=frozenset(v & _M64 for v in values))


def _alu(insn: Insn, state: _State) -> Val:
    spec = insn.spec
    is64 = spec.is64
    dst = state.regs[insn.dst]
    src = state.regs[insn.src] if spec.source is Source.X else _scalar(insn.imm)
    op = spec.op
    if not is64:
        if op is AluOp.MOV and insn.off == 0 and src.kind == SCALAR and src.consts is not None:
            return Val(SCALAR, consts=frozenset(c & _M32 for c in src.consts))
        return _SCALAR
    if op is AluOp.MOV:
        return src if insn.off == 0 else _SCALAR
    if op in (AluOp.ADD, AluOp.SUB):
        k = _const(src)
        if dst.kind in _POINTERS and src.kind == SCALAR:
            if dst.off is not None and k is not None:
                signed = k - (1 << 64) if k >> 63 else k
                return replace(dst, off=dst.off + (signed if op is AluOp.ADD else -signed))
            return replace(dst, off=None)
        if op is AluOp.ADD and dst.kind == SCALAR and src.kind in _POINTERS:
            return replace(src, off=None)
        if dst.kind == SCALAR and src.kind == SCALAR and dst.consts is not None and k is not None:
            return _scalar(*((c + k) if op is AluOp.ADD else (c - k) for c in dst.consts))
        if dst.kind in _POINTERS or src.kind in _POINTERS:
            return _SCALAR if dst.kind == src.kind else _UNKNOWN
    return _SCALAR


def _load(insn: Insn, state: _State) -> Val:
    base = state.regs[insn.src]
    if base.kind == CTX and base.off is not None:
        field = base.off + insn.off
        return {0: Val(PKT, 0), 4: Val(PKT_END), 8: Val(PKT)}.get(field, _SCALAR)
    if (base.kind == STACK and base.off is not None and insn.kind is Kind.LDX
            and insn.spec.width == 8):
        return dict(state.spills).get(base.off + insn.off, _SCALAR)
    return _SCALAR


def _store(insn: Insn, state: _State) -> _State:
    base = state.regs[insn.dst]
    if base.kind != STACK:
        return state
    if base.off is None:
        return replace(state, spills=())
    at = base.off + insn.off
    width = insn.spec.width
    spills = {k: v for k, v in state.spills if k + 8 <= at or at + width <= k}
    if insn.kind is Kind.STX and width == 8:
        spills[at] = state.regs[insn.src]
    return replace(state, spills=tuple(sorted(spills.items())))


def analyze_pointers(prog: ProgramDef, cfg: Cfg | None = None) -> PointerInfo:
    """Run the pointer analysis of the module docstring over ``prog``."""
    cfg = cfg or build_cfg(prog)
    entry_state = _State(tuple([_UNINIT, Val(CTX, 0)] + [_UNINIT] * 8 + [Val(STACK, 0,
                                                                            frame=0)]))
    states: dict[int, _State] = {0: entry_state}
    work = [0]
    regions: dict[int, str] = {}
    stack_offsets: dict[int, int] = {}
    variable: set[int] = set()
    value_stores: set[int] = set()
    depth: dict[int, int] = {}
    exits: dict[int, Val] = {}
    checks: set[int] = set()
    entry_func = prog.function_at(0)
    entry_end = entry_func.start + entry_func.size if entry_func else prog.num_slots

    def flow(target: int, state: _State) -> None:
        old = states.get(target)
        new = state if old is None else old.join(state)
        if new != old:
            states[target] = new
            work.append(target)

    def touch(slot: int, base: Val, off: int, width: int, frame_start: int) -> None:
        if base.kind == STACK:
            if base.off is None:
                variable.add(slot)
            else:
                at = base.off + off
                stack_offsets[slot] = at
                key = base.frame if base.frame is not None else frame_start
                depth[key] = max(depth.get(key, 0), -at)
        regions[slot] = base.kind if base.kind in MEMORY_LEVELS else UNKNOWN

    def run_block(start: int) -> None:
        block = cfg.block_at(start)
        state = states[start]
        func = prog.function_at(start)
        fstart = func.start if func else 0
        for insn, slot in zip(block.insns, block.slots, strict=True):
            kind = insn.kind
            if kind is Kind.ALU:
                val = _alu(insn, state)
                if val.kind == STACK and val.off is not None:
                    key = val.frame if val.frame is not None else fstart
                    depth[key] = max(depth.get(key, 0), -val.off)
                state = state.set(insn.dst, val)
            elif kind in (Kind.NEG, Kind.ENDIAN, Kind.BSWAP):
                state = state.set(insn.dst, _SCALAR)
            elif kind is Kind.LDDW:
                if insn.src in (PseudoSrc.MAP_FD, PseudoSrc.MAP_IDX):
                    val = Val(MAP_PTR)
                elif insn.src in (PseudoSrc.MAP_VALUE, PseudoSrc.MAP_IDX_VALUE):
                    val = Val(MAP_VALUE)
                elif insn.src == PseudoSrc.IMM64:
                    val = _scalar(insn.imm64)
                else:
                    val = _UNKNOWN
                state = state.set(insn.dst, val)
            elif kind in (Kind.LDX, Kind.LDXSX):
                base = state.regs[insn.src]
                touch(slot, base, insn.off, insn.spec.width, fstart)
                state = state.set(insn.dst, _load(insn, state))
            elif kind in (Kind.ST, Kind.STX):
                base = state.regs[insn.dst]
                touch(slot, base, insn.off, insn.spec.width, fstart)
                if base.kind == MAP_VALUE:
                    value_stores.add(slot)
                state = _store(insn, state)
            elif kind is Kind.ATOMIC:
                touch(slot, state.regs[insn.dst], insn.off, insn.spec.width, fstart)
                state = _store(insn, state)
                _, written = insn_regs(insn)
                for reg in written:
                    state = state.set(reg, _SCALAR)
            elif kind in (Kind.LD_ABS, Kind.LD_IND):
                regions[slot] = PKT
                state = state.set(0, _SCALAR)
                for reg in range(1, 6):
                    state = state.set(reg, _UNINIT)
            elif kind is Kind.CALL:
                if insn.src == CallKind.LOCAL:
                    target = slot + 1 + insn.imm
                    callee = state.regs[:6] + (_UNINIT,) * 4 + (Val(STACK, 0, frame=target),)
                    flow(target, _State(callee))
                ret = _SCALAR
                if insn.src == CallKind.HELPER and helper_name(insn.imm) in LOOKUP_HELPERS:
                    ret = Val(MAP_VALUE)
                state = state.set(0, ret)
                for reg in range(1, 6):
                    state = state.set(reg, _UNINIT)
            elif kind is Kind.EXIT:
                if slot < entry_end and (func is None or func.start == 0):
                    exits[slot] = state.regs[0] if slot not in exits else exits[slot].join(
                        state.regs[0])
            elif kind is Kind.JCOND and insn.spec.source is Source.X:
                pair = {state.regs[insn.dst].kind, state.regs[insn.src].kind}
                if pair == {PKT, PKT_END}:
                    checks.add(slot)
            target = jump_target(insn, slot)
            if kind in (Kind.JA, Kind.JCOND):
                flow(target, state)  # type: ignore[arg-type]
        last = block.last
        if last.kind not in (Kind.JA, Kind.EXIT) and block.end < prog.num_slots:
            nxt = cfg.blocks.get(block.end)
            if nxt is not None and nxt.function == block.function:
                flow(block.end, state)

    while work:
        run_block(work.pop())

    # One more pass over the final states records what each instruction touches (the
    # fixpoint passes saw intermediate, more precise states).
    for found in (regions, stack_offsets, depth, exits):
        found.clear()
    for found_set in (variable, value_stores, checks):
        found_set.clear()
    for start in sorted(states):
        run_block(start)

    exit_values = {slot: (frozenset(c & _M32 for c in val.consts)
                          if val.kind == SCALAR and val.consts is not None else None)
                   for slot, val in sorted(exits.items())}
    verdicts: frozenset[int] | None = frozenset()
    for values in exit_values.values():
        verdicts = None if values is None or verdicts is None else verdicts | values
    names = {f.start: f.name for f in prog.functions}
    return PointerInfo(
        regions=regions, stack_offsets=stack_offsets, variable_stack=frozenset(variable),
        stack_depth={names.get(k, prog.name): v for k, v in depth.items()},
        exit_verdicts=verdicts, reachable=frozenset(states),
        map_value_stores=frozenset(value_stores), exit_values=exit_values,
        bounds_checks=frozenset(checks))


def source_line(prog: ProgramDef, slot: int) -> SourceLine | None:
    """The C line of ``slot``: ``ProgramDef.source_line``, skipping the line-0 entries clang
    emits for code it cannot attribute (the nearest earlier real line of the function)."""
    line = prog.source_line(slot)
    if line is None or line.line > 0:
        return line
    func = prog.function_at(slot)
    lo = func.start if func else 0
    best = max((s for s, ln in prog.lines.items() if lo <= s <= slot and ln.line > 0),
               default=None)
    return prog.lines[best] if best is not None else line


def describe_slot(prog: ProgramDef, slot: int) -> str:
    """``insn <slot>`` with the C source line (file name, line, text) when there is one."""
    line = source_line(prog, slot)
    if line is None:
        return f"insn {slot}"
    text = f": {line.text.strip()}" if line.text.strip() else ""
    return f"insn {slot} ({os.path.basename(line.file)}:{line.line}{text})"
