"""Packet bounds the way the kernel verifier proves them: the first unchecked packet access.

Where bpf(2) is not permitted the kernel cannot be asked, so this module walks the program
like the verifier's ``do_check`` (kernel/bpf/verifier.c) for the one property every XDP
program must prove: each packet access lies inside ``[data, data_end)``.

Per path it keeps, for every register of every call frame and every spilled 8-byte stack
slot, an abstract value: a scalar (unsigned bounds ``[lo, hi]``, copies linked by an id as
``find_equal_scalars`` does), a packet pointer ``data + var + off`` (``var`` a variable part
with bounds and an id shared by its copies, ``off`` the constant part, ``rng`` the bytes
proven readable from ``data + var``), ``data_end``, the context, a stack pointer, or other.

- ``ctx->data`` is a packet pointer with id 0 and range 0; adding a constant moves ``off``
  and keeps id and range; adding a variable makes a new id with range 0 (an offset whose
  signed minimum may be negative, the verifier's "unbounded min value", is refused there).
- ``if (p + N > data_end)`` gives every packet pointer with p's id (in every frame, spilled
  or not) range ``max(range, N)`` on the side where ``p + N <= data_end`` (``N + 1`` where
  the comparison is strict, ``p + N < data_end``): ``find_good_pkt_pointers``, with its
  refusals (a negative ``off``; a variable part above ``MAX_PACKET_OFF``). JMP32
  comparisons of pointers give nothing.
- A packet access of ``size`` bytes at ``insn.off`` through p is proven when
  ``0 <= off + insn.off`` and ``off + insn.off + size <= rng`` (``check_packet_access``),
  also for the memory arguments of the helpers that take them.
- Helpers that change the packet (``bpf_xdp_adjust_head/meta/tail``) invalidate every
  packet pointer (``clear_all_pkt_pointers``): using one afterwards is refused.
- Branches on scalars refine the bounds on both sides and a branch the bounds decide has one
  side (``is_branch_taken``), so correlated conditions are followed as the verifier does.

Paths are explored depth first, fall-through first (the verifier's order, so the first
refusal is usually the kernel's). At every block start a state that an earlier state at the
same place covers (same kinds, wider bounds, smaller ranges: anything provable from the
new one was provable from the old one) is pruned; at a loop header with too many states the
new state is joined with the last one and widened (bounds that grew become unbounded), so
loops reach a fixed point. A walk longer than the verifier's own limit (1,000,000
instructions) gives up without an answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ebpf.analysis.cfg import CfgError, branch_target, build_cfg
from ebpf.code.isa import AluOp, CallKind, InsnClass, JmpOp, Kind, PseudoSrc, Source
from ebpf.kernel_enums import helper_name
from ebpf.loader.program import ProgramDef
from ebpf.vm.alu import ALU32_OPS, ALU64_OPS, JMP32_OPS, JMP64_OPS

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
S64_MAX = (1 << 63) - 1
MAX_PACKET_OFF = 0xFFFF  # include/linux/bpf.h: the largest offset a packet range covers
COMPLEXITY_LIMIT = 1_000_000  # kernel/bpf/verifier.c BPF_COMPLEXITY_LIMIT_INSNS
WIDEN_AFTER = 256  # modelling choice: states kept per block start before joining
# kernel/bpf/verifier.c bpf_helper_changes_pkt_data, the XDP ones
CHANGES_PACKET = frozenset({"xdp_adjust_head", "xdp_adjust_meta", "xdp_adjust_tail"})
# helpers' (pointer, size) argument pairs that may point into the packet (their protos)
MEM_ARGS: dict[str, tuple[tuple[int, int | str], ...]] = {
    "csum_diff": ((1, 2), (3, 4)),
    "perf_event_output": ((4, 5),),
    "map_lookup_elem": ((2, "key"),), "map_delete_elem": ((2, "key"),),
    "map_update_elem": ((2, "key"), (3, "value")),
    "map_push_elem": ((2, "value"),),
}


@dataclass(frozen=True)
class V:
    """An abstract register / spilled-slot value (see the module docstring)."""

    kind: str  # none | scalar | pkt | end | ctx | stack | map | stale | other
    lo: int = 0
    hi: int = U64
    off: int = 0
    id: int = 0
    rng: int = 0
    frame: int = 0
    map: int = -1  # a map pointer's index in ElfObject.maps


NONE = V("none")
TOP = V("scalar")


def const(x: int) -> V:
    return V("scalar", x & U64, x & U64)


def bounded(bits: int) -> V:
    return V("scalar", 0, (1 << bits) - 1)


@dataclass(frozen=True)
class Refusal:
    """The first packet access the checks on its path do not prove."""

    insn: int
    message: str
    file: str | None = None
    line: int | None = None
    source: str = ""


@dataclass
class BoundsResult:
    """``refusal`` None: every packet access is proven (``complete``), or the walk gave up
    (``complete`` False, ``why``)."""

    refusal: Refusal | None
    complete: bool = True
    why: str = ""
    insns_walked: int = 0

    @property
    def refused(self) -> bool:
        return self.refusal is not None


class _Refused(Exception):
    def __init__(self, slot: int, message: str) -> None:
        super().__init__(message)
        self.slot, self.message = slot, message


class _Frame:
    __slots__ = ("regs", "stack", "ret")

    def __init__(self, regs: list[V], stack: dict[int, V], ret: int) -> None:
        self.regs, self.stack, self.ret = regs, stack, ret

    def copy(self) -> _Frame:
        return _Frame(list(self.regs), dict(self.stack), self.ret)


class _State:
    __slots__ = ("frames",)

    def __init__(self, frames: list[_Frame]) -> None:
        self.frames = frames

    def copy(self) -> _State:
        return _State([f.copy() for f in self.frames])

    @property
    def top(self) -> _Frame:
        return self.frames[-1]

    def values(self) -> list[tuple[_Frame, Any, V]]:
        out = []
        for f in self.frames:
            out += [(f, r, v) for r, v in enumerate(f.regs)]
            out += [(f, ("s", k), v) for k, v in f.stack.items()]
        return out

    def set(self, f: _Frame, where: Any, v: V) -> None:
        if isinstance(where, tuple):
            f.stack[where[1]] = v
        else:
            f.regs[where] = v


def check_packet_bounds(prog: ProgramDef, maps: list[Any] | None = None) -> BoundsResult:
    """Walk ``prog`` (an XDP program) and return the first packet access its path does not
    prove, as the verifier would refuse it; ``maps`` (ElfObject.maps) sizes map keys."""
    return _Walker(prog, maps or []).run()


class _Walker:
    def __init__(self, prog: ProgramDef, maps: list[Any]) -> None:
        self.prog, self.maps = prog, maps
        self.insns: dict[int, Any] = dict(zip(prog.get_slot_offsets(), prog.insns, strict=True))
        try:
            cfg = build_cfg(prog)
            self.prune_at = {b.start for b in cfg.iter_blocks()}
            self.loop_heads = {h for f in cfg.functions.values() for h in f.loop_headers}
        except CfgError:  # functions the CFG cannot take apart: prune and widen at targets
            self.prune_at = {t for s, i in self.insns.items()
                             if (t := branch_target(i, s)) is not None}
            self.loop_heads = set(self.prune_at)
        self.seen: dict[tuple, list[_State]] = {}
        self.next_id = 0
        self.walked = 0

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- exploration ----------------------------------------------------------------------

    def run(self) -> BoundsResult:
        regs = [NONE] * 11
        regs[1], regs[10] = V("ctx"), V("stack", frame=0)
        work: list[tuple[int, _State]] = [(0, _State([_Frame(regs, {}, -1)]))]
        try:
            while work:
                slot, st = work.pop()
                self._path(slot, st, work)
        except _Refused as exc:
            src = self._line(exc.slot)
            return BoundsResult(Refusal(exc.slot, exc.message, src.file if src else None,
                                        src.line if src else None,
                                        src.text.strip() if src else ""),
                                insns_walked=self.walked)
        except _GiveUp as exc:
            return BoundsResult(None, False, str(exc), self.walked)
        return BoundsResult(None, insns_walked=self.walked)

    def _line(self, slot: int) -> Any:
        """The C line of ``slot``, skipping the line-0 entries clang gives code it made up."""
        func = self.prog.function_at(slot)
        for s in range(slot, (func.start if func is not None else 0) - 1, -1):
            src = self.prog.source_line(s)
            if src is not None and src.line > 0:
                return src
        return self.prog.source_line(slot)

    def _path(self, slot: int, st: _State, work: list) -> None:
        while True:
            if slot in self.prune_at:
                st = self._visit(slot, st)
                if st is None:
                    return
            self.walked += 1
            if self.walked > COMPLEXITY_LIMIT:
                raise _GiveUp(f"more than {COMPLEXITY_LIMIT} instructions walked (the "
                              f"verifier's own limit)")
            insn = self.insns.get(slot)
            if insn is None:
                return  # a jump into the middle of a 64-bit load: not ours to judge
            kind = insn.kind
            if kind is Kind.EXIT:
                if len(st.frames) == 1:
                    return
                done = st.frames.pop()
                caller = st.top
                caller.regs[0] = done.regs[0] if done.regs[0].kind != "stack" else V("other")
                for r in range(1, 6):
                    caller.regs[r] = NONE
                slot = done.ret
                continue
            if kind is Kind.JA:
                delta = insn.imm if insn.spec.cls == InsnClass.JMP32 else insn.off
                slot = slot + 1 + delta
                continue
            if kind is Kind.JCOND:
                taken, fall = self._branch(slot, st, insn)
                target = slot + 1 + insn.off
                if taken is not None and fall is not None:
                    work.append((target, taken))
                    st, slot = fall, slot + 1
                elif taken is not None:
                    st, slot = taken, target
                elif fall is not None:
                    st, slot = fall, slot + 1
                else:
                    return
                continue
            if kind is Kind.CALL and insn.src == CallKind.LOCAL:
                f = st.top
                regs = [NONE] * 11
                regs[1:6] = f.regs[1:6]
                regs[10] = V("stack", frame=len(st.frames))
                st.frames.append(_Frame(regs, {}, slot + 1))
                slot = slot + 1 + insn.imm
                continue
            self._insn(slot, st, insn)
            slot += insn.slots

    def _visit(self, slot: int, st: _State) -> _State | None:
        key = (slot, tuple(f.ret for f in st.frames))
        olds = self.seen.setdefault(key, [])
        for old in olds:
            if _covers(old, st):
                return None
        if len(olds) >= WIDEN_AFTER:  # join; at a loop header, widen
            st = _widen(olds[-1], st, slot in self.loop_heads)
            if _covers(olds[-1], st):
                return None
        olds.append(st.copy())
        return st

    # -- instructions ---------------------------------------------------------------------

    def _insn(self, slot: int, st: _State, insn: Any) -> None:
        f = st.top
        kind = insn.kind
        if kind in (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP):
            f.regs[insn.dst] = self._alu(slot, st, insn)
        elif kind is Kind.LDDW:
            if insn.src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD):
                f.regs[insn.dst] = V("map", map=insn.imm)
            elif insn.src == PseudoSrc.IMM64:
                f.regs[insn.dst] = const(insn.imm64)
            else:
                f.regs[insn.dst] = V("other")
        elif kind in (Kind.LDX, Kind.LDXSX):
            f.regs[insn.dst] = self._load(slot, st, f.regs[insn.src], insn.off,
                                          insn.spec.width, kind is Kind.LDXSX)
        elif kind in (Kind.ST, Kind.STX):
            val = const(insn.imm) if kind is Kind.ST else f.regs[insn.src]
            self._store(slot, st, f.regs[insn.dst], insn.off, insn.spec.width, val)
        elif kind is Kind.ATOMIC:
            ptr = f.regs[insn.dst]
            self._access(slot, ptr, insn.off, insn.spec.width, "write")
            if ptr.kind == "stack":
                self._stack_clobber(st, ptr, insn.off, insn.spec.width)
            if insn.imm & 1 or insn.imm in (0xE1, 0xF1):  # FETCH, XCHG, CMPXCHG
                r = 0 if insn.imm == 0xF1 else insn.src
                f.regs[r] = TOP
        elif kind is Kind.CALL:
            self._helper(slot, st, insn)
        elif kind in (Kind.LD_ABS, Kind.LD_IND):
            f.regs[0] = TOP
            for r in range(1, 6):
                f.regs[r] = NONE

    def _access(self, slot: int, ptr: V, off: int, size: int, verb: str) -> None:
        if ptr.kind == "stale":
            raise _Refused(slot, f"a {size}-byte packet {verb} through a packet pointer that "
                                 f"bpf_{helper_name(ptr.map)} invalidated (it changes the "
                                 f"packet): reload ctx->data and check the bounds again")
        if ptr.kind != "pkt":
            return
        at = ptr.off + off
        if at < 0 or at + size > ptr.rng:
            where = f"offset {at}" if ptr.id == 0 else f"offset {at} past a variable offset"
            proven = (f"the bounds checks on this path prove {ptr.rng} bytes"
                      if ptr.rng else "no bounds check on this path covers it")
            raise _Refused(slot, f"a {size}-byte packet {verb} at {where} is not proven "
                                 f"inside the packet: {proven} (compare the pointer plus "
                                 f"{max(at + size, 1)} with data_end first)")

    def _load(self, slot: int, st: _State, ptr: V, off: int, size: int, signed: bool) -> V:
        self._access(slot, ptr, off, size, "read")
        if ptr.kind == "ctx" and size == 4 and not signed:
            return {0: V("pkt", 0, 0), 4: V("end")}.get(off, bounded(32) if off != 8 else V("other"))
        if ptr.kind == "stack" and size == 8:
            v = self._frame(st, ptr).stack.get(ptr.off + off)
            if v is not None:
                return v
        return TOP if signed or size == 8 else bounded(8 * size)

    def _frame(self, st: _State, ptr: V) -> _Frame:
        return st.frames[ptr.frame] if ptr.frame < len(st.frames) else _Frame([], {}, -1)

    def _store(self, slot: int, st: _State, ptr: V, off: int, size: int, val: V) -> None:
        self._access(slot, ptr, off, size, "write")
        if ptr.kind != "stack":
            return
        self._stack_clobber(st, ptr, off, size)
        if size == 8:  # a narrower store leaves bytes the walk does not follow
            self._frame(st, ptr).stack[ptr.off + off] = val

    def _stack_clobber(self, st: _State, ptr: V, off: int, size: int) -> None:
        stack = self._frame(st, ptr).stack
        lo = ptr.off + off
        for k in [k for k in stack if k < lo + size and lo < k + 8]:
            del stack[k]

    def _helper(self, slot: int, st: _State, insn: Any) -> None:
        f = st.top
        name = helper_name(insn.imm)
        for ptr_reg, size_spec in MEM_ARGS.get(name, ()):
            ptr = f.regs[ptr_reg]
            if isinstance(size_spec, int):
                size = f.regs[size_spec].hi if f.regs[size_spec].kind == "scalar" else 0
            else:
                m = f.regs[1]
                sized = self.maps[m.map] if m.kind == "map" and 0 <= m.map < len(self.maps) \
                    else None
                size = getattr(sized, f"{size_spec}_size", 0) if sized is not None else 0
            if size and size <= U32:
                self._access(slot, ptr, 0, size, f"read by bpf_{name}")
        for r in range(1, 6):
            f.regs[r] = NONE
        f.regs[0] = V("other") if name in ("map_lookup_elem", "map_lookup_percpu_elem") \
            else TOP
        if name in CHANGES_PACKET:
            stale = V("stale", map=insn.imm)
            for fr, where, v in st.values():
                if v.kind in ("pkt", "end"):
                    st.set(fr, where, stale)

    # -- ALU ------------------------------------------------------------------------------

    def _alu(self, slot: int, st: _State, insn: Any) -> V:
        f = st.top
        spec = insn.spec
        is64 = spec.is64
        dst = f.regs[insn.dst]
        if insn.kind is Kind.NEG:
            if dst.kind == "scalar" and dst.lo == dst.hi:
                return const(-dst.lo if is64 else (-dst.lo) & U32)
            return TOP if is64 else bounded(32)
        if insn.kind is not Kind.ALU:  # byte order: the result fits the swapped width
            return bounded(min(64, insn.imm)) if insn.imm in (16, 32, 64) else TOP
        op = AluOp(spec.op)
        src = const(insn.imm if is64 else insn.imm & U32) if spec.source == Source.K \
            else f.regs[insn.src]
        if op is AluOp.MOV:
            if insn.off:  # movsx
                return TOP
            if not is64:
                if src.kind == "scalar" and src.hi <= U32:
                    return replace(src, id=0)
                return bounded(32)
            if src.kind == "scalar" and src.lo != src.hi:  # copies share refinements
                if src.id == 0:
                    src = replace(src, id=self.new_id())
                    f.regs[insn.src] = src
                return src
            return src
        pointers = {"pkt", "end", "ctx", "stack", "map", "stale", "other"}
        if dst.kind in pointers or src.kind in pointers:
            return self._pointer_math(slot, op, is64, dst, src)
        if dst.kind != "scalar" or src.kind != "scalar":
            return TOP
        return _scalar_op(op, is64, insn.off, dst, src)

    def _pointer_math(self, slot: int, op: AluOp, is64: bool, dst: V, src: V) -> V:
        if not is64:
            return bounded(32)  # (u32)ptr arithmetic: a scalar (root only)
        scalar_kinds = ("scalar", "none")
        if op is AluOp.SUB and dst.kind not in scalar_kinds and src.kind not in scalar_kinds:
            return TOP  # pointer - pointer: an unknown scalar (root only)
        if dst.kind == "end" or (src.kind == "end" and op is AluOp.ADD):
            if op is AluOp.SUB and src.kind in ("pkt", "end"):
                return TOP
            raise _Refused(slot, "arithmetic on data_end: the verifier refuses any change to "
                                 "the packet end pointer")
        if op is AluOp.ADD and dst.kind == "scalar" and src.kind == "pkt":
            dst, src = src, dst
        if dst.kind == "stale" or src.kind == "stale":
            return dst if dst.kind == "stale" else src
        if dst.kind == "pkt" and src.kind == "scalar" and op in (AluOp.ADD, AluOp.SUB):
            if src.lo == src.hi:
                k = src.lo if op is AluOp.ADD else -src.lo
                k = k - (1 << 64) if k > S64_MAX else k
                return replace(dst, off=dst.off + k)
            if src.hi > S64_MAX:
                raise _Refused(slot, "a packet pointer plus an offset with no lower bound: "
                                     "bound the offset (mask it or compare it) first")
            if op is AluOp.ADD:
                lo, hi = dst.lo + src.lo, dst.hi + src.hi
            else:
                lo, hi = (dst.lo - src.hi, dst.hi - src.lo) if dst.lo >= src.hi else (0, U64)
            return replace(dst, lo=lo, hi=min(hi, U64), id=self.new_id(), rng=0)
        if dst.kind == "pkt" and src.kind == "pkt" and op is AluOp.SUB:
            return TOP
        if dst.kind == "stack" and src.kind == "scalar" and src.lo == src.hi and \
                op in (AluOp.ADD, AluOp.SUB):
            k = src.lo if op is AluOp.ADD else -src.lo
            k = k - (1 << 64) if k > S64_MAX else k
            return replace(dst, off=dst.off + k)
        if dst.kind in ("pkt", "stack", "ctx", "map") or src.kind in ("pkt", "stack"):
            return V("other")
        return TOP

    # -- branches -------------------------------------------------------------------------

    def _branch(self, slot: int, st: _State, insn: Any) -> tuple[_State | None, _State | None]:
        f = st.top
        spec = insn.spec
        op = JmpOp(spec.op)
        is64 = spec.cls == InsnClass.JMP
        a = f.regs[insn.dst]
        b = const(insn.imm if is64 else insn.imm & U32) if spec.source == Source.K \
            else f.regs[insn.src]
        if {a.kind, b.kind} == {"pkt", "end"}:
            taken, fall = st, st.copy()
            if is64:
                self._bounds(op, a, b, taken, fall)
            return taken, fall
        if a.kind == "scalar" and b.kind == "scalar":
            decided = _decide(op, is64, a, b)
            if decided is True:
                return st, None
            if decided is False:
                return None, st
            taken, fall = st, st.copy()
            _refine(op, is64, insn, a, b, spec.source == Source.K, taken, fall)
            return taken, fall
        return st, st.copy()

    def _bounds(self, op: JmpOp, a: V, b: V, taken: _State, fall: _State) -> None:
        """``find_good_pkt_pointers`` for the side where the pointer is inside."""
        pkt_first = a.kind == "pkt"
        pkt = a if pkt_first else b
        # (side proven, strict) for pkt OP end; with end OP pkt the relation flips
        table = {JmpOp.JGT: ("fall", False), JmpOp.JLT: ("taken", True),
                 JmpOp.JGE: ("fall", True), JmpOp.JLE: ("taken", False)}
        if not pkt_first:
            table = {JmpOp.JGT: ("taken", True), JmpOp.JLT: ("fall", False),
                     JmpOp.JGE: ("taken", False), JmpOp.JLE: ("fall", True)}
        if op not in table:
            return
        side, strict = table[op]
        if pkt.off < 0 or (pkt.off == 0 and strict):
            return
        if pkt.hi > MAX_PACKET_OFF or pkt.hi + pkt.off > MAX_PACKET_OFF:
            return
        rng = pkt.off + (1 if strict else 0)
        target = taken if side == "taken" else fall
        for fr, where, v in target.values():
            if v.kind == "pkt" and v.id == pkt.id and v.rng < rng:
                target.set(fr, where, replace(v, rng=rng))


class _GiveUp(Exception):
    pass


# -- scalars ------------------------------------------------------------------------------

def _scalar_op(op: AluOp, is64: bool, off: int, a: V, b: V) -> V:
    mask = U64 if is64 else U32
    if a.lo == a.hi and b.lo == b.hi:
        table = ALU64_OPS if is64 else ALU32_OPS
        fn = table.get((op, off))
        if fn is None:
            return TOP if is64 else bounded(32)
        return const(fn(a.lo & mask, b.lo & mask))
    if not is64 and (a.hi > U32 or b.hi > U32):
        return bounded(32)
    lo, hi = 0, mask
    if op is AluOp.ADD and a.hi + b.hi <= mask:
        lo, hi = a.lo + b.lo, a.hi + b.hi
    elif op is AluOp.SUB and a.lo >= b.hi:
        lo, hi = a.lo - b.hi, a.hi - b.lo
    elif op is AluOp.MUL and a.hi * b.hi <= mask:
        lo, hi = a.lo * b.lo, a.hi * b.hi
    elif op is AluOp.DIV and off == 0:
        lo, hi = (a.lo // b.hi, a.hi // b.lo) if b.lo > 0 else (0, a.hi)
    elif op is AluOp.MOD and off == 0:
        hi = min(a.hi, b.hi - 1) if b.lo > 0 else a.hi
    elif op is AluOp.AND:
        hi = min(a.hi, b.hi)
    elif op in (AluOp.OR, AluOp.XOR):
        hi = (1 << max(a.hi, b.hi).bit_length()) - 1
        lo = max(a.lo, b.lo) if op is AluOp.OR else 0
    elif op is AluOp.LSH and b.lo == b.hi and b.lo < (64 if is64 else 32) and \
            a.hi << b.lo <= mask:
        lo, hi = a.lo << b.lo, a.hi << b.lo
    elif op is AluOp.RSH:
        lo, hi = (a.lo >> b.lo, a.hi >> b.lo) if b.lo == b.hi and b.lo < 64 else (0, a.hi)
    elif op is AluOp.ARSH and a.hi <= (S64_MAX if is64 else U32 >> 1):
        lo, hi = (a.lo >> b.lo, a.hi >> b.lo) if b.lo == b.hi and b.lo < 64 else (0, a.hi)
    return V("scalar", lo, min(hi, mask))


def _signed_ok(a: V, bits: int) -> bool:
    return a.hi < 1 << (bits - 1)


def _decide(op: JmpOp, is64: bool, a: V, b: V) -> bool | None:
    """The branch's outcome when the bounds decide it (``is_branch_taken``), else None."""
    bits = 64 if is64 else 32
    if not is64 and (a.hi > U32 or b.hi > U32):
        if not (a.lo == a.hi and b.lo == b.hi):
            return None
    m = (1 << bits) - 1
    alo, ahi, blo, bhi = a.lo & m, a.hi & m, b.lo & m, b.hi & m
    if a.lo == a.hi and b.lo == b.hi:
        return (JMP64_OPS if is64 else JMP32_OPS)[op](alo, blo)
    if op in (JmpOp.JSGT, JmpOp.JSGE, JmpOp.JSLT, JmpOp.JSLE):
        if not (_signed_ok(a, bits) and _signed_ok(b, bits)):
            return None
        op = {JmpOp.JSGT: JmpOp.JGT, JmpOp.JSGE: JmpOp.JGE, JmpOp.JSLT: JmpOp.JLT,
              JmpOp.JSLE: JmpOp.JLE}[op]
    if op is JmpOp.JEQ:
        return False if ahi < blo or bhi < alo else None
    if op is JmpOp.JNE:
        return True if ahi < blo or bhi < alo else None
    if op is JmpOp.JGT:
        return True if alo > bhi else False if ahi <= blo else None
    if op is JmpOp.JGE:
        return True if alo >= bhi else False if ahi < blo else None
    if op is JmpOp.JLT:
        return True if ahi < blo else False if alo >= bhi else None
    if op is JmpOp.JLE:
        return True if ahi <= blo else False if alo > bhi else None
    if op is JmpOp.JSET and b.lo == b.hi:
        return False if ahi < (b.lo & -b.lo) else None
    return None


