"""eBPF to LLVM IR: one native function per program, one small emitter per ``isa.Kind``.

The function is ``i64 prog(i64 *regs, i64 *rt)``: ``regs`` holds r0-r10 on entry and on
return, ``rt`` the runtime block that ``ebpf.compiled.native`` keeps up to date (layout:
the ``RT_*`` indices below). It returns ``EXIT`` (the program returned r0), ``SWITCH`` (a
tail call chose another program: run its function next on the same registers) or ``ERROR``
(``rt[RT_ERR_KIND]`` says why; ``RT_ERR_SLOT`` where).

Semantics are the reference VM's (``ebpf.vm``; its modules list the edge cases: division
by zero, shift masks, 32-bit zero extension, signed division of INT_MIN by -1, ...). Values
are the VM's own: pointers are the VM's synthetic addresses (``ebpf.vm.memory``), which the
native code turns into host addresses through the region table (one entry per 4 GiB
stride from ``FIRST_BASE``: host pointer, accessible ``lo``/``hi``, what is allowed).
Anything off the fast path (an access the table does not allow, a helper call, LD_ABS,
the ``xdp_md`` loads the table cannot answer) calls back into the VM, which runs that one
instruction with its own handler (``interp(slot)``), so faults, helper results and their
error texts are the VM's. bpf-to-bpf calls are native: a frame array of saved r6-r10 and
a return id, a fresh zeroed 512-byte stack from the VM's own stack regions.

The instruction budget is counted per instruction and checked at every jump target (where
a loop can come back), so a runaway loop stops with the VM's error, a few instructions
after the VM would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from ebpf.code.isa import AluOp, AtomicOp, CallKind, Endian, InsnClass, JmpOp, Kind, Source
from ebpf.kernel_enums import HELPER_IDS
from ebpf.loader.program import ProgramDef
from ebpf.vm.limits import MAX_CALL_FRAMES, STACK_SIZE
from ebpf.vm.memory import FIRST_BASE

EXIT, SWITCH, ERROR = 0, 1, 2
"""What a native function returns."""
INTERP_ERROR, INTERP_SWITCH, INTERP_STOP = -1, -2, -3
"""What the interp callback returns besides the next slot."""

# rt[] layout (i64 words)
RT_NREG, RT_TABLE, RT_STEPS, RT_BUDGET, RT_CTX_IDX = 0, 1, 2, 3, 4
RT_CTX_VALS = 5  # six words: the xdp_md fields as the VM's loads return them
RT_ERR_SLOT, RT_ERR_KIND, RT_ERR_ARG = 11, 12, 13
RT_PATH_PTR, RT_PATH_LEN = 14, 15  # the path buffer (u64 slots) and how much of it is used
RT_INTERP = 16  # the address of the ``i64 interp(i64 slot)`` callback
RT_STACK_HOSTS = 17  # MAX_CALL_FRAMES words: the host address of each depth's stack
RT_CUR = RT_STACK_HOSTS + MAX_CALL_FRAMES  # the packet a batch is running (ebpf.compiled.batch)
# native map lookups (ebpf.compiled.maplookup): the function's address, the descriptors and
# their count (0: every lookup on the VM's handler), where the VM's answer is to be kept
RT_LOOKUP, RT_MAPS, RT_NMAPS, RT_FILL = RT_CUR + 1, RT_CUR + 2, RT_CUR + 3, RT_CUR + 4
# words reserved for the native helper families (``native_helper`` below), one block each
RT_FAMILY_WORDS = 8
RT_MAPS_X = RT_CUR + 5  # map writes, LRU, clock
RT_PKT = RT_MAPS_X + RT_FAMILY_WORDS  # checksums, head/tail/meta adjustments
RT_FWD = RT_PKT + RT_FAMILY_WORDS  # redirects, FIB lookups
RT_TAIL = RT_FWD + RT_FAMILY_WORDS  # tail calls in batches
RT_WORDS = RT_TAIL + RT_FAMILY_WORDS
PATH_CAP = 4096
"""Path entries buffered natively; when full the runtime moves them into the VM's path."""
INTERP_FLUSH = -1
"""The slot the interp callback gets to flush the path buffer."""
LOOKUP_NOPE = 1
"""What the native lookup returns when the VM's helper must answer."""
ENTRY_WORDS = 4  # region table entry: host pointer, lo, hi, flags
F_LOAD, F_STORE, F_ATOMIC = 1, 2, 4

