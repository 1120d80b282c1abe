"""Native ``bpf_tail_call`` for the batch driver.

The VM's ``Vm.tail_call`` jumps to ``PROG_ARRAY[index]`` or falls through (an index beyond
``max_entries``, ``MAX_TAIL_CALL_CNT`` calls made already: the counter is bumped before the
slot is read, an empty slot). A program cannot write a prog_array and user space does not
run during a batch, so ``TailCalls.refresh`` snapshots every prog_array at the start of
``run_xdp_columns``: per map its pointer, ``max_entries`` and the present slots, each with
its target's native function and its number in ``progs`` (0 is the entry program). The
native ``tail_call`` follows the VM's steps on a packet whose VM view is not built yet and
writes a record per call (packet, slot, map, index, target or -1, where the path stood),
which becomes the trace's ``TailCall`` (``to_trace`` when the packet's view is built,
``records`` for the packets that never need one). After a jump the call site appends the
target's entry 0 to the path and returns SWITCH; the driver goes on in the function in
``W_FN``. Everything else (a packet with a VM view, a map not in the snapshot, a slot whose
target does not resolve, a full record buffer, single ``run`` calls) runs on the VM's
handler, so its errors and traces are the VM's.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from llvmlite import ir

from ebpf.compiled import codegen as cg
from ebpf.compiled.codegen import I64, P64, c64
from ebpf.errors import VmError
from ebpf.kernel_enums import map_type_name
from ebpf.vm.limits import MAX_TAIL_CALL_CNT
from ebpf.vm.trace import TailCall

# the family's rt words (cg.RT_TAIL + ...): the snapshot (0: every call on the VM's handler),
# whether the packet has a VM view, its tail calls so far, path entries moved out of the
# native buffer before its view, the record buffer and its use, the function to go on in,
# the number of the program running
W_TABLE, W_VIEW, W_COUNT, W_FLUSHED, W_REC, W_NREC, W_FN, W_PROG = range(8)
assert W_PROG < cg.RT_FAMILY_WORDS
REC_WORDS = 7  # packet, slot, map number, index, target number (-1: fell through), path
REC_CAP = 16_384  # position in the native buffer, entries flushed before
VM, FALL, JUMP = 0, 1, 2
"""What the native function returns: the VM's handler answers, fall through, jump."""
MAP_WORDS = 4  # per map in the snapshot (after the function's address and the number of
# maps): pointer, max_entries, how many slots are present, their table (index, native
# function or 0: the VM's handler, program number)


