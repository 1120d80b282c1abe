"""Builders: one per instruction ``Kind``, each turning one instruction into the closure the
VM's hot loop calls; the call ``Frame`` of bpf-to-bpf calls and callbacks."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from ebpf.code.isa import (
    AluOp,
    AtomicOp,
    CallKind,
    Endian,
    Insn,
    InsnClass,
    JmpOp,
    Kind,
    OpSpec,
    PseudoSrc,
    Source,
)
from ebpf.errors import VmError
from ebpf.helpers.core import get_helper
from ebpf.loader.program import ProgramDef
from ebpf.vm.alu import (
    ALU32_OPS,
    ALU64_OPS,
    ATOMIC_OPS,
    JMP32_OPS,
    JMP64_OPS,
    byte_swap,
    endian_op,
    signed,
    sx,
)
from ebpf.vm.limits import M32, M64, MAX_CALL_FRAMES, STACK_SIZE, STOP, SWITCH
from ebpf.vm.trace import HelperCall

if TYPE_CHECKING:
    from ebpf.vm.machine import Vm

_UNPACK = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
           8: struct.Struct("<Q")}


class Frame:
    """A suspended caller: where to return, its r6-r10, its code; or a callback's hook."""

    __slots__ = ("return_pc", "saved", "code", "prog", "on_return", "record", "call_slot")

    def __init__(self, return_pc: int, saved: list[int], code: list, prog: ProgramDef,
                 on_return: Callable[[int], int | None] | None = None,
                 record: HelperCall | None = None, call_slot: int = 0) -> None:
        self.return_pc = return_pc
        self.saved = saved
        self.code = code
        self.prog = prog
        self.on_return = on_return
        self.record = record
        self.call_slot = call_slot


# --------------------------------------------------------------------------------------------
# the VM

def raiser(message: str) -> Callable[[int], int]:
    def handler(pc: int) -> int:
        raise VmError(message)
    return handler


# --------------------------------------------------------------------------------------------
# builders: one per Kind, each returns the closure for one instruction
# --------------------------------------------------------------------------------------------

class Ctx:
    """What a builder needs: the VM, the instruction, its slot, and the jump-target check."""

    __slots__ = ("vm", "prog", "insn", "spec", "slot", "starts", "num_slots")

    def __init__(self, vm: Vm, prog: ProgramDef, insn: Insn, spec: OpSpec, slot: int,
                 starts: set[int], num_slots: int) -> None:
        self.vm = vm
        self.prog = prog
        self.insn = insn
        self.spec = spec
        self.slot = slot
        self.starts = starts
        self.num_slots = num_slots

    def target(self, rel: int) -> int:
        """The slot ``rel`` slots after the next one; must start an instruction."""
        target = self.slot + 1 + rel
        if not 0 <= target < self.num_slots or target not in self.starts:
            raise VmError(f"jump target {target} is out of range or inside an lddw "
                          f"(program has {self.num_slots} slots)")
        return target


def _build_alu(c: Ctx) -> Callable[[int], int]:
    regs = c.vm.regs
    insn, spec = c.insn, c.spec
    dst, src = insn.dst, insn.src
    off = insn.off if spec.op in (AluOp.DIV, AluOp.MOD, AluOp.MOV) else 0
    table = ALU64_OPS if spec.is64 else ALU32_OPS
    fn = table.get((AluOp(spec.op), off))
    if fn is None:
        raise VmError(f"no ALU operation {AluOp(spec.op).name} with off {off}")
    if spec.source is Source.K:
        imm = insn.imm & (M64 if spec.is64 else M32)
        if spec.op == AluOp.MOV:
            def mov_k(pc: int) -> int:
                regs[dst] = imm
                return pc + 1
            return mov_k
        if spec.op == AluOp.ADD and spec.is64:
            def add_k(pc: int) -> int:
                regs[dst] = (regs[dst] + imm) & M64
                return pc + 1
            return add_k

        def alu_k(pc: int) -> int:
            regs[dst] = fn(regs[dst], imm)
            return pc + 1
        return alu_k
    if spec.op == AluOp.MOV and off == 0 and spec.is64:
        def mov_x(pc: int) -> int:
            regs[dst] = regs[src]
            return pc + 1
        return mov_x

    def alu_x(pc: int) -> int:
        regs[dst] = fn(regs[dst], regs[src])
        return pc + 1
    return alu_x