ERR_BUDGET, ERR_DEPTH, ERR_INTERP, ERR_TAIL_IN_SUB, ERR_CONTROL = 1, 2, 3, 4, 5

I64, I32, I16, I8, I1 = ir.IntType(64), ir.IntType(32), ir.IntType(16), ir.IntType(8), \
    ir.IntType(1)
P64 = I64.as_pointer()
INT = {1: I8, 2: I16, 4: I32, 8: I64}
M64 = (1 << 64) - 1


def c64(v: int) -> ir.Constant:
    return ir.Constant(I64, v & M64)


@dataclass
class Plan:
    """What the emitters need beyond the program: decided by the runtime."""

    lddw: dict[int, int | None]
    """slot -> the value a 64-bit load yields (None: the VM's handler raises)."""
    stack_bases: list[int]
    """The VM's synthetic stack base per call depth (r10 = base + 512).

    Everything else that differs from one VM to the next (host addresses, the callback)
    is read from ``rt``, so the same program compiles to the same code (cached)."""


class _Fn:
    """The function being built: its blocks, registers and shared exits."""

    def __init__(self, module: ir.Module, name: str, prog: ProgramDef, plan: Plan) -> None:
        self.prog, self.plan = prog, plan
        self.fn = ir.Function(module, ir.FunctionType(I64, [P64, P64]), name)
        self.regs_arg, self.rt = self.fn.args
        entry = self.fn.append_basic_block("entry")
        self.b = b = ir.IRBuilder(entry)
        self.regs = [b.alloca(I64, name=f"r{i}") for i in range(11)]
        self.depth = b.alloca(I64, name="depth")
        self.steps = b.alloca(I64, name="steps")
        self.frames = b.alloca(I64, MAX_CALL_FRAMES * 6, name="frames")
        for i, reg in enumerate(self.regs):
            b.store(b.load(b.gep(self.regs_arg, [c64(i)])), reg)
        b.store(c64(0), self.depth)
        b.store(self.rt_load(RT_STEPS), self.steps)
        self.entry = entry
        self.slots: dict[int, ir.Block] = {}
        self.interp_ty = ir.FunctionType(I64, [I64])
        self.interp_ptr = b.inttoptr(self.rt_load(RT_INTERP), self.interp_ty.as_pointer())
        self.return_sites: list[int] = []
        self.exit_block: ir.Block | None = None

    # -- small pieces ----------------------------------------------------------------------

    def rt_ptr(self, word: int) -> ir.Value:
        return self.b.gep(self.rt, [c64(word)])

    def rt_load(self, word: int) -> ir.Value:
        return self.b.load(self.rt_ptr(word))

    def reg(self, i: int) -> ir.Value:
        return self.b.load(self.regs[i])

    def set_reg(self, i: int, value: ir.Value) -> None:
        self.b.store(value, self.regs[i])

    def block(self, name: str) -> ir.Block:
        return self.fn.append_basic_block(name)

    def spill(self) -> None:
        """Registers and step count back to memory (before a callback or a return)."""
        b = self.b
        for i, reg in enumerate(self.regs):
            b.store(b.load(reg), b.gep(self.regs_arg, [c64(i)]))
        b.store(b.load(self.steps), self.rt_ptr(RT_STEPS))

    def reload(self) -> None:
        b = self.b
        for i, reg in enumerate(self.regs):
            b.store(b.load(b.gep(self.regs_arg, [c64(i)])), reg)

    def leave(self, status: int, slot: int = 0, kind: int = 0,
              arg: ir.Value | None = None) -> None:
        """Spill and return ``status`` (an error records slot, kind and arg)."""
        self.spill()
        if status == ERROR:
            self.b.store(c64(slot), self.rt_ptr(RT_ERR_SLOT))
            self.b.store(c64(kind), self.rt_ptr(RT_ERR_KIND))
            self.b.store(arg if arg is not None else c64(0), self.rt_ptr(RT_ERR_ARG))
        self.b.ret(c64(status))

    # -- the VM fallback -------------------------------------------------------------------

    def interp(self, slot: int, next_slot: int | None) -> None:
        """Run ``slot`` with the VM's handler, continue where it says (``next_slot``;
        None: the handler always raises)."""
        b = self.b
        self.spill()
        res = b.call(self.interp_ptr, [c64(slot)])
        self.reload()
        b.store(b.load(self.rt_ptr(RT_STEPS)), self.steps)
        if next_slot is not None:
            cont, other = self.block(f"s{slot}_cont"), self.block(f"s{slot}_other")
            b.cbranch(b.icmp_signed("==", res, c64(next_slot)), cont, other)
            b.position_at_end(cont)
            b.branch(self.slot_block(next_slot))
            b.position_at_end(other)
        stop, other2 = self.block(f"s{slot}_stop"), self.block(f"s{slot}_other2")
        b.cbranch(b.icmp_signed("==", res, c64(INTERP_STOP)), stop, other2)
        b.position_at_end(stop)
        b.branch(self.get_exit())
        b.position_at_end(other2)
        switch, fail = self.block(f"s{slot}_switch"), self.block(f"s{slot}_fail")
        b.cbranch(b.icmp_signed("==", res, c64(INTERP_SWITCH)), switch, fail)
        b.position_at_end(switch)
        sub, top = self.block(f"s{slot}_sub"), self.block(f"s{slot}_top")
        b.cbranch(b.icmp_unsigned("==", b.load(self.depth), c64(0)), top, sub)
        b.position_at_end(top)
        self.leave(SWITCH)
        b.position_at_end(sub)
        self.leave(ERROR, slot, ERR_TAIL_IN_SUB)
        b.position_at_end(fail)
        kind = b.select(b.icmp_signed("==", res, c64(INTERP_ERROR)), c64(ERR_INTERP),
                        c64(ERR_CONTROL))
        self.spill()
        b.store(c64(slot), self.rt_ptr(RT_ERR_SLOT))
        b.store(kind, self.rt_ptr(RT_ERR_KIND))
        b.store(res, self.rt_ptr(RT_ERR_ARG))
        b.ret(c64(ERROR))

    def call_native(self, slot: int, address: ir.Value, args: list[ir.Value], nope: int,
                    vm: ir.Block | None = None) -> None:
        """r0 = ``i64 fn(rt, *args)`` at ``address`` and on to the next slot, unless it
        returns ``nope``: then the VM's handler runs the call (so do branches to ``vm``, a
        block the caller made for its own reasons to ask the VM)."""
        b = self.b
        fn_ty = ir.FunctionType(I64, [P64] + [I64] * len(args))
        res = b.call(b.inttoptr(address, fn_ty.as_pointer()), [self.rt, *args])
        native = self.block(f"s{slot}_native")
        vm = vm if vm is not None else self.block(f"s{slot}_vm")
        b.cbranch(b.icmp_unsigned("==", res, c64(nope)), vm, native)
        b.position_at_end(native)
        self.set_reg(0, res)
        b.branch(self.slot_block(slot + 1))
        b.position_at_end(vm)
        self.interp(slot, slot + 1)

    def record(self, slot: int) -> None:
        """Append ``slot`` to the path (the VM's ``path.append``), flushing when full."""
        b = self.b
        full, put = self.block("path_full"), self.block("path_put")
        b.cbranch(b.icmp_unsigned(">=", self.rt_load(RT_PATH_LEN), c64(PATH_CAP)), full, put)
        b.position_at_end(full)
        b.call(self.interp_ptr, [c64(INTERP_FLUSH)])
        b.branch(put)
        b.position_at_end(put)
        n = self.rt_load(RT_PATH_LEN)
        buf = b.inttoptr(self.rt_load(RT_PATH_PTR), P64)
        b.store(c64(slot), b.gep(buf, [n]))
        b.store(b.add(n, c64(1)), self.rt_ptr(RT_PATH_LEN))

    def goto(self, slot: int) -> None:
        """Branch to ``slot``, recording it in the path (a jump, a call, a return)."""
        self.record(slot)
        self.b.branch(self.slot_block(slot))

    def slot_block(self, slot: int) -> ir.Block:
        blk = self.slots.get(slot)
        if blk is None:
            blk = self.slots[slot] = self.block(f"s{slot}")
        return blk

    # -- memory ----------------------------------------------------------------------------

    def access(self, slot: int, addr: ir.Value, width: int, need: int,
               fast: Callable[[ir.Value], None], slow: Callable[[], None]) -> None:
        """Branch to ``fast(host_pointer)`` when the region table allows the access."""
        b = self.b
        idx = b.lshr(b.sub(addr, c64(FIRST_BASE)), c64(32))
        check, fast_blk, slow_blk = (self.block(f"s{slot}_chk"), self.block(f"s{slot}_fast"),
                                     self.block(f"s{slot}_slow"))
        b.cbranch(b.icmp_unsigned("<", idx, self.rt_load(RT_NREG)), check, slow_blk)
        b.position_at_end(check)
        table = b.inttoptr(self.rt_load(RT_TABLE), P64)
        entry = b.gep(table, [b.mul(idx, c64(ENTRY_WORDS))])
        host = b.load(entry)
        lo = b.load(b.gep(entry, [c64(1)]))
        hi = b.load(b.gep(entry, [c64(2)]))
        flags = b.load(b.gep(entry, [c64(3)]))
        off = b.and_(addr, c64(0xFFFFFFFF))
        ok = b.and_(b.icmp_unsigned(">=", off, lo),
                    b.icmp_unsigned("<=", b.add(off, c64(width)), hi))
        ok = b.and_(ok, b.icmp_unsigned("!=", b.and_(flags, c64(need)), c64(0)))
        b.cbranch(ok, fast_blk, slow_blk)
        b.position_at_end(fast_blk)
        fast(b.inttoptr(b.add(host, off), INT[width].as_pointer()))
        b.position_at_end(slow_blk)
        slow()

    def get_exit(self) -> ir.Block:
        """The shared exit: return at depth 0, else pop a frame and go back to its caller."""
        if self.exit_block is None:
            self.exit_block = self.block("exit")
        return self.exit_block

    def finish_exit(self) -> None:
        if self.exit_block is None:
            return
        b = self.b
        b.position_at_end(self.exit_block)
        depth = b.load(self.depth)
        top, pop = self.block("exit_top"), self.block("exit_pop")
        b.cbranch(b.icmp_unsigned("==", depth, c64(0)), top, pop)
        b.position_at_end(top)
        self.leave(EXIT)
        b.position_at_end(pop)
        depth = b.sub(depth, c64(1))
        b.store(depth, self.depth)
        frame = b.gep(self.frames, [b.mul(depth, c64(6))])
        for k in range(5):
            self.set_reg(6 + k, b.load(b.gep(frame, [c64(k)])))
        site = b.load(b.gep(frame, [c64(5)]))
        bad = self.block("exit_bad")
        sw = b.switch(site, bad)
        for i, ret_slot in enumerate(self.return_sites):
            tramp = self.block(f"ret{i}")
            sw.add_case(c64(i), tramp)
            b.position_at_end(tramp)
            self.goto(ret_slot)
        b.position_at_end(bad)
        self.leave(ERROR, 0, ERR_CONTROL)