def tail_ir() -> str:
    """The LLVM IR of ``i64 tail_call(i64 *rt, i64 map, i64 index, i64 slot)``."""
    module = ir.Module(name="bpf_tail")
    fn = ir.Function(module, ir.FunctionType(I64, [P64, I64, I64, I64]), "tail_call")
    rt, map_ptr, index, slot = fn.args
    blocks = {n: fn.append_basic_block(n) for n in (
        "entry", "found", "counted", "jump", "vm", "fall")}
    b = ir.IRBuilder(blocks["entry"])

    def at(name: str) -> None:
        b.position_at_end(blocks[name])

    def word(base: ir.Value, k: Any) -> ir.Value:
        return b.gep(base, [k if isinstance(k, ir.Value) else c64(k)])

    def rt_word(w: int) -> ir.Value:
        return word(rt, cg.RT_TAIL + w)

    def scan(base: ir.Value, first: int, stride: int, limit: ir.Value, key: ir.Value,
             hit: str, miss: str) -> tuple[ir.Value, ir.Value]:
        """Branch to ``hit`` at the first item ``base[first + n * stride]`` (n below
        ``limit``) equal to ``key``, else to ``miss``: (the item's pointer, n's alloca)."""
        n = b.alloca(I64)
        head, body, step = (fn.append_basic_block(f"{hit}_{x}") for x in ("head", "body",
                                                                             "step"))
        b.store(c64(0), n)
        b.branch(head)
        b.position_at_end(head)
        b.cbranch(b.icmp_unsigned("<", b.load(n), limit), body, blocks[miss])
        b.position_at_end(body)
        item = word(base, b.add(c64(first), b.mul(b.load(n), c64(stride))))
        b.cbranch(b.icmp_unsigned("==", b.load(item), key), blocks[hit], step)
        b.position_at_end(step)
        b.store(b.add(b.load(n), c64(1)), n)
        b.branch(head)
        return item, n

    table = b.inttoptr(b.load(rt_word(W_TABLE)), P64)
    entry, i = scan(table, 2, MAP_WORDS, b.load(word(table, 1)), map_ptr, "found", "vm")

    at("found")  # the VM's record first: every call is in the trace, taken or not
    idx = b.and_(index, c64(0xFFFFFFFF))
    nrec = b.load(rt_word(W_NREC))
    rec = word(b.inttoptr(b.load(rt_word(W_REC)), P64), b.mul(nrec, c64(REC_WORDS)))
    for k, v in enumerate((b.load(word(rt, cg.RT_CUR)), slot, b.load(i), idx, c64(-1),
                           b.load(word(rt, cg.RT_PATH_LEN)), b.load(rt_word(W_FLUSHED)))):
        b.store(v, word(rec, k))
    b.store(b.add(nrec, c64(1)), rt_word(W_NREC))
    count = b.load(rt_word(W_COUNT))
    beyond = b.or_(b.icmp_unsigned(">=", idx, b.load(word(entry, 1))),
                   b.icmp_unsigned(">=", count, c64(MAX_TAIL_CALL_CNT)))
    b.cbranch(beyond, blocks["fall"], blocks["counted"])
    at("counted")
    b.store(b.add(count, c64(1)), rt_word(W_COUNT))
    present = b.inttoptr(b.load(word(entry, 3)), P64)
    target, _j = scan(present, 0, 3, b.load(word(entry, 2)), idx, "jump", "fall")
    at("jump")
    number = b.load(word(target, 2))
    b.store(number, word(rec, 4))
    b.store(number, rt_word(W_PROG))
    b.store(b.load(word(target, 1)), rt_word(W_FN))
    b.ret(c64(JUMP))
    at("fall")
    b.ret(c64(FALL))
    at("vm")
    b.ret(c64(VM))
    return str(module)


@cg.native_helper("tail_call")
def _emit_tail_call(f: Any, slot: int) -> None:
    """The native ``tail_call`` where a batch's packet has no VM view, else the VM's."""
    b = f.b
    ask, vm = f.block(f"s{slot}_tail"), f.block(f"s{slot}_tail_vm")
    free = b.and_(b.icmp_unsigned("!=", f.rt_load(cg.RT_TAIL + W_TABLE), c64(0)),
                  b.icmp_unsigned("==", f.rt_load(cg.RT_TAIL + W_VIEW), c64(0)))
    room = b.icmp_unsigned("<", f.rt_load(cg.RT_TAIL + W_NREC), c64(REC_CAP))
    b.cbranch(b.and_(free, room), ask, vm)
    b.position_at_end(ask)
    fn_ty = ir.FunctionType(I64, [P64, I64, I64, I64])
    table = b.inttoptr(f.rt_load(cg.RT_TAIL + W_TABLE), P64)
    call = b.inttoptr(b.load(table), fn_ty.as_pointer())  # the snapshot's word 0
    res = b.call(call, [f.rt, f.reg(2), f.reg(3), c64(slot)])
    jump, other, fall = (f.block(f"s{slot}_tail_{n}") for n in ("jump", "other", "fall"))
    b.cbranch(b.icmp_unsigned("==", res, c64(JUMP)), jump, other)
    b.position_at_end(other)
    b.cbranch(b.icmp_unsigned("==", res, c64(FALL)), fall, vm)
    b.position_at_end(fall)
    b.branch(f.slot_block(slot + 1))
    b.position_at_end(jump)  # the target's entry 0 in the path, as the VM appends it
    f.record(0)
    f.leave(cg.SWITCH)
    b.position_at_end(vm)
    f.interp(slot, slot + 1)