def _build_neg(c: Ctx) -> Callable[[int], int]:
    """dst = -dst (ALU: the low 32 bits, zero-extended)."""
    regs, dst = c.vm.regs, c.insn.dst
    mask = M64 if c.spec.is64 else M32

    def neg(pc: int) -> int:
        regs[dst] = -regs[dst] & mask
        return pc + 1
    return neg


def _build_endian(c: Ctx) -> Callable[[int], int]:
    regs, dst = c.vm.regs, c.insn.dst
    fn = endian_op(Endian(c.spec.opcode & 0x08), c.insn.imm)

    def endian(pc: int) -> int:
        regs[dst] = fn(regs[dst])
        return pc + 1
    return endian


def _build_bswap(c: Ctx) -> Callable[[int], int]:
    regs, dst, width = c.vm.regs, c.insn.dst, c.insn.imm

    def bswap(pc: int) -> int:
        regs[dst] = byte_swap(regs[dst], width)
        return pc + 1
    return bswap


def _build_ja(c: Ctx) -> Callable[[int], int]:
    """goto +off (JMP) or gotol +imm (JMP32)."""
    rel = c.insn.off if c.spec.cls is InsnClass.JMP else c.insn.imm
    target = c.target(rel)
    path = c.vm.path

    def ja(pc: int) -> int:
        path.append(target)
        return target
    return ja


def _build_jcond(c: Ctx) -> Callable[[int], int]:
    """Compare dst with src/imm (JMP: 64-bit, imm sign-extended; JMP32: low 32 bits)."""
    regs, path = c.vm.regs, c.vm.path
    insn, spec = c.insn, c.spec
    dst, src = insn.dst, insn.src
    target = c.target(insn.off)
    is64 = spec.cls is InsnClass.JMP
    cmp = (JMP64_OPS if is64 else JMP32_OPS)[JmpOp(spec.op)]
    mask = M64 if is64 else M32
    if spec.source is Source.K:
        imm = insn.imm & mask

        def jcond_k(pc: int) -> int:
            if cmp(regs[dst] & mask, imm):
                path.append(target)
                return target
            path.append(pc + 1)
            return pc + 1
        return jcond_k

    def jcond_x(pc: int) -> int:
        if cmp(regs[dst] & mask, regs[src] & mask):
            path.append(target)
            return target
        path.append(pc + 1)
        return pc + 1
    return jcond_x


def _build_call(c: Ctx) -> Callable[[int], int]:
    kind = c.insn.src
    if kind == CallKind.HELPER:
        return _build_helper_call(c)
    if kind == CallKind.LOCAL:
        return _build_local_call(c)
    btf_id = c.insn.imm
    return raiser(f"kfunc call (BTF id {btf_id}) is not supported by the VM")


def _build_helper_call(c: Ctx) -> Callable[[int], int]:
    """r0 = helper(r1, ..., r5); the call is recorded in the trace."""
    vm, regs, helper_id = c.vm, c.vm.regs, c.insn.imm

    def call_helper(pc: int) -> int:
        spec = get_helper(helper_id)  # VmError naming the helper when unknown
        vm.slot = pc
        record = HelperCall(pc, helper_id, spec.name, regs[1:1 + spec.nargs], None)
        vm.trace.helper_calls.append(record)
        vm._call_record = record
        ret = spec.fn(vm, regs[1], regs[2], regs[3], regs[4], regs[5])
        if ret is None:
            return vm.take_jump()
        ret &= M64
        regs[0] = ret
        record.ret = ret
        return pc + 1
    return call_helper


