"""A verifier-like abstract interpretation of registers and stack, per program point.

The domain (``ebpf.analysis.domain``) follows the kernel verifier (kernel/bpf/verifier.c,
tnum.c):

- ``Scalar``: a 64-bit value as known bits (tnum ``value``/``mask``: bits set in ``mask``
  are unknown) and unsigned and signed ranges, kept in sync (``Scalar.make``).
- ``Val``: what a register or stack slot holds: a scalar, or a pointer of a ``Region``
  (context, packet, packet end, map, map value, stack, function) with an offset.
  A packet pointer is ``base + off``: ``off`` a constant, the base ``data`` plus a variable
  part ``num``; pointers that share a base share an ``id``. ``State.pkt`` holds, per base,
  the bytes proven readable after it (a branch ``base + N > data_end`` that falls through
  proves N, as the kernel's find_good_pkt_pointers). A map-value pointer from a lookup is
  ``null`` (maybe NULL) until a comparison with 0 clears it in every copy (same ``id``).
- ``State``: r0-r10, the callers' saved r6-r9, one stack frame per active call (8-byte
  spills keep pointers; smaller stores keep scalars), and the proven packet ranges.

The interpreter follows both directions of every branch and narrows the operands (also
copies of a scalar, by ``id``), joins states where paths meet, widens at loop heads after
``WIDEN_DELAY`` visits and then runs ``NARROW_PASSES`` descending passes. Sub-programs are
analysed once per call string and entry state (memoised). Packet bases that differ between
joined paths become a new base named after the join point (``j<slot>.<location>``), with
the smaller proven range: ``data+14`` joined with ``data+18`` is a variable offset 14..18.

Queries (``Analysis``): the state before a slot (per call string or joined over them), the
memory accesses of a slot (``Access``: region, constant or variable offset, proven in range),
the feasible edges, the stack depth, the trip bound of a loop, the possible return values.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import reduce

from ebpf.analysis.cfg import (
    MAX_CALL_DEPTH,
    AnalysisError,
    FunctionCfg,
    ProgramCfg,
    build_cfg,
)
from ebpf.analysis.domain import (
    DATA,
    M32,
    NEGATE,
    NOT_INIT,
    SWAP,
    UNKNOWN,
    Region,
    Scalar,
    State,
    Val,
    _narrow,
    _retire,
    alu,
    endian,
    entry_state,
    join_states,
    refine,
    scalar,
    sext,
    sized,
    trunc,
)
from ebpf.analysis.graph import Loop
from ebpf.code.isa import AluOp, AtomicOp, CallKind, InsnClass, JmpOp, Kind, PseudoSrc, Source
from ebpf.kernel_enums import helper_name
from ebpf.loader.elf import ElfObject
from ebpf.loader.program import ProgramDef

WIDEN_DELAY = 48
NARROW_PASSES = 2
MAX_VISITS = 256
MAX_PACKET = 0xFFFF
JMP_REL = {JmpOp.JEQ: "eq", JmpOp.JNE: "ne", JmpOp.JGT: "ugt", JmpOp.JGE: "uge",
           JmpOp.JLT: "ult", JmpOp.JLE: "ule", JmpOp.JSGT: "sgt", JmpOp.JSGE: "sge",
           JmpOp.JSLT: "slt", JmpOp.JSLE: "sle", JmpOp.JSET: "set"}
# struct xdp_md: offset -> field
CTX_FIELDS = {0: "data", 4: "data_end", 8: "data_meta", 12: "ingress_ifindex",
              16: "rx_queue_index", 20: "egress_ifindex"}


# --- helpers, as the analysis sees them -----------------------------------------------------

ERRNO = Scalar.srange(-4095, 0)
# Return values (r0) other than an unknown 64-bit scalar; map lookups are handled apart.
HELPER_RETURNS: dict[str, Scalar] = {
    "get_prandom_u32": Scalar.urange(0, M32), "get_smp_processor_id": Scalar.urange(0, M32),
    "get_numa_node_id": Scalar.urange(0, M32), "xdp_get_buff_len": Scalar.urange(0, M32),
    "redirect": Scalar.make(0, 4, 0, 4),       # XDP_REDIRECT, or XDP_ABORTED on bad flags
    "redirect_map": Scalar.urange(0, 4),      # XDP_REDIRECT or the flags' fallback action
    "map_update_elem": ERRNO, "map_delete_elem": ERRNO, "xdp_adjust_head": ERRNO,
    "xdp_adjust_tail": ERRNO, "xdp_adjust_meta": ERRNO, "xdp_load_bytes": ERRNO,
    "xdp_store_bytes": ERRNO, "tail_call": ERRNO, "fib_lookup": Scalar.srange(-4095, 9),
}
# Pointer arguments: (argument register, size: an argument register or "key"/"value" of the
# map in r1, written by the helper).
HELPER_MEMORY: dict[str, tuple[tuple[int, int | str, bool], ...]] = {
    "map_lookup_elem": ((2, "key", False),), "map_lookup_percpu_elem": ((2, "key", False),),
    "map_update_elem": ((2, "key", False), (3, "value", False)),
    "map_delete_elem": ((2, "key", False),), "map_push_elem": ((2, "value", False),),
    "map_pop_elem": ((2, "value", True),), "map_peek_elem": ((2, "value", True),),
    "csum_diff": ((1, 2, False), (3, 4, False)), "fib_lookup": ((2, 3, True),),
    "xdp_load_bytes": ((3, 4, True),), "xdp_store_bytes": ((3, 4, False),),
    "perf_event_output": ((4, 5, False),), "ringbuf_output": ((2, 3, False),),
    "trace_printk": ((1, 2, False),), "check_mtu": ((2, 8, True),),
}
NO_POINTER_HELPERS = frozenset({
    "ktime_get_ns", "ktime_get_boot_ns", "ktime_get_coarse_ns", "ktime_get_tai_ns",
    "jiffies64", "get_prandom_u32", "get_smp_processor_id", "get_numa_node_id", "redirect",
    "redirect_map", "tail_call", "xdp_adjust_head", "xdp_adjust_tail", "xdp_adjust_meta",
    "xdp_get_buff_len"})
PACKET_MOVERS = frozenset({"xdp_adjust_head", "xdp_adjust_tail", "xdp_adjust_meta"})


@dataclass(frozen=True)
class Access:
    """One memory access of an instruction or of a helper's pointer argument."""

    slot: int
    region: Region
    write: bool
    size: int | None
    offset: Scalar | None
    """Bytes from the region's start: packet data, the frame top (negative), the map value."""
    in_range: bool | None = None
    """Packet accesses: inside the range the bounds checks proved, on every path."""
    map: int | None = None
    frame: int = 0
    atomic: bool = False
    helper: str | None = None
    null: bool = False
    field: str | None = None
    """Context accesses: the ``struct xdp_md`` field."""

    @property
    def is_constant(self) -> bool:
        return self.offset is not None and self.offset.is_const

    @property
    def value(self) -> int | None:
        """The offset when it is a constant (signed), else None."""
        return self.offset.signed_value if self.is_constant else None  # type: ignore[union-attr]

    def join(self, other: Access) -> Access:
        if (self.region, self.map, self.frame) != (other.region, other.map, other.frame):
            return replace(self, region=Region.UNKNOWN, offset=None, in_range=None, map=None)
        offset = (self.offset.join(other.offset)
                  if self.offset is not None and other.offset is not None else None)
        in_range = (None if self.in_range is None or other.in_range is None
                    else self.in_range and other.in_range)
        return replace(self, offset=offset, in_range=in_range, null=self.null or other.null)


