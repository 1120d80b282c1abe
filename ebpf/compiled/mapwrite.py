"""Native ``bpf_map_update_elem`` and clock helpers for the batch driver (the "maps"
family of ``codegen.native_helper``; its rt words are ``maplookup.RT_X`` + ``X_*``).

**Updates.** ``map_update(i64 *rt, i64 map, i64 key, i64 value, i64 flags) -> i64`` answers
from the tables of ``maplookup.NativeMaps`` what ``ebpf.helpers.maps.map_update_elem``
would return, and writes the value where the VM's map keeps it, or returns ``NOPE`` for
the VM's handler to run the call (a map without a table or not writable by the program,
a key or value the region table does not let native code read: the VM's handler raises
or answers as always):

- **array / per-CPU array** (``ArrayMap._check_array_flags``, in its order): flags other
  than ANY / NOEXIST / EXIST with or without BPF_F_LOCK -> -EINVAL; an index at or
  beyond ``max_entries`` -> -E2BIG; BPF_NOEXIST -> -EEXIST; BPF_F_LOCK -> -EINVAL; else
  the value is copied over the element (this CPU's copy) in place, when the VM has
  handed out its address (else ``NOPE``: the VM's handler copies it).
- **hash / per-CPU hash / LRU hash / LRU per-CPU hash** (``HashMap._update``): flags
  other than ANY / NOEXIST / EXIST -> -EINVAL; an existing key with BPF_NOEXIST ->
  -EEXIST; a missing key with BPF_EXIST -> -ENOENT; an existing key otherwise: the value
  copied in place (``entry[:] = data``), and for an LRU map the use logged as a lookup's
  is (it becomes the most recently used). A new key into a full map: a hash -> -E2BIG,
  an LRU map evicts (``NOPE``: the VM's handler, then ``NativeMaps.written`` brings the
  table up to date). A new key into a map with room is inserted natively: the key into
  its table slot (no value address yet: the VM hands it out at the key's first lookup),
  the value after the others in the value buffer (``X_VBUF``), an ``INSERTED`` entry onto
  the log that also holds the LRU uses; ``NativeMaps.apply_log`` makes the Python map's
  insertion (``update``) in log order before anything reads the map (every callback, the
  end of the batch). A full log or value buffer, or a table without room: ``NOPE``.

The table says whether a key exists, and its count how many the map holds, because it
mirrors the map exactly during a batch (natively inserted keys included).

**The clock.** ``ktime_get_ns``, ``ktime_get_boot_ns``, ``ktime_get_coarse_ns`` and
``ktime_get_tai_ns`` read ``HelperState``'s clock as the VM does: ``clock_start_ns +
reads x clock_step_ns`` (plus the boot or TAI offset), modulo 2**64, and count the read.
The count lives in a native block (``NativeClock``) while a batch runs and is handed to
``HelperState`` around every call back into the VM and at the end. ``jiffies64`` (a
division of a product wider than 64 bits) stays on the VM's handler.

Outside batches (``Vm.run_xdp`` one packet at a time) everything here is off, so traces
keep every helper call and map operation: updates find no descriptor
(``rt[RT_NMAPS] == 0``) and the clock block's address is 0.
"""

from __future__ import annotations

import ctypes
from typing import Any

from llvmlite import ir

from ebpf.compiled import codegen as cg
from ebpf.compiled import maplookup as ml
from ebpf.compiled.codegen import I8, I32, I64, P64, c64
from ebpf.kernel_enums import HELPER_IDS
from ebpf.maps.base import BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT
from ebpf.vm.limits import M64

NOPE = ml.NOPE
CLOCK_HELPERS = {"ktime_get_ns": 0, "ktime_get_coarse_ns": 0, "ktime_get_boot_ns": 3,
                 "ktime_get_tai_ns": 4}
"""Native clock helpers: the word of the clock block holding the offset they add."""
# clock block words: reads so far, start, step, boot offset, TAI offset (0 for plain reads:
# word 0 is never an offset, see _emit_clock)
C_READS, C_START, C_STEP, C_BOOT, C_TAI = range(5)