def _refine(op: JmpOp, is64: bool, insn: Any, a: V, b: V, imm: bool, taken: _State,
            fall: _State) -> None:
    """Narrow the compared scalars on each side (``reg_set_min_max``), copies included."""
    if not is64 and (a.hi > U32 or b.hi > U32):
        return
    bits = 64 if is64 else 32
    if op in (JmpOp.JSGT, JmpOp.JSGE, JmpOp.JSLT, JmpOp.JSLE):
        if not (_signed_ok(a, bits) and _signed_ok(b, bits)):
            return
        op = {JmpOp.JSGT: JmpOp.JGT, JmpOp.JSGE: JmpOp.JGE, JmpOp.JSLT: JmpOp.JLT,
              JmpOp.JSLE: JmpOp.JLE}[op]
    if b.lo != b.hi:  # only a comparison with a known value narrows
        if a.lo == a.hi and not imm:
            swap = {JmpOp.JGT: JmpOp.JLT, JmpOp.JLT: JmpOp.JGT, JmpOp.JGE: JmpOp.JLE,
                    JmpOp.JLE: JmpOp.JGE, JmpOp.JEQ: JmpOp.JEQ, JmpOp.JNE: JmpOp.JNE}
            if op in swap:
                _narrow(swap[op], b, a.lo, taken, fall, insn.src)
        return
    _narrow(op, a, b.lo, taken, fall, insn.dst)