def _memory(st: State, slot: int, ptr: Val, off: int, size: int | None, write: bool,
            **extra) -> Access:
    if ptr.kind is Region.PACKET:
        lo = ptr.off + off
        offset = alu(AluOp.ADD, ptr.num, Scalar.const(lo))
        in_range = size is not None and ptr.num.smin >= 0 and (
            (lo >= 0 and lo + size <= st.proven(ptr.id))
            or (ptr.num.umin + lo >= 0 and ptr.num.umax + lo + size <= st.proven(DATA)))
        return Access(slot, Region.PACKET, write, size, offset, in_range, null=ptr.null, **extra)
    if not ptr.is_pointer:
        return Access(slot, Region.UNKNOWN, write, size, None, **extra)
    offset = alu(AluOp.ADD, ptr.num, Scalar.const(off)) if off else ptr.num
    name = CTX_FIELDS.get(offset.value) if ptr.kind is Region.CTX and offset.is_const else None
    return Access(slot, ptr.kind, write, size, offset, map=ptr.map, frame=ptr.frame,
                  null=ptr.null, field=name, **extra)


# --- the analysis -----------------------------------------------------------------------------

@dataclass
class _Result:
    """One function run under one call string and entry state, with its nested calls."""

    exit: State | None
    states: dict[tuple[int, ...], dict[int, State]] = field(default_factory=dict)
    edges: dict[tuple[int, ...], frozenset[tuple[int, int]]] = field(default_factory=dict)
    outs: dict[tuple[int, ...], dict[tuple[int, int], State | None]] = field(default_factory=dict)

    def absorb(self, other: _Result) -> None:
        self.states.update(other.states)
        self.edges.update(other.edges)
        self.outs.update(other.outs)