# --------------------------------------------------------------------------------------------
# ALU
# --------------------------------------------------------------------------------------------

def _alu(f: _Fn, a: ir.Value, b_: ir.Value, op: AluOp, off: int, bits: int) -> ir.Value:
    """``a op b`` on ``bits``-wide values (the VM's ALU64_OPS / ALU32_OPS)."""
    b = f.b
    t = ir.IntType(bits)
    zero, mask = ir.Constant(t, 0), bits - 1
    if op is AluOp.ADD:
        return b.add(a, b_)
    if op is AluOp.SUB:
        return b.sub(a, b_)
    if op is AluOp.MUL:
        return b.mul(a, b_)
    if op is AluOp.OR:
        return b.or_(a, b_)
    if op is AluOp.AND:
        return b.and_(a, b_)
    if op is AluOp.XOR:
        return b.xor(a, b_)
    if op is AluOp.LSH:
        return b.shl(a, b.and_(b_, ir.Constant(t, mask)))
    if op is AluOp.RSH:
        return b.lshr(a, b.and_(b_, ir.Constant(t, mask)))
    if op is AluOp.ARSH:
        return b.ashr(a, b.and_(b_, ir.Constant(t, mask)))
    if op is AluOp.MOV:
        if off == 0:
            return b_
        return b.sext(b.trunc(b_, ir.IntType(off)), t)
    is_zero = b.icmp_unsigned("==", b_, zero)
    one = ir.Constant(t, 1)
    safe = b.select(is_zero, one, b_)
    if op is AluOp.DIV:
        if off == 0:
            return b.select(is_zero, zero, b.udiv(a, safe))
        minus1 = b.icmp_signed("==", b_, ir.Constant(t, -1))
        q = b.sdiv(a, b.select(minus1, one, safe))
        return b.select(is_zero, zero, b.select(minus1, b.neg(a), q))
    if op is AluOp.MOD:
        if off == 0:
            return b.select(is_zero, a, b.urem(a, safe))
        minus1 = b.icmp_signed("==", b_, ir.Constant(t, -1))
        r = b.srem(a, b.select(minus1, one, safe))
        return b.select(is_zero, a, b.select(minus1, zero, r))
    raise AssertionError(op)