def _narrow(op: JmpOp, a: V, k: int, taken: _State, fall: _State, reg: int) -> None:
    # != k excludes k only at an end of the bounds (the kernel's JNE refinement)
    ne = (k + 1, U64) if a.lo == k else (0, k - 1) if a.hi == k else None
    sides = {JmpOp.JEQ: ((k, k), ne), JmpOp.JNE: (ne, (k, k)),
             JmpOp.JGT: ((k + 1, U64), (0, k)), JmpOp.JGE: ((k, U64), (0, k - 1)),
             JmpOp.JLT: ((0, k - 1), (k, U64)), JmpOp.JLE: ((0, k), (k + 1, U64))}
    if op not in sides:
        return
    for st, rng in zip((taken, fall), sides[op], strict=True):
        if rng is None or rng[1] < 0:
            continue
        lo, hi = max(a.lo, rng[0]), min(a.hi, rng[1])
        if lo > hi:
            continue
        for fr, where, v in st.values():
            if v == a and (v.id != 0 or (fr is st.top and where == reg)):
                st.set(fr, where, replace(v, lo=lo, hi=hi))


# -- pruning and widening -------------------------------------------------------------------

def _covers(old: _State, new: _State) -> bool:
    """Is every fact of ``old`` also true in ``new`` (so walking ``new`` proves nothing
    ``old``'s walk did not)? Ids must correspond one to one."""
    if len(old.frames) != len(new.frames):
        return False
    ids: dict[tuple[str, int], int] = {}
    back: dict[tuple[str, int], int] = {}
    for fo, fn in zip(old.frames, new.frames, strict=True):
        if fo.ret != fn.ret:
            return False
        for vo, vn in zip(fo.regs, fn.regs, strict=True):
            if not _value_covers(vo, vn, ids, back):
                return False
        for k, vo in fo.stack.items():
            vn = fn.stack.get(k)
            if vn is None:
                if vo.kind not in ("scalar", "none") or vo.lo != 0 or vo.hi != U64:
                    return False
                continue
            if not _value_covers(vo, vn, ids, back):
                return False
        for k, vn in fn.stack.items():
            if k not in fo.stack and vn.kind in ("pkt", "stale"):
                return False
    return True