def update_ir() -> str:
    """The LLVM IR of ``map_update`` (see the module docstring)."""
    module = ir.Module(name="bpf_map_update")
    parts = ml._Parts(module)
    fn = ir.Function(module, ir.FunctionType(I64, [P64, I64, I64, I64, I64]), "map_update")
    rt, r1, r2, r3, flags = fn.args
    blk = {n: fn.append_basic_block(n) for n in (
        "entry", "found", "kinds", "array", "arr_idx", "arr_noexist", "arr_lock",
        "arr_find", "hash", "hash_find", "exists", "missing", "room", "full", "insert",
        "put", "copy", "lru", "write", "nope")}
    b = ir.IRBuilder(blk["entry"])

    def at(name: str) -> None:
        b.position_at_end(blk[name])

    def word(base: ir.Value, k: Any) -> ir.Value:
        return b.gep(base, [k if isinstance(k, ir.Value) else c64(k)])

    def fail(errno: int) -> ir.Block:
        blk_ = fn.append_basic_block(f"e{errno}")
        with b.goto_block(blk_):
            b.ret(c64(-errno))
        return blk_

    def is_null(p: ir.Value) -> ir.Value:
        return b.icmp_unsigned("==", b.ptrtoint(p, I64), c64(0))

    row = b.call(parts.desc, [rt, r1])
    pos, dst = b.alloca(I64), b.alloca(I64)
    b.cbranch(b.icmp_signed("<", row, c64(0)), blk["nope"], blk["found"])

    at("found")  # writable from the program; key and value readable (else the VM raises)
    d = word(b.inttoptr(b.load(word(rt, cg.RT_MAPS)), P64), b.mul(row, c64(ml.DESC_WORDS)))
    map_flags = b.load(word(d, ml.W_FLAGS))
    lru = b.icmp_unsigned("!=", b.and_(map_flags, c64(ml.F_LRU)), c64(0))
    vsz = b.load(word(d, ml.W_VALUE_SIZE))
    key = b.call(parts.host, [rt, r2, b.load(word(d, ml.W_KEY_SIZE))])
    value = b.call(parts.host, [rt, r3, vsz])
    ok = b.icmp_unsigned("!=", b.and_(map_flags, c64(ml.F_WRITABLE)), c64(0))
    ok = b.and_(ok, b.not_(b.or_(is_null(key), is_null(value))))
    b.cbranch(ok, blk["kinds"], blk["nope"])
    at("kinds")
    sw = b.switch(b.load(word(d, ml.W_KIND)), blk["nope"])
    sw.add_case(c64(ml.K_ARRAY), blk["array"])
    sw.add_case(c64(ml.K_HASH), blk["hash"])

    at("array")  # ArrayMap._check_array_flags, in its order
    bad = b.icmp_unsigned(">", b.and_(flags, c64(~BPF_F_LOCK)), c64(BPF_EXIST))
    b.cbranch(bad, fail(EINVAL), blk["arr_idx"])
    at("arr_idx")
    index = b.zext(b.load(b.bitcast(key, I32.as_pointer()), align=1), I64)
    b.cbranch(b.icmp_unsigned(">=", index, b.load(word(d, ml.W_LIMIT))), fail(E2BIG),
              blk["arr_noexist"])
    at("arr_noexist")
    b.cbranch(b.icmp_unsigned("!=", b.and_(flags, c64(BPF_NOEXIST)), c64(0)), fail(EEXIST),
              blk["arr_lock"])
    at("arr_lock")
    b.cbranch(b.icmp_unsigned("!=", b.and_(flags, c64(BPF_F_LOCK)), c64(0)), fail(EINVAL),
              blk["arr_find"])
    at("arr_find")  # the element's address, if the VM has handed it out
    found = b.call(parts.find, [d, key])
    b.store(found, pos)
    b.cbranch(b.icmp_unsigned("!=", b.and_(found, c64(ml.MISSING)), c64(0)), blk["nope"],
              blk["copy"])

    at("hash")  # HashMap._update, in its order
    b.cbranch(b.icmp_unsigned(">", flags, c64(BPF_EXIST)), fail(EINVAL), blk["hash_find"])
    at("hash_find")
    found = b.call(parts.find, [d, key])
    b.store(found, pos)
    b.cbranch(b.icmp_unsigned("!=", b.and_(found, c64(ml.MISSING)), c64(0)), blk["missing"],
              blk["exists"])
    at("exists")
    b.cbranch(b.icmp_unsigned("==", flags, c64(BPF_NOEXIST)), fail(EEXIST), blk["copy"])
    at("missing")  # a new key: inserted natively while the map has room, else the VM
    b.cbranch(b.icmp_unsigned("==", flags, c64(BPF_EXIST)), fail(ENOENT), blk["room"])
    at("room")  # a full map: a hash refuses (-E2BIG), an LRU map evicts (the VM's handler)
    count = b.load(word(d, ml.W_COUNT))
    full = b.icmp_unsigned(">=", count, b.load(word(d, ml.W_LIMIT)))
    b.cbranch(full, blk["full"], blk["insert"])
    at("full")
    b.cbranch(lru, blk["nope"], fail(E2BIG))
    at("insert")  # room in the table, the log and the value buffer, else the VM's handler
    fits = b.icmp_unsigned("<=", b.mul(b.add(count, c64(1)), c64(2)),
                           b.add(b.load(word(d, ml.W_MASK)), c64(1)))
    log_n = b.load(word(rt, ml.RT_X + ml.X_LOG_LEN))
    fits = b.and_(fits, b.icmp_unsigned("<", log_n, b.load(word(rt, ml.RT_X + ml.X_LOG_CAP))))
    vpos = b.load(word(rt, ml.RT_X + ml.X_VBUF_LEN))
    fits = b.and_(fits, b.icmp_unsigned("<=", b.add(vpos, vsz),
                                        b.load(word(rt, ml.RT_X + ml.X_VBUF_CAP))))
    b.cbranch(fits, blk["put"], blk["nope"])
    at("put")  # the key into its slot (no address yet: the VM's first lookup gives it),
    # the value after the others, an insert entry onto the log (applied in order)
    table = b.inttoptr(b.load(word(d, ml.W_TABLE)), P64)
    at_pos = b.and_(b.load(pos), c64(~ml.MISSING))
    slot = word(table, b.mul(at_pos, b.load(word(d, ml.W_STRIDE))))
    b.store(c64(1), slot)
    b.store(c64(0), word(slot, 1))
    b.call(parts.memmove, [b.bitcast(word(slot, 2), I8.as_pointer()), key,
                           b.load(word(d, ml.W_KEY_SIZE)), ir.Constant(ir.IntType(1), 0)])
    b.store(b.add(count, c64(1)), word(d, ml.W_COUNT))
    vbuf = b.inttoptr(b.add(b.load(word(rt, ml.RT_X + ml.X_VBUF)), vpos), I8.as_pointer())
    b.call(parts.memmove, [vbuf, value, vsz, ir.Constant(ir.IntType(1), 0)])
    b.store(b.add(vpos, vsz), word(rt, ml.RT_X + ml.X_VBUF_LEN))
    log = b.inttoptr(b.load(word(rt, ml.RT_X + ml.X_LOG)), P64)
    b.store(b.or_(c64(ml.INSERTED), b.or_(b.shl(row, c64(32)), at_pos)), word(log, log_n))
    b.store(b.add(log_n, c64(1)), word(rt, ml.RT_X + ml.X_LOG_LEN))
    b.ret(c64(0))

    at("copy")  # the value's host address: its region (known once the VM handed it out)
    table = b.inttoptr(b.load(word(d, ml.W_TABLE)), P64)
    slot = word(table, b.mul(b.load(pos), b.load(word(d, ml.W_STRIDE))))
    addr = b.load(word(slot, 1))
    host = b.call(parts.host, [rt, addr, vsz])
    b.store(b.ptrtoint(host, I64), dst)
    known = b.and_(b.icmp_unsigned("!=", addr, c64(0)), b.not_(is_null(host)))
    b.cbranch(known, blk["lru"], blk["nope"])
    at("lru")  # an LRU map: the update is a use, logged before anything is written
    with b.if_then(lru):
        logged = b.call(parts.touch, [rt, b.or_(b.shl(row, c64(32)), b.load(pos))])
        with b.if_then(b.icmp_unsigned("==", logged, c64(0))):
            b.ret(c64(NOPE))
    b.branch(blk["write"])
    at("write")
    b.call(parts.memmove, [b.inttoptr(b.load(dst), I8.as_pointer()), value, vsz,
                           ir.Constant(ir.IntType(1), 0)])
    b.ret(c64(0))

    at("nope")
    b.ret(c64(NOPE))
    return str(module)