def _emit_alu(f: _Fn, slot: int, insn, spec) -> None:
    b = f.b
    op = AluOp(spec.op)
    off = insn.off if op in (AluOp.DIV, AluOp.MOD, AluOp.MOV) else 0
    bits = 64 if spec.is64 else 32
    a = f.reg(insn.dst)
    if spec.source is Source.K:
        src = c64(insn.imm)  # sign-extended to 64 bits; ALU32 uses its low 32
    else:
        src = f.reg(insn.src)
    if bits == 32:
        a, src = b.trunc(a, I32), b.trunc(src, I32)
    res = _alu(f, a, src, op, off, bits)
    f.set_reg(insn.dst, res if bits == 64 else b.zext(res, I64))


def _emit_neg(f: _Fn, slot: int, insn, spec) -> None:
    b = f.b
    a = f.reg(insn.dst)
    if spec.is64:
        f.set_reg(insn.dst, b.neg(a))
    else:
        f.set_reg(insn.dst, b.zext(b.neg(b.trunc(a, I32)), I64))


def _bswap(f: _Fn, value: ir.Value, width: int) -> ir.Value:
    b = f.b
    t = ir.IntType(width)
    v = b.trunc(value, t) if width < 64 else value
    swapped = b.bswap(v) if width > 8 else v
    return b.zext(swapped, I64) if width < 64 else swapped


