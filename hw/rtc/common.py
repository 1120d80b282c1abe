"""What the run-to-completion models share: the result type, basic blocks, the walk from a VM
trace to the blocks it executed, register use, and the memory each access touches.

Basic blocks (``build_cfg``): the shared control-flow graph's finer cut
(``ebpf.analysis.build_cfg(prog, cut_calls=True)``). Leaders are every function entry
(callbacks named by ``lddw rX, func`` included), every jump target, and the slot after every
conditional branch, ``ja``/``gotol``, call (helper, bpf-to-bpf, kfunc), ``exit`` and legacy
packet load (``LD_ABS``/``LD_IND``, which may leave the program). This is how hXDP's
compiler cuts a program (Brunella et al., OSDI 2020, sec. 3). A block never spans two
functions; ``lddw`` is one instruction of two slots.

The walk (``iter_executed_blocks``). ``Trace.path`` lists the slot where each straight-line
run starts (ebpf.vm.trace). A run goes block by block through fall-throughs until its block
ends in a control transfer: a branch, ``ja``, ``exit``, a bpf-to-bpf call, a taken tail call
(``Trace.tail_calls``) or a helper that called back into the program (``bpf_loop``). The
walk counts the instructions it covers and must reach ``Trace.insns`` exactly; otherwise it
raises ``RtcError`` (so a block table that disagrees with the VM never goes unnoticed).

Memory levels and bounds checks (``memory_levels``, ``bounds_checks``) read the shared
abstract interpretation (``ebpf.analysis.analyze``, the one pointer analysis of the
project): the memory each load, store and atomic touches, and the jumps comparing a packet
pointer with the packet end.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ebpf.analysis import Analysis, CfgError, Region
from ebpf.analysis import build_cfg as build_program_cfg
from ebpf.code.isa import AluOp, AtomicOp, CallKind, Insn, Kind, Source
from ebpf.kernel_enums import MAP_HELPERS, helper_name  # noqa: F401  (MAP_HELPERS: npu, vliw)
from ebpf.loader.program import ProgramDef
from ebpf.vm.trace import Trace
from hw.errors import HwError
from hw.ethernet import wire_mpps  # noqa: F401  (hw.rtc.wire_mpps, used by the models)

# Helpers that run a callback of the program (the VM's start_callback); a run ends there.
CALLBACK_HELPERS = frozenset({"loop", "for_each_map_elem", "find_vma", "user_ringbuf_drain"})


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
    try:
        shared = build_program_cfg(prog, cut_calls=True)
    except CfgError as exc:
        raise RtcError(f"{prog.name}: {exc.args[0]}") from exc
    insn_at = dict(zip(prog.get_slot_offsets(), prog.insns, strict=True))
    blocks = {b.start: Block(b.start, b.slots, tuple(insn_at[s] for s in b.slots), b.func)
              for b in sorted(shared.iter_blocks(), key=lambda b: b.start)}
    return Cfg(prog.name, blocks, frozenset({f.start for f in prog.functions} | {0}))


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


# --- memory levels and bounds checks, from the shared analysis ---------------------------

MEMORY_LEVELS = ("stack", "packet", "ctx", "map_value", "unknown")
# What each region a load, store or atomic may touch counts as. The packet's metadata area
# (data_meta) sits in the packet buffer, before the data (modelling choice: packet memory);
# a pointer the analysis cannot name (joined kinds, a scalar used as an address) is unknown.
_LEVEL = {Region.STACK: "stack", Region.PACKET: "packet", Region.PACKET_META: "packet",
          Region.CTX: "ctx", Region.MAP_VALUE: "map_value"}


def memory_levels(an: Analysis) -> dict[int, str]:
    """Reachable slot -> the memory level (``MEMORY_LEVELS``) its load, store or atomic
    touches, from ``an.accesses`` joined over call strings (an access that touches two
    regions on two call strings is ``unknown``). Legacy packet loads (``LD_ABS`` /
    ``LD_IND``) read the packet. Helper arguments are not counted here: the models charge
    helpers per call."""
    levels: dict[int, str] = {}
    for slot in an.reachable_slots():
        insn = an.insn_at[slot]
        if insn.kind in (Kind.LD_ABS, Kind.LD_IND):
            levels[slot] = "packet"
            continue
        if insn.kind not in (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC):
            continue
        found = [a for a in an.accesses(slot) if a.helper is None]
        if found:
            levels[slot] = _LEVEL.get(found[0].region, "unknown")
    return levels


def bounds_checks(an: Analysis) -> frozenset[int]:
    """Reachable conditional jumps that compare a packet pointer with the packet end (in the
    state joined over call strings): the packet bounds checks the verifier needs."""
    found = set()
    for slot in an.reachable_slots():
        insn = an.insn_at[slot]
        if insn.kind is not Kind.JCOND or insn.spec.source is not Source.X:
            continue
        st = an.state_before(slot)
        if st is not None and {st.reg(insn.dst).kind, st.reg(insn.src).kind} == {
                Region.PACKET, Region.PACKET_END}:
            found.add(slot)
    return frozenset(found)