# --------------------------------------------------------------------------------------------
# call sites
# --------------------------------------------------------------------------------------------

@cg.native_helper("map_update_elem")
def _emit_update(f: Any, slot: int) -> None:
    """r0 = the native update's result, else the VM's handler runs the call."""
    f.call_native(slot, f.rt_load(ml.RT_X + ml.X_UPDATE), [f.reg(r) for r in range(1, 5)],
                  NOPE)


def _emit_clock(f: Any, slot: int, offset_word: int) -> None:
    """r0 = the clock block's reading (plus the offset in ``offset_word``; 0: none), the
    read counted; the VM's handler when the block is off (address 0)."""
    b = f.b
    at = f.rt_load(ml.RT_X + ml.X_CLOCK)
    native, vm = f.block(f"s{slot}_native"), f.block(f"s{slot}_vm")
    b.cbranch(b.icmp_unsigned("==", at, c64(0)), vm, native)
    b.position_at_end(native)
    blk = b.inttoptr(at, P64)
    reads_at = b.gep(blk, [c64(C_READS)])
    reads = b.load(reads_at)
    now = b.add(b.load(b.gep(blk, [c64(C_START)])), b.mul(reads, b.load(
        b.gep(blk, [c64(C_STEP)]))))
    if offset_word:
        now = b.add(now, b.load(b.gep(blk, [c64(offset_word)])))
    b.store(b.add(reads, c64(1)), reads_at)
    f.set_reg(0, now)
    b.branch(f.slot_block(slot + 1))
    b.position_at_end(vm)
    f.interp(slot, slot + 1)