def _emit_endian(f: _Fn, slot: int, insn, spec) -> None:
    """to-le truncates to the width; to-be swaps its bytes (the VM's ``_endian_op``)."""
    b, width = f.b, insn.imm
    a = f.reg(insn.dst)
    if Endian(spec.opcode & 0x08) is Endian.TO_LE:
        f.set_reg(insn.dst, b.and_(a, c64((1 << width) - 1)))
    else:
        f.set_reg(insn.dst, _bswap(f, a, width))


def _emit_bswap(f: _Fn, slot: int, insn, spec) -> None:
    f.set_reg(insn.dst, _bswap(f, f.reg(insn.dst), insn.imm))


# --------------------------------------------------------------------------------------------
# jumps, calls, exit
# --------------------------------------------------------------------------------------------

_ICMP = {JmpOp.JEQ: ("==", False), JmpOp.JNE: ("!=", False), JmpOp.JGT: (">", False),
         JmpOp.JGE: (">=", False), JmpOp.JLT: ("<", False), JmpOp.JLE: ("<=", False),
         JmpOp.JSGT: (">", True), JmpOp.JSGE: (">=", True), JmpOp.JSLT: ("<", True),
         JmpOp.JSLE: ("<=", True)}


def _emit_ja(f: _Fn, slot: int, insn, spec) -> None:
    rel = insn.off if spec.cls is InsnClass.JMP else insn.imm
    f.goto(slot + 1 + rel)