class Analysis:
    """The abstract interpretation of one linked program; build with ``analyze``."""

    def __init__(self, prog: ProgramDef, obj: ElfObject | None = None,
                 cfg: ProgramCfg | None = None) -> None:
        self.prog = prog
        self.obj = obj
        self.cfg = cfg or build_cfg(prog)  # its CfgError is an AnalysisError
        self.insn_at = dict(zip(prog.get_slot_offsets(), prog.insns, strict=True))
        self._memo: dict[tuple, _Result] = {}
        result = self._run((), self.cfg.entry, entry_state())
        self._states = result.states
        self._edges = result.edges
        self._outs = result.outs
        self._memo.clear()

    # -- queries --------------------------------------------------------------------------

    def contexts(self) -> list[tuple[int, ...]]:
        """Call strings the analysis reached (``()`` is the entry function)."""
        return sorted(self._states)

    def state_before(self, slot: int, context: tuple[int, ...] | None = None) -> State | None:
        """The abstract state before ``slot``: in one call string, or joined over all of them.

        None when no path reaches the slot.
        """
        if context is not None:
            return self._states.get(context, {}).get(slot)
        found = [s[slot] for s in self._states.values() if slot in s]
        return reduce(lambda x, y: join_states(x, y, slot), found) if found else None

    def iter_states(self, slot: int) -> Iterator[tuple[tuple[int, ...], State]]:
        for cs, states in sorted(self._states.items()):
            if slot in states:
                yield cs, states[slot]

    def is_reachable(self, slot: int) -> bool:
        return any(slot in s for s in self._states.values())

    def reachable_slots(self) -> list[int]:
        return sorted({s for states in self._states.values() for s in states})

    def feasible_edges(self, context: tuple[int, ...] = ()) -> frozenset[tuple[int, int]]:
        """Block edges (start, start) some path takes, in one call string."""
        return self._edges.get(context, frozenset())

    def accesses(self, slot: int) -> list[Access]:
        """The memory accesses of ``slot``, joined over call strings."""
        out: list[Access] | None = None
        for _, st in self.iter_states(slot):
            found = self._accesses(st, slot)
            out = found if out is None else [a.join(b) for a, b in zip(out, found, strict=True)]
        return out or []

    def iter_accesses(self) -> Iterator[Access]:
        for slot in self.reachable_slots():
            yield from self.accesses(slot)

    def stack_depth(self, function: str) -> int:
        """Bytes of its own frame a function uses (deepest access, helpers' arguments too)."""
        f = self.cfg.get_function(function).func
        depth = 0
        for a in self.iter_accesses():
            if (a.region is Region.STACK and a.frame == 0 and a.offset is not None
                    and f.start <= a.slot < f.start + f.size):
                depth = max(depth, -a.offset.smin if a.offset.smin < 0 else 0)
        return depth

    def max_stack_depth(self) -> tuple[int, tuple[int, ...]]:
        """(bytes, call string): the deepest chain of frames, as the kernel adds them up."""
        depth = {name: self.stack_depth(name) for name in self.cfg.functions}
        best: tuple[int, tuple[int, ...]] = (0, ())
        for cs in self.cfg.contexts():
            chain = [self.cfg.entry] + [self.cfg.block_of(c).callee for c in cs]
            total = sum(depth[n] for n in chain if n is not None)
            best = max(best, (total, cs))
        return best

    def return_value(self) -> Scalar | None:
        """What the program may return (r0 at the entry function's exits), or None."""
        vals = []
        for b in self.cfg.get_function(self.cfg.entry).exits:
            st = self.state_before(self.cfg.get_function(self.cfg.entry).blocks[b].last, ())
            if st is not None:
                r0 = st.reg(0)
                if r0.kind is not Region.SCALAR:
                    return None
                vals.append(r0.num)
        return reduce(Scalar.join, vals) if vals else None

    def loop_trips(self, loop: Loop, limit: int = 256) -> int | None:
        """How often the loop's header runs at most, by unrolling; None: unbounded or over
        ``limit``, or a loop nested in it. The largest over the call strings."""
        fcfg = self.cfg.get_function(loop.func)
        if any(o is not loop and o.body < loop.body for o in fcfg.loops) or not loop.reducible:
            return None
        worst = 0
        for cs, name in self.cfg.contexts().items():
            outs = self._outs.get(cs)
            if name != loop.func or outs is None:
                continue
            st = reduce(lambda x, y: join_states(x, y, loop.header),
                        [outs.get((p, loop.header)) for p in fcfg.preds[loop.header]
                         if p not in loop.body], None)
            trips = 0
            while st is not None:
                trips += 1
                if trips > limit:
                    return None
                back = self._iterate(cs, fcfg, loop, st)
                if back == st:
                    return None
                st = back
            worst = max(worst, trips)
        return worst

    # -- the fixpoint ---------------------------------------------------------------------

    def _run(self, cs: tuple[int, ...], name: str, entry: State) -> _Result:
        key = (cs, entry)
        if key in self._memo:
            return self._memo[key]
        fcfg = self.cfg.get_function(name)
        order = {b: i for i, b in enumerate(fcfg.rpo)}
        heads = fcfg.loop_headers
        ins: dict[int, State] = {fcfg.entry: entry}
        outs: dict[tuple[int, int], State | None] = {}
        visits: Counter[int] = Counter()
        work = [(0, fcfg.entry)]
        while work:
            _, b = heapq.heappop(work)
            edges, _ = self._block(cs, fcfg, b, ins[b], None, None)
            for dst, st in edges.items():
                outs[(b, dst)] = st
                old = ins.get(dst)
                new = join_states(old, st, dst)
                if old is not None and dst in heads and visits[dst] >= WIDEN_DELAY:
                    new = join_states(old, new, dst, widen=True)
                if new is not None and new != old:
                    visits[dst] += 1
                    if visits[dst] > MAX_VISITS:
                        raise AnalysisError(f"{name}: no fixpoint at slot {dst} after "
                                            f"{MAX_VISITS} visits")
                    ins[dst] = new
                    if (order[dst], dst) not in work:
                        heapq.heappush(work, (order[dst], dst))
        result = _Result(None)
        for p in range(NARROW_PASSES + 1):
            record = p == NARROW_PASSES
            states: dict[int, State] = {}
            exits: list[State] = []
            for b in fcfg.rpo:
                inc = [outs.get((q, b)) for q in fcfg.preds[b]] + ([entry] if b == fcfg.entry
                                                                    else [])
                st = reduce(lambda x, y: join_states(x, y, b), inc, None)
                edges, ex = ({s: None for s in fcfg.blocks[b].succs}, None) if st is None else \
                    self._block(cs, fcfg, b, st, states if record else None,
                                result if record else None)
                outs.update(((b, d), s) for d, s in edges.items())
                if ex is not None:
                    exits.append(ex)
        result.exit = reduce(lambda x, y: join_states(x, y, -1), exits, None)
        result.states[cs] = states
        result.edges[cs] = frozenset(e for e, s in outs.items() if s is not None)
        result.outs[cs] = outs
        self._memo[key] = result
        return result

    def _iterate(self, cs: tuple[int, ...], fcfg: FunctionCfg, loop: Loop,
                 st: State) -> State | None:
        """One pass through the loop body from the header; the state on the back edges."""
        ins = {loop.header: st}
        back = None
        for b in fcfg.rpo:
            if b not in loop.body or b not in ins:
                continue
            edges, _ = self._block(cs, fcfg, b, ins[b], None, None)
            for dst, s in edges.items():
                if dst == loop.header:
                    back = join_states(back, s, dst)
                elif dst in loop.body:
                    ins[dst] = join_states(ins.get(dst), s, dst)  # type: ignore[assignment]
        return back

    def _block(self, cs: tuple[int, ...], fcfg: FunctionCfg, b: int, st: State | None,
               record: dict[int, State] | None, sink: _Result | None
               ) -> tuple[dict[int, State | None], State | None]:
        block = fcfg.blocks[b]
        ends = block.term in ("branch", "jump", "exit", "call")
        for slot in block.slots:
            if st is None:
                break
            if record is not None:
                record[slot] = st
            if slot == block.last and ends:
                break
            st = self._step(st, slot)
        if st is None:
            return {s: None for s in block.succs}, None
        if block.term == "exit":
            return {}, st
        if block.term == "branch":
            fall, taken = self._branch(st, block.last)
            if block.succs[0] == block.succs[1]:
                return {block.succs[0]: join_states(fall, taken, block.succs[0])}, None
            return {block.succs[0]: fall, block.succs[1]: taken}, None
        if block.term == "call":
            assert block.callee is not None
            return {block.succs[0]: self._call(cs + (block.last,), block.callee, st, sink)}, None
        return {block.succs[0]: st}, None

    def _call(self, cs: tuple[int, ...], callee: str, st: State,
              sink: _Result | None) -> State | None:
        if len(cs) >= MAX_CALL_DEPTH:
            raise AnalysisError(f"slot {cs[-1]}: call chain deeper than {MAX_CALL_DEPTH}")
        down = st.map_values(lambda v: replace(v, frame=v.frame + 1)
                             if v.kind is Region.STACK else v)
        regs = (NOT_INIT,) + down.regs[1:6] + (NOT_INIT,) * 4 + (Val(Region.STACK, Scalar.const(0)),)
        entry = State(regs, (down.regs[6:10],) + down.saved, ((),) + down.frames, st.pkt)
        result = self._run(cs, callee, entry)
        if sink is not None:
            sink.absorb(result)
        ex = result.exit
        if ex is None:
            return None

        def up(v: Val) -> Val:
            if v.kind is not Region.STACK:
                return v
            return replace(v, frame=v.frame - 1) if v.frame else NOT_INIT

        back = replace(ex, regs=(ex.regs[0],) + (NOT_INIT,) * 5 + ex.saved[0] + (st.regs[10],),
                       saved=ex.saved[1:], frames=ex.frames[1:]).map_values(up)
        return replace(back, regs=back.regs[:10] + (st.regs[10],))

    # -- transfer functions ----------------------------------------------------------------

    def _step(self, st: State, slot: int) -> State | None:
        insn = self.insn_at[slot]
        kind, spec = insn.kind, insn.spec
        if kind in (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP):
            return self._alu(st, slot)
        if kind is Kind.LDDW:
            src = insn.src
            if src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD):
                v = Val(Region.MAP_PTR, Scalar.const(0), map=insn.imm)
            elif src in (PseudoSrc.MAP_IDX_VALUE, PseudoSrc.MAP_VALUE):
                v = Val(Region.MAP_VALUE, Scalar.const(insn.next_imm or 0), map=insn.imm)
            elif src == PseudoSrc.FUNC:
                v = Val(Region.FUNC, Scalar.const(slot + 1 + insn.imm))
            elif src == PseudoSrc.IMM64:
                v = scalar(Scalar.const(insn.imm64))
            else:
                v = UNKNOWN
            return st.with_reg(insn.dst, v)
        if kind in (Kind.LDX, Kind.LDXSX):
            return st.with_reg(insn.dst, self._load(st, st.reg(insn.src), insn.off, spec.width,
                                                    kind is Kind.LDXSX))
        if kind in (Kind.ST, Kind.STX):
            v = scalar(Scalar.const(insn.imm)) if kind is Kind.ST else st.reg(insn.src)
            return self._store(st, st.reg(insn.dst), insn.off, spec.width, v)
        if kind is Kind.ATOMIC:
            ptr, width = st.reg(insn.dst), spec.width
            if ptr.kind is Region.STACK:
                st = self._store(st, ptr, insn.off, width, UNKNOWN)
            if insn.imm == AtomicOp.CMPXCHG:
                st = st.with_reg(0, scalar(sized(width)))
            elif insn.imm & AtomicOp.FETCH:
                st = st.with_reg(insn.src, scalar(sized(width)))
            return st
        if kind is Kind.CALL:
            return self._helper(st, slot)
        if kind in (Kind.LD_ABS, Kind.LD_IND):
            return replace(st, regs=(scalar(sized(spec.width)),) + (NOT_INIT,) * 5 + st.regs[6:])
        raise AnalysisError(f"slot {slot}: unexpected {kind.value} inside a block")

    def _alu(self, st: State, slot: int) -> State | None:
        insn = self.insn_at[slot]
        spec = insn.spec
        is64 = spec.is64
        d = st.reg(insn.dst)
        if spec.kind in (Kind.ENDIAN, Kind.BSWAP):
            to_be = spec.kind is Kind.BSWAP or bool(spec.opcode & 0x08)
            num = endian(d.num, to_be, insn.imm) if d.kind is Region.SCALAR else Scalar.UNKNOWN
            return st.with_reg(insn.dst, scalar(num))
        op = AluOp(spec.op)
        if spec.kind is Kind.NEG:
            s = d
            d = scalar(Scalar.const(0))
            op = AluOp.SUB
        elif spec.source is Source.X:
            s = st.reg(insn.src)
        else:
            s = scalar(Scalar.const(insn.imm if is64 else insn.imm & M32))
        if op is AluOp.MOV and insn.off == 0:
            if is64 and s.kind is Region.SCALAR and not s.num.is_const and spec.source is Source.X:
                ident = s.id or f"mov{slot}"
                if s.id is None:
                    st = _retire(st, ident, scalar_id=True)
                    st = st.with_reg(insn.src, replace(s, id=ident))
                return st.with_reg(insn.dst, replace(s, id=ident))
            if is64:
                return st.with_reg(insn.dst, replace(s, id=None) if s.kind is Region.SCALAR else s)
            return st.with_reg(insn.dst, scalar(trunc(s.num, 32)) if s.kind is Region.SCALAR
                               else scalar(sized(4)))
        if d.kind is Region.SCALAR and s.kind is Region.SCALAR:
            num = alu(op, d.num, s.num, is64=is64, off=insn.off)
            return None if num is None else st.with_reg(insn.dst, scalar(num))
        if is64 and op in (AluOp.ADD, AluOp.SUB):
            v = self._pointer_math(st, slot, op, d, s)
            if v.kind is Region.PACKET and v.id == f"v{slot}":
                st = _retire(st, v.id)
            return st.with_reg(insn.dst, v)
        return st.with_reg(insn.dst, scalar(Scalar.UNKNOWN if is64 else sized(4)))

    def _pointer_math(self, st: State, slot: int, op: AluOp, d: Val, s: Val) -> Val:
        if d.is_pointer and s.kind is Region.SCALAR:
            ptr, delta = d, (s.num if op is AluOp.ADD else alu(AluOp.SUB, Scalar.const(0), s.num))
        elif s.is_pointer and d.kind is Region.SCALAR and op is AluOp.ADD:
            ptr, delta = s, d.num
        elif op is AluOp.SUB and d.kind == s.kind and d.is_pointer:
            if d.kind is Region.PACKET and d.id == s.id:
                return scalar(Scalar.const(d.off - s.off))
            return scalar(alu(AluOp.SUB, d.offset(), s.offset()))
        elif op is AluOp.SUB and d.kind is Region.PACKET_END and s.kind is Region.PACKET:
            return scalar(Scalar.urange(max(0, st.proven(s.id) - s.off), MAX_PACKET))
        else:
            return UNKNOWN
        if ptr.kind in (Region.MAP_PTR, Region.FUNC):
            return UNKNOWN
        if ptr.kind is not Region.PACKET:
            return replace(ptr, num=alu(AluOp.ADD, ptr.num, delta))
        if delta.is_const:
            return replace(ptr, off=ptr.off + delta.signed_value)
        # A new base: the old one plus a variable; nothing proven for it yet.
        return Val(Region.PACKET, alu(AluOp.ADD, ptr.offset(), delta), 0, f"v{slot}",
                   null=ptr.null)

    def _load(self, st: State, ptr: Val, off: int, size: int, signed: bool) -> Val:
        if ptr.kind is Region.CTX and ptr.num.is_const:
            name = CTX_FIELDS.get(ptr.num.value + off)
            if name == "data":
                return Val(Region.PACKET, Scalar.const(0), 0, DATA)
            if name == "data_end":
                return Val(Region.PACKET_END, Scalar.const(0))
            if name == "data_meta":
                return Val(Region.PACKET_META, Scalar.const(0))
        if ptr.kind is Region.STACK and ptr.num.is_const:
            v = st.get_stack(ptr.frame, ptr.num.signed_value + off, size)
            if v.kind is Region.SCALAR and signed:
                return scalar(sext(trunc(v.num, 8 * size), 8 * size))
            return v
        return scalar(sized(size, signed))

    def _store(self, st: State, ptr: Val, off: int, size: int, v: Val) -> State:
        if ptr.kind is not Region.STACK:
            return st
        if not ptr.num.is_const:
            lo = ptr.num.smin + off
            return st.set_stack(ptr.frame, lo, max(ptr.num.smax, lo) + off + size, None)
        o = ptr.num.signed_value + off
        if size < 8:
            v = scalar(trunc(v.num, 8 * size)) if v.kind is Region.SCALAR else scalar(sized(size))
        return st.set_stack(ptr.frame, o, o + size, (o, size, replace(v, id=v.id)))

    def _helper(self, st: State, slot: int) -> State:
        insn = self.insn_at[slot]
        if insn.src != CallKind.HELPER:
            return replace(st, regs=(UNKNOWN,) + (NOT_INIT,) * 5 + st.regs[6:])
        name = helper_name(insn.imm)
        for arg, size, write in HELPER_MEMORY.get(name, ()):
            ptr = st.reg(arg)
            if write and ptr.kind is Region.STACK and ptr.num.is_const:
                n = st.reg(size).num if isinstance(size, int) else Scalar.UNKNOWN
                lo = ptr.num.signed_value
                st = st.set_stack(ptr.frame, lo, lo + n.umax if n.umax < 512 else 0, None)
        if name not in HELPER_MEMORY and name not in NO_POINTER_HELPERS:
            for arg in range(1, 6):
                ptr = st.reg(arg)
                if ptr.kind is Region.STACK:
                    st = st.set_stack(ptr.frame, ptr.num.smin, 0, None)
        if name in ("map_lookup_elem", "map_lookup_percpu_elem"):
            m = st.reg(1)
            ident = f"n{slot}"
            st = _retire(st, ident)
            r0 = Val(Region.MAP_VALUE, Scalar.const(0), map=m.map if m.kind is Region.MAP_PTR
                     else None, null=True, id=ident)
        else:
            r0 = scalar(HELPER_RETURNS.get(name, Scalar.UNKNOWN))
        if name in PACKET_MOVERS:
            st = st.map_values(lambda v: UNKNOWN if v.kind in (
                Region.PACKET, Region.PACKET_END, Region.PACKET_META) else v)
            st = replace(st, pkt=((DATA, 0),))
        return replace(st, regs=(r0,) + (NOT_INIT,) * 5 + st.regs[6:])

    def _branch(self, st: State, slot: int) -> tuple[State | None, State | None]:
        insn = self.insn_at[slot]
        spec = insn.spec
        is64 = spec.cls is InsnClass.JMP
        rel = JMP_REL[JmpOp(spec.op)]
        src = insn.src if spec.source is Source.X else None
        b = st.reg(src) if src is not None else scalar(
            Scalar.const(insn.imm if is64 else insn.imm & M32))
        return (self._assume(st, insn.dst, src, b, NEGATE[rel], is64),
                self._assume(st, insn.dst, src, b, rel, is64))

    def _assume(self, st: State, dst: int, src: int | None, b: Val, rel: str,
                is64: bool) -> State | None:
        """``st`` where ``r[dst] rel b`` holds; None when it cannot."""
        a = st.reg(dst)
        if a.kind is Region.SCALAR and b.kind is Region.SCALAR:
            x, y = a.num, b.num
            signed = rel[0] == "s"
            fits = M32 >> 1 if signed else M32
            if not is64 and not (x.umax <= fits and y.umax <= fits):
                px, py = trunc(x, 32), trunc(y, 32)
                if signed:
                    px, py = sext(px, 32), sext(py, 32)
                return st if refine(rel, px, py) is not None else None
            if not is64 and not signed and not y.is_const and rel in ("set", "nset"):
                return st
            got = refine(rel, x, y)
            if got is None:
                return None
            st = _narrow(st, dst, a, got[0])
            return _narrow(st, src, b, got[1]) if src is not None else st
        zero = Scalar.const(0)
        for ptr, other, reg in ((a, b, dst), (b, a, src)):
            if rel in ("eq", "ne") and ptr.is_pointer and other.kind is Region.SCALAR \
                    and other.num == zero:
                if rel == "eq" and not ptr.null:
                    return None
                new = scalar(zero) if rel == "eq" else replace(ptr, null=False)
                if ptr.id is None or not ptr.null:
                    return st.with_reg(reg, new) if reg is not None else st
                return st.map_values(lambda v, new=new, ident=ptr.id:
                                     new if v.id == ident and v.null else v)
        if is64 and {a.kind, b.kind} == {Region.PACKET, Region.PACKET_END} and rel[0] == "u":
            ptr, rel = (a, rel) if a.kind is Region.PACKET else (b, SWAP[rel])
            n = {"ule": ptr.off, "ult": ptr.off + 1}.get(rel)
            if n is not None and n > 0:
                pkt = dict(st.pkt)
                pkt[ptr.id or DATA] = max(pkt.get(ptr.id or DATA, 0), n)
                if ptr.id != DATA and ptr.num.smin >= 0:
                    pkt[DATA] = max(pkt.get(DATA, 0), ptr.num.umin + n)
                st = replace(st, pkt=tuple(sorted(pkt.items())))
        return st

    def _accesses(self, st: State, slot: int) -> list[Access]:
        insn = self.insn_at[slot]
        kind = insn.kind
        if kind in (Kind.LDX, Kind.LDXSX):
            return [_memory(st, slot, st.reg(insn.src), insn.off, insn.spec.width, False)]
        if kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
            return [_memory(st, slot, st.reg(insn.dst), insn.off, insn.spec.width, True,
                            atomic=kind is Kind.ATOMIC)]
        if kind is not Kind.CALL or insn.src != CallKind.HELPER:
            return []
        name = helper_name(insn.imm)
        out = []
        for arg, size, write in HELPER_MEMORY.get(name, ()):
            if isinstance(size, int):
                n = st.reg(size).num
                nbytes = n.umax if n.umax <= MAX_PACKET else None
            else:
                m = self._map_def(st.reg(1))
                nbytes = None if m is None else (m.key_size if size == "key" else m.value_size)
            out.append(_memory(st, slot, st.reg(arg), 0, nbytes, write, helper=name))
        if name in ("xdp_load_bytes", "xdp_store_bytes"):
            n = st.reg(4).num
            out.append(Access(slot, Region.PACKET, name == "xdp_store_bytes",
                              n.umax if n.umax <= MAX_PACKET else None, st.reg(2).num,
                              helper=name))
        return out

    def _map_def(self, v: Val):
        if self.obj is None or v.kind is not Region.MAP_PTR or v.map is None:
            return None
        return self.obj.maps[v.map] if 0 <= v.map < len(self.obj.maps) else None

    def get_map_name(self, index: int | None) -> str | None:
        if self.obj is None or index is None or not 0 <= index < len(self.obj.maps):
            return None
        return self.obj.maps[index].name

    def describe_map(self, index: int | None) -> str:
        """"map 'name'", or what is known when the pointer merges values of several maps
        (the join forgets which) or the object is not given: never "map '?'"."""
        name = self.get_map_name(index)
        if name is not None:
            return f"map '{name}'"
        if self.obj is not None and len(self.obj.maps) == 1:
            return f"map '{self.obj.maps[0].name}'"
        return "a map (pointers to several maps' values merge here)"


def analyze(prog: ProgramDef, obj: ElfObject | None = None) -> Analysis:
    """Run the abstract interpretation of ``prog`` (maps and names from ``obj``)."""
    return Analysis(prog, obj)