def _value_covers(vo: V, vn: V, ids: dict, back: dict) -> bool:
    if vo.kind == "scalar" and vn.kind == "scalar":
        if not (vo.lo <= vn.lo and vn.hi <= vo.hi):
            return False
        return vo.id == 0 or _same_id("s", vo.id, vn.id, ids, back)
    if vo.kind != vn.kind:
        return vo.kind == "scalar" and vo.lo == 0 and vo.hi == U64 and vo.id == 0 and \
            vn.kind in ("none", "other") or vo.kind == "none" and vn.kind == "none"
    if vo.kind == "pkt":
        return vo.off == vn.off and vo.rng <= vn.rng and vo.lo <= vn.lo and vn.hi <= vo.hi \
            and _same_id("p", vo.id, vn.id, ids, back)
    return vo == vn


def _same_id(kind: str, a: int, b: int, ids: dict, back: dict) -> bool:
    if (kind, a) in ids:
        return ids[(kind, a)] == b
    if (kind, b) in back:
        return back[(kind, b)] == a
    ids[(kind, a)], back[(kind, b)] = b, a
    return True


def _widen(old: _State, new: _State, loop: bool) -> _State:
    """``new`` joined with ``old``: the union of bounds (``loop``: bounds that grew become
    unbounded, so the loop reaches a fixed point), the smaller range."""
    out = new.copy()
    for fo, fn in zip(old.frames, out.frames, strict=False):
        for r, (vo, vn) in enumerate(zip(fo.regs, fn.regs, strict=True)):
            fn.regs[r] = _join(vo, vn, loop)
        for k in list(fn.stack):
            fn.stack[k] = _join(fo.stack.get(k, TOP), fn.stack[k], loop)
    return out


def _join(vo: V, vn: V, loop: bool) -> V:
    lo = vn.lo if vn.lo >= vo.lo else 0 if loop else vo.lo
    hi = vn.hi if vn.hi <= vo.hi else U64 if loop else vn.hi
    lo, hi = min(lo, vo.lo), max(hi, vo.hi)
    if vo.kind == "scalar" and vn.kind == "scalar":
        return V("scalar", lo, hi)
    if vo.kind == "pkt" and vn.kind == "pkt" and vo.off == vn.off:
        return replace(vn, lo=lo, hi=hi, rng=min(vo.rng, vn.rng))
    if vo.kind == vn.kind and vo == vn:
        return vo
    if "stale" in (vo.kind, vn.kind):
        return vo if vo.kind == "stale" else vn
    return TOP if vo.kind == "scalar" or vn.kind == "scalar" else V("other")