def _emit_jcond(f: _Fn, slot: int, insn, spec) -> None:
    b = f.b
    a = f.reg(insn.dst)
    c = c64(insn.imm) if spec.source is Source.K else f.reg(insn.src)
    if spec.cls is InsnClass.JMP32:
        a, c = b.trunc(a, I32), b.trunc(c, I32)
    op = JmpOp(spec.op)
    if op is JmpOp.JSET:
        cond = b.icmp_unsigned("!=", b.and_(a, c), ir.Constant(a.type, 0))
    else:
        pred, signed = _ICMP[op]
        cond = b.icmp_signed(pred, a, c) if signed else b.icmp_unsigned(pred, a, c)
    taken, fall = f.block(f"s{slot}_taken"), f.block(f"s{slot}_fall")
    b.cbranch(cond, taken, fall)
    b.position_at_end(taken)
    f.goto(slot + 1 + insn.off)
    b.position_at_end(fall)
    f.goto(slot + 1)


NativeEmitter = Callable[["_Fn", int], None]
NATIVE_HELPERS: dict[int, NativeEmitter] = {}
"""helper id -> the emitter of its native call site (registered with ``native_helper`` by
the helper family modules of ``ebpf.compiled``); every other helper runs on the VM's handler."""


def native_helper(name: str) -> Callable[[NativeEmitter], NativeEmitter]:
    """Register the emitter of helper ``name``'s call site. The emitter is positioned at
    the call's slot; it ends by branching to ``f.slot_block(slot + 1)`` or by falling back
    to ``f.interp(slot, slot + 1)`` (the VM's handler) where it cannot answer."""
    def register(emit: NativeEmitter) -> NativeEmitter:
        NATIVE_HELPERS[HELPER_IDS[name]] = emit
        return emit
    return register


def _emit_call(f: _Fn, slot: int, insn, spec) -> None:
    if insn.src == CallKind.HELPER and insn.imm == HELPER_IDS.get("map_lookup_elem"):
        _emit_map_lookup(f, slot)
        return
    if insn.src == CallKind.HELPER and insn.imm in NATIVE_HELPERS:
        NATIVE_HELPERS[insn.imm](f, slot)
        return
    if insn.src != CallKind.LOCAL:
        f.interp(slot, slot + 1)  # helpers and kfuncs: the VM's handler
        return
    b = f.b
    target = slot + 1 + insn.imm
    depth = b.add(b.load(f.depth), c64(1))
    deep, ok = f.block(f"s{slot}_deep"), f.block(f"s{slot}_call")
    b.cbranch(b.icmp_unsigned(">=", depth, c64(MAX_CALL_FRAMES)), deep, ok)
    b.position_at_end(deep)
    f.leave(ERROR, slot, ERR_DEPTH, depth)
    b.position_at_end(ok)
    frame = b.gep(f.frames, [b.mul(b.sub(depth, c64(1)), c64(6))])
    for k in range(5):
        b.store(f.reg(6 + k), b.gep(frame, [c64(k)]))
    b.store(c64(len(f.return_sites)), b.gep(frame, [c64(5)]))
    f.return_sites.append(slot + 1)
    b.store(depth, f.depth)
    base = _select_const(f, depth, f.plan.stack_bases)
    host = b.load(b.gep(f.rt, [b.add(depth, c64(RT_STACK_HOSTS))]))
    b.call(_memset(f), [b.inttoptr(host, I8.as_pointer()), ir.Constant(I8, 0),
                        c64(STACK_SIZE), ir.Constant(I1, 0)])
    f.set_reg(10, b.add(base, c64(STACK_SIZE)))
    f.goto(target)


def _emit_map_lookup(f: _Fn, slot: int) -> None:
    """r0 = the native lookup's answer (``ebpf.compiled.maplookup``), else the VM's."""
    f.call_native(slot, f.rt_load(RT_LOOKUP), [f.reg(1), f.reg(2)], LOOKUP_NOPE)