def _register_clock(name: str, offset_word: int) -> None:
    cg.native_helper(name)(lambda f, slot: _emit_clock(f, slot, offset_word))


for _name, _word in CLOCK_HELPERS.items():
    _register_clock(_name, _word)


# --------------------------------------------------------------------------------------------
# the clock block (Python side)
# --------------------------------------------------------------------------------------------

class NativeClock:
    """``HelperState``'s clock as native words while a batch runs (``start`` .. ``stop``),
    when a program of the VM calls one of ``CLOCK_HELPERS``; ``to_vm`` / ``from_vm`` hand
    the read count over around each call back into the VM (``on``: only then)."""

    def __init__(self, vm: Any) -> None:
        self.vm = vm
        self.block = (ctypes.c_uint64 * 5)()
        self.on = False
        self._ids = frozenset(HELPER_IDS[n] for n in CLOCK_HELPERS)

    def start(self) -> None:
        vm = self.vm
        if not any(self._ids & set(prog.helper_ids()) for prog, _ in vm._compiled.values()):
            return  # nothing to read natively: no hand-overs either
        env, blk = vm.env, self.block
        blk[C_READS] = vm.helper_state.reads & M64
        blk[C_START], blk[C_STEP] = env.clock_start_ns & M64, env.clock_step_ns & M64
        blk[C_BOOT], blk[C_TAI] = env.boot_offset_ns & M64, env.tai_offset_ns & M64
        vm._rt[ml.RT_X + ml.X_CLOCK] = ctypes.addressof(blk)
        self.on = True

    def to_vm(self) -> None:
        self.vm.helper_state.reads = self.block[C_READS]

    def from_vm(self) -> None:
        self.block[C_READS] = self.vm.helper_state.reads & M64

    def stop(self) -> None:
        if self.on:
            self.to_vm()
            self.on = False
            self.vm._rt[ml.RT_X + ml.X_CLOCK] = 0