class TailCalls:
    """The snapshot of a VM's prog_arrays and the records of a batch's native tail calls."""

    def __init__(self, vm: Any, fn_addr: int) -> None:
        self.vm = vm
        self.fn_addr = fn_addr
        self.progs: list[Any] = [vm.program]  # numbers: the records' targets, W_PROG
        self.maps: list[str] = []
        self.rec = np.zeros(REC_CAP * REC_WORDS, dtype=np.int64)
        self._table: Any = None
        self._keep: list[Any] = []

    def _number(self, prog: Any) -> int:
        for k, p in enumerate(self.progs):
            if p is prog:
                return k
        self.progs.append(prog)
        return len(self.progs) - 1

    def refresh(self) -> None:
        """Snapshot every prog_array (their targets compiled to native code)."""
        vm = self.vm
        words: list[int] = [self.fn_addr, 0]  # the native function, how many maps
        self.maps, self._keep = [], []
        for m in vm.maps:
            if map_type_name(m.defn.type) != "prog_array":
                continue
            slots = []
            for index, target in sorted(m._slots.items()):
                try:
                    prog = vm._resolve(target)
                    vm.compile(prog)
                except VmError:  # the VM's handler raises it if a packet gets there
                    slots += [index, 0, 0]
                    continue
                fn = ctypes.cast(vm._native[id(prog)], ctypes.c_void_p).value or 0
                slots += [index, fn, self._number(prog)]
            arr = np.array(slots or [0], dtype=np.uint64)
            self._keep.append(arr)
            words += [vm.map_pointer(m), m.max_entries, len(slots) // 3, arr.ctypes.data]
            self.maps.append(m.name)
        words[1] = len(self.maps)
        self._table = np.array(words, dtype=np.uint64)

    def begin(self) -> None:
        """A batch chunk starts: native tail calls on (where the object has prog_arrays)."""
        rt = self.vm._rt
        rt[cg.RT_TAIL + W_TABLE] = self._table.ctypes.data if self.maps else 0
        rt[cg.RT_TAIL + W_REC] = self.rec.ctypes.data
        rt[cg.RT_TAIL + W_NREC] = 0

    def end(self) -> None:
        self.vm._rt[cg.RT_TAIL + W_TABLE] = 0

    def _records(self, lo: int, hi: int) -> list[tuple[int, tuple]]:
        """Records ``lo .. hi`` as (packet, ``ebpf.columns.TailRecord``)."""
        rec = self.rec.reshape(-1, REC_WORDS)
        names = [p.name for p in self.progs]
        maps = self.maps
        return [(k, (slot, maps[m], index, names[target] if target >= 0 else None,
                     1 + flushed + pos))
                for k, slot, m, index, target, pos, flushed in rec[lo:hi].tolist()]

    def to_trace(self, k: int) -> None:
        """Packet ``k``'s view is being built: its native tail calls into its trace, their
        count and the program it runs into the VM."""
        vm, rt = self.vm, self.vm._rt
        n = rt[cg.RT_TAIL + W_NREC]
        lo = n
        rec = self.rec.reshape(-1, REC_WORDS)
        while lo > 0 and rec[lo - 1, 0] == k:
            lo -= 1
        vm.trace.tail_calls = [TailCall(*t) for _k, t in self._records(lo, n)]
        vm._tail_calls = rt[cg.RT_TAIL + W_COUNT]
        prog = self.progs[rt[cg.RT_TAIL + W_PROG]]
        vm._code, vm._prog = vm.compile(prog), prog
        rt[cg.RT_TAIL + W_VIEW] = 1

    def take(self) -> dict[int, tuple[tuple, ...]]:
        """The records since the last ``take``, per chunk packet, as
        ``ebpf.columns.TailRecord`` tuples (the buffer is emptied)."""
        rt = self.vm._rt
        out: dict[int, list[tuple]] = {}
        for k, t in self._records(0, rt[cg.RT_TAIL + W_NREC]):
            out.setdefault(k, []).append(t)
        rt[cg.RT_TAIL + W_NREC] = 0
        return {k: tuple(v) for k, v in out.items()}

    def running(self) -> Any:
        """The program the current packet runs (a native tail call may have switched)."""
        return self.progs[self.vm._rt[cg.RT_TAIL + W_PROG]]