def _select_const(f: _Fn, index: ir.Value, values: list[int]) -> ir.Value:
    """``values[index]`` for a small constant table, as a chain of selects."""
    b = f.b
    out = c64(values[0])
    for i, v in enumerate(values[1:], 1):
        out = b.select(b.icmp_unsigned("==", index, c64(i)), c64(v), out)
    return out


def _memset(f: _Fn) -> ir.Function:
    module = f.fn.module
    name = "llvm.memset.p0i8.i64"
    try:
        return module.get_global(name)
    except KeyError:
        ty = ir.FunctionType(ir.VoidType(), [I8.as_pointer(), I8, I64, I1])
        return ir.Function(module, ty, name)


def _emit_exit(f: _Fn, slot: int, insn, spec) -> None:
    f.b.branch(f.get_exit())


def _emit_lddw(f: _Fn, slot: int, insn, spec) -> None:
    value = f.plan.lddw.get(slot)
    if value is None:
        f.interp(slot, slot + 2)
        return
    f.set_reg(insn.dst, c64(value))
    f.b.branch(f.slot_block(slot + 2))


def _emit_ld_abs(f: _Fn, slot: int, insn, spec) -> None:
    f.interp(slot, slot + 1)  # legacy packet loads: rare, the VM's handler


# --------------------------------------------------------------------------------------------
# loads, stores, atomics
# --------------------------------------------------------------------------------------------

def _emit_ldx(f: _Fn, slot: int, insn, spec) -> None:
    b, width = f.b, spec.width
    addr = b.add(f.reg(insn.src), c64(insn.off))
    signed = spec.kind is Kind.LDXSX
    done = f.block(f"s{slot}_done")

    def fast(ptr: ir.Value) -> None:
        v = b.load(ptr)
        if width < 8:
            v = b.sext(v, I64) if signed else b.zext(v, I64)
        f.set_reg(insn.dst, v)
        b.branch(done)

    def slow() -> None:
        if width == 4 and not signed:  # xdp_md fields: the values the VM's hook returns
            idx = b.lshr(b.sub(addr, c64(FIRST_BASE)), c64(32))
            off = b.sub(addr, b.add(c64(FIRST_BASE), b.shl(idx, c64(32))))
            ok = b.and_(b.icmp_unsigned("==", idx, f.rt_load(RT_CTX_IDX)),
                        b.icmp_unsigned("==", b.and_(off, c64(3)), c64(0)))
            ok = b.and_(ok, b.icmp_unsigned("<", off, c64(24)))
            ctx, other = f.block(f"s{slot}_ctx"), f.block(f"s{slot}_vm")
            b.cbranch(ok, ctx, other)
            b.position_at_end(ctx)
            word = b.add(b.lshr(off, c64(2)), c64(RT_CTX_VALS))
            f.set_reg(insn.dst, b.load(b.gep(f.rt, [word])))
            b.branch(done)
            b.position_at_end(other)
        f.interp(slot, slot + 1)

    f.access(slot, addr, width, F_LOAD, fast, slow)
    b.position_at_end(done)
    b.branch(f.slot_block(slot + 1))


def _emit_store(f: _Fn, slot: int, insn, spec) -> None:
    b, width = f.b, spec.width
    addr = b.add(f.reg(insn.dst), c64(insn.off))
    value = c64(insn.imm) if spec.kind is Kind.ST else f.reg(insn.src)

    def fast(ptr: ir.Value) -> None:
        b.store(b.trunc(value, INT[width]) if width < 8 else value, ptr)
        b.branch(f.slot_block(slot + 1))

    f.access(slot, addr, width, F_STORE, fast, lambda: f.interp(slot, slot + 1))