def _build_local_call(c: Ctx) -> Callable[[int], int]:
    """bpf-to-bpf call: a new zeroed 512-byte frame; r6-r10 saved for the return."""
    vm, regs, frames, path = c.vm, c.vm.regs, c.vm.frames, c.vm.path
    target = c.target(c.insn.imm)
    stacks = vm._stacks

    def call_local(pc: int) -> int:
        depth = len(frames) + 1
        if depth >= MAX_CALL_FRAMES:
            raise VmError(f"the call stack of {depth + 1} frames is too deep "
                          f"(MAX_CALL_FRAMES {MAX_CALL_FRAMES})")
        frames.append(Frame(pc + 1, regs[6:11], vm._code, vm._prog))
        stack = stacks[depth]
        stack.buf[:] = bytes(STACK_SIZE)
        regs[10] = stack.base + STACK_SIZE
        path.append(target)
        return target
    return call_local


def _build_exit(c: Ctx) -> Callable[[int], int]:
    """Return r0 to the caller (restoring its r6-r10), or end the run."""
    vm, regs, frames, path = c.vm, c.vm.regs, c.vm.frames, c.vm.path

    def exit_(pc: int) -> int:
        if not frames:
            return STOP
        frame = frames.pop()
        regs[6:11] = frame.saved
        if frame.on_return is not None:
            vm.slot = frame.call_slot
            vm._call_record = frame.record
            result = frame.on_return(regs[0])
            if result is None:
                return vm.take_jump()
            regs[0] = result & M64
            if frame.record is not None:
                frame.record.ret = regs[0]
        if frame.code is not vm._code:
            vm._code, vm._prog, vm._pc = frame.code, frame.prog, frame.return_pc
            path.append(frame.return_pc)
            return SWITCH
        path.append(frame.return_pc)
        return frame.return_pc
    return exit_


def _build_lddw(c: Ctx) -> Callable[[int], int]:
    """64-bit immediate load; pseudo sources become map, value and function addresses.

    MAP_FD / MAP_VALUE take imm as an index into the VM's maps, like MAP_IDX / MAP_IDX_VALUE
    (there are no file descriptors here).
    """
    vm, regs, insn = c.vm, c.vm.regs, c.insn
    dst, src = insn.dst, insn.src
    if src == PseudoSrc.IMM64:
        value = insn.imm64
    elif src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_FD):
        value = vm.map_pointer(vm._map_index(insn.imm))
    elif src in (PseudoSrc.MAP_IDX_VALUE, PseudoSrc.MAP_VALUE):
        value = vm.global_value_address(insn.imm, insn.next_imm or 0)
    elif src == PseudoSrc.FUNC:
        value = vm.function_pointer(c.prog, c.target(insn.imm))
    else:
        return raiser(f"lddw with pseudo source {PseudoSrc(src).name} (imm {insn.imm}) "
                       f"is not supported by the VM")

    def lddw(pc: int) -> int:
        regs[dst] = value
        return pc + 2
    return lddw


def _build_ld_abs(c: Ctx) -> Callable[[int], int]:
    """Legacy packet load: r0 = big-endian value at imm (+ src for LD_IND), or exit 0."""
    vm, regs, insn = c.vm, c.vm.regs, c.insn
    width = c.spec.width
    imm, src = insn.imm, insn.src
    indirect = c.spec.kind is Kind.LD_IND
    exit_ = _build_exit(c)

    def ld_abs(pc: int) -> int:
        offset = signed((regs[src] if indirect else 0) + imm, 32)
        data = vm.packet_bytes()
        if offset < 0 or offset + width > len(data):
            regs[0] = 0
            return exit_(pc)
        regs[0] = int.from_bytes(data[offset:offset + width], "big")
        return pc + 1
    return ld_abs


def _build_ldx(c: Ctx) -> Callable[[int], int]:
    """dst = *(size *)(src + off), zero-extended."""
    regs, load = c.vm.regs, c.vm.mem.load
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width

    def ldx(pc: int) -> int:
        regs[dst] = load((regs[src] + off) & M64, width)
        return pc + 1
    return ldx


def _build_ldxsx(c: Ctx) -> Callable[[int], int]:
    """dst = *(signed size *)(src + off), sign-extended to 64 bits (v4)."""
    regs, load = c.vm.regs, c.vm.mem.load
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width
    bits = width * 8

    def ldxsx(pc: int) -> int:
        regs[dst] = sx(load((regs[src] + off) & M64, width), bits)
        return pc + 1
    return ldxsx