def _emit_atomic(f: _Fn, slot: int, insn, spec) -> None:
    """The VM's ``_build_atomic`` on native memory (stack and map values only)."""
    b, width = f.b, spec.width
    t = INT[width]
    addr = b.add(f.reg(insn.dst), c64(insn.off))
    op = insn.imm

    def ext(v: ir.Value) -> ir.Value:
        return b.zext(v, I64) if width < 8 else v

    def fast(ptr: ir.Value) -> None:
        old = b.load(ptr)
        src = f.reg(insn.src)
        src = b.trunc(src, t) if width < 8 else src
        if op == AtomicOp.CMPXCHG:
            r0 = f.reg(0)
            r0 = b.trunc(r0, t) if width < 8 else r0
            b.store(b.select(b.icmp_unsigned("==", old, r0), src, old), ptr)
            f.set_reg(0, ext(old))
        elif op == AtomicOp.XCHG:
            b.store(src, ptr)
            f.set_reg(insn.src, ext(old))
        else:
            base = AtomicOp(op & ~AtomicOp.FETCH)
            fn = {AtomicOp.ADD: b.add, AtomicOp.OR: b.or_, AtomicOp.AND: b.and_,
                  AtomicOp.XOR: b.xor}[base]
            b.store(fn(old, src), ptr)
            if op & AtomicOp.FETCH:
                f.set_reg(insn.src, ext(old))
        b.branch(f.slot_block(slot + 1))

    f.access(slot, addr, width, F_ATOMIC, fast, lambda: f.interp(slot, slot + 1))


EMITTERS: dict[Kind, Callable[..., None]] = {
    Kind.ALU: _emit_alu,
    Kind.NEG: _emit_neg,
    Kind.ENDIAN: _emit_endian,
    Kind.BSWAP: _emit_bswap,
    Kind.JA: _emit_ja,
    Kind.JCOND: _emit_jcond,
    Kind.CALL: _emit_call,
    Kind.EXIT: _emit_exit,
    Kind.LDDW: _emit_lddw,
    Kind.LD_ABS: _emit_ld_abs,
    Kind.LD_IND: _emit_ld_abs,
    Kind.LDX: _emit_ldx,
    Kind.LDXSX: _emit_ldx,
    Kind.ST: _emit_store,
    Kind.STX: _emit_store,
    Kind.ATOMIC: _emit_atomic,
}
assert set(EMITTERS) == set(Kind), "every Kind of ebpf.code.isa needs an emitter"

_FALLS_THROUGH = {Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.BSWAP}


def jump_targets(prog: ProgramDef) -> set[int]:
    """Slots a jump or a local call lands on (where the budget is checked)."""
    from ebpf.analysis import branch_target
    from ebpf.code.isa import slot_offsets

    targets = (branch_target(insn, slot)
               for insn, slot in zip(prog.insns, slot_offsets(prog.insns), strict=True))
    return {t for t in targets if t is not None}


def build_function(module: ir.Module, name: str, prog: ProgramDef, plan: Plan) -> None:
    """Add ``name``: the native code of ``prog`` (already validated by the VM's compile)."""
    from ebpf.code.isa import slot_offsets

    f = _Fn(module, name, prog, plan)
    offsets = slot_offsets(prog.insns)
    targets = jump_targets(prog)
    f.b.branch(f.slot_block(0))
    for insn, slot in zip(prog.insns, offsets, strict=True):
        spec = insn.spec
        b = f.b
        b.position_at_end(f.slot_block(slot))
        steps = b.add(b.load(f.steps), c64(1))
        b.store(steps, f.steps)
        if slot in targets:
            over, go = f.block(f"s{slot}_over"), f.block(f"s{slot}_go")
            b.cbranch(b.icmp_unsigned(">", steps, f.rt_load(RT_BUDGET)), over, go)
            b.position_at_end(over)
            f.leave(ERROR, slot, ERR_BUDGET)
            b.position_at_end(go)
        EMITTERS[spec.kind](f, slot, insn, spec)
        if spec.kind in _FALLS_THROUGH:
            f.b.branch(f.slot_block(slot + insn.slots))
    # a block reached but not emitted: the end of the program (or an lddw's second slot,
    # which the VM's compile already refused as a jump target): the VM's handler raises
    for slot, blk in list(f.slots.items()):
        if not blk.is_terminated and not blk.instructions:
            f.b.position_at_end(blk)
            f.interp(slot, None)
    f.finish_exit()