def _build_st(c: Ctx) -> Callable[[int], int]:
    """*(size *)(dst + off) = imm (sign-extended, then truncated to the size)."""
    vm, regs, store = c.vm, c.vm.regs, c.vm.mem.store
    dst, off, width = c.insn.dst, c.insn.off, c.spec.width
    imm = c.insn.imm & M64

    def st(pc: int) -> int:
        vm.slot = pc
        store((regs[dst] + off) & M64, width, imm)
        return pc + 1
    return st


def _build_stx(c: Ctx) -> Callable[[int], int]:
    """*(size *)(dst + off) = src (truncated to the size)."""
    vm, regs, store = c.vm, c.vm.regs, c.vm.mem.store
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width

    def stx(pc: int) -> int:
        vm.slot = pc
        store((regs[dst] + off) & M64, width, regs[src])
        return pc + 1
    return stx


def _build_atomic(c: Ctx) -> Callable[[int], int]:
    """Atomic read-modify-write on stack or map value memory (W or DW).

    add/or/and/xor store ``old op src``; with FETCH, src receives the old value. xchg
    stores src and returns the old value in src. cmpxchg compares r0 with memory, stores
    src only if equal, and always loads the old value into r0. For W every value involved
    is the low 32 bits and results written to registers are zero-extended.
    """
    vm, regs, mem = c.vm, c.vm.regs, c.vm.mem
    dst, src, off, width = c.insn.dst, c.insn.src, c.insn.off, c.spec.width
    mask = M64 if width == 8 else M32
    packer = _UNPACK[width]
    op = c.insn.imm

    if op == AtomicOp.CMPXCHG:
        def cmpxchg(pc: int) -> int:
            vm.slot = pc
            region, o = mem.atomic_region((regs[dst] + off) & M64, width)
            old = packer.unpack_from(region.buf, o)[0]
            if old == regs[0] & mask:
                packer.pack_into(region.buf, o, regs[src] & mask)
                mem.atomic_done(region, o, width)
            regs[0] = old
            return pc + 1
        return cmpxchg
    if op == AtomicOp.XCHG:
        def xchg(pc: int) -> int:
            vm.slot = pc
            region, o = mem.atomic_region((regs[dst] + off) & M64, width)
            old = packer.unpack_from(region.buf, o)[0]
            packer.pack_into(region.buf, o, regs[src] & mask)
            mem.atomic_done(region, o, width)
            regs[src] = old
            return pc + 1
        return xchg
    fn = ATOMIC_OPS[op & ~AtomicOp.FETCH]
    fetch = bool(op & AtomicOp.FETCH)

    def atomic(pc: int) -> int:
        vm.slot = pc
        region, o = mem.atomic_region((regs[dst] + off) & M64, width)
        old = packer.unpack_from(region.buf, o)[0]
        packer.pack_into(region.buf, o, fn(old, regs[src] & mask) & mask)
        mem.atomic_done(region, o, width)
        if fetch:
            regs[src] = old
        return pc + 1
    return atomic


BUILDERS: dict[Kind, Callable[[Ctx], Callable[[int], int]]] = {
    Kind.ALU: _build_alu,
    Kind.NEG: _build_neg,
    Kind.ENDIAN: _build_endian,
    Kind.BSWAP: _build_bswap,
    Kind.JA: _build_ja,
    Kind.JCOND: _build_jcond,
    Kind.CALL: _build_call,
    Kind.EXIT: _build_exit,
    Kind.LDDW: _build_lddw,
    Kind.LD_ABS: _build_ld_abs,
    Kind.LD_IND: _build_ld_abs,
    Kind.LDX: _build_ldx,
    Kind.LDXSX: _build_ldxsx,
    Kind.ST: _build_st,
    Kind.STX: _build_stx,
    Kind.ATOMIC: _build_atomic,
}
assert set(BUILDERS) == set(Kind), "every Kind of ebpf.code.isa needs a builder"
