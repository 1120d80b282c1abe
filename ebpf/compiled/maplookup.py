"""Native ``bpf_map_lookup_elem`` for the batch driver: array, per-CPU array, hash,
per-CPU hash, LRU (per-CPU) hash and LPM trie maps, answered from tables that mirror the
Python maps.

A lookup is a function of the map's contents and the key (an LRU lookup also moves the
entry: see below), and the value pointer it returns is the VM's own
(``Memory.map_value``: one region per value object, its address fixed when first handed
out). So the native code may answer a lookup itself whenever it knows (a) what the Python
map would find and (b) the address the VM gave that value:

- **array / per-CPU array**: an index at or beyond ``max_entries`` finds nothing (0); below,
  the value exists and never moves (values are updated in place), so its address, once the
  VM has handed it out, is remembered in a small native hash table keyed by the index.
- **hash / per-CPU hash / LPM trie**: the table holds every entry (key or (prefix length,
  data), LPM entries in order of decreasing prefix length), built by ``NativeMaps`` at the
  start of the batch (user space does not run during one). A program's
  map_update_elem / map_delete_elem runs on the VM's handler, and after each one that
  succeeded ``CompiledVm._interp`` calls ``NativeMaps.written``, which brings that map's
  table up to date before the next instruction: a hash key inserted into its free slot
  (its value's address unknown until the VM's first lookup of it), a deleted hash key
  taken out of its slot (the entries after it moved back, as linear probing requires), a
  full table or any LPM change by rebuilding the map's table from its contents. An existing
  key's update changes its value in place (``HashMap._update``): nothing to do. A miss is
  answered natively (0).

**LRU maps.** A hit makes the entry the most recently used. The native code appends
(descriptor row << 32 | table slot) to a log (``RT_X + X_LOG``; a repeat of the last
entry is not appended; ``ebpf.compiled.mapwrite`` adds its insertions, marked
``INSERTED``) and ``NativeMaps.apply_log`` applies it in order to the Python maps
(``HashMap.touch`` of each entry's last use, the insertions) before every call back into
the VM (``before_call``: the handler may insert, evict, delete or look up) and at the end
of the batch (``finish``). Table entries stay put in between (tables change only in
those calls, at ``refresh`` and by native insertions into empty slots). A full log
answers ``NOPE``: the VM's handler, after the log.
An insertion into a full LRU map evicts the least recent key, noted by ``before_call``;
``written`` takes it out of the table with the insertion.

Where the value's address is not known yet (its region not created: the VM creates it on
its first lookup) the function returns ``NOPE`` after noting in ``rt[RT_FILL]`` where the
address belongs; the caller then runs the helper on the VM's handler, as for every other
helper, and ``CompiledVm._interp`` stores the r0 it returned there. Any other doubt (a map
not in the tables, a key not readable natively) is ``NOPE`` without a note. Lookups
answered natively are not in a trace: batches keep none (``CompiledVm.run_xdp_columns``).

``map_lookup(i64 *rt, i64 map_pointer, i64 key_address) -> i64`` is one LLVM function for
every program; ``rt[RT_MAPS]`` points at ``rt[RT_NMAPS]`` descriptors of ``DESC_WORDS`` words.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir

from ebpf.compiled import codegen as cg
from ebpf.compiled.codegen import I8, I32, I64, P64, c64
from ebpf.errors import VmError
from ebpf.maps.base import BPF_ANY
from ebpf.vm.memory import FIRST_BASE

NOPE = cg.LOOKUP_NOPE
"""Not answered natively (never a lookup's result: 0 or a region address)."""
K_ARRAY, K_HASH, K_LPM = 1, 2, 3
# descriptor words
W_MAP, W_KIND, W_KEY_SIZE, W_TABLE, W_MASK, W_STRIDE, W_LIMIT, W_COUNT = range(8)
W_FLAGS, W_VALUE_SIZE = 8, 9
DESC_WORDS = 10
F_LRU, F_WRITABLE = 1, 2
"""W_FLAGS: an LRU map (a use is state: logged); the program may update it natively."""
MISSING = 1 << 63
"""``find``'s mark on the slot where a key that is not in the table belongs."""
# the family's rt words (codegen.RT_MAPS_X): the native map_update function, the log of
# LRU uses and insertions (address, entries used, capacity), the clock block's address
# (0: off), the buffer of inserted values (address, bytes used, capacity)
RT_X = cg.RT_MAPS_X
X_UPDATE, X_LOG, X_LOG_LEN, X_LOG_CAP, X_CLOCK, X_VBUF, X_VBUF_LEN, X_VBUF_CAP = range(8)
INSERTED = 1 << 63
"""A log entry's mark: the program inserted this key (its value next in the value buffer)."""
LOG_CAP = 4096
VBUF_BYTES = 1 << 16
"""The value buffer of natively inserted keys (bytes); when full the VM's handler inserts."""
"""Entries of the LRU recency log; when it is full the VM's handler answers the next LRU
lookup, after the log is applied (``NativeMaps.before_call``)."""
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
"""FNV-1a, 64 bits (Fowler, Noll, Vo; the parameters of draft-eastlake-fnv): the tables'
hash of a key's bytes, computed the same way here and in the native code."""
ARRAY_SLOTS = 1024
"""Native table slots of an array map (at most half used: indices beyond stay on the VM's
path): bounded by what a batch touches, not by max_entries (modelling choice)."""

ARRAY_KINDS = {"array": K_ARRAY, "percpu_array": K_ARRAY}
SNAPSHOT_KINDS = {"hash": K_HASH, "percpu_hash": K_HASH, "lru_hash": K_HASH,
                  "lru_percpu_hash": K_HASH, "lpm_trie": K_LPM}
WRITABLE_KINDS = frozenset({"array", "percpu_array", "hash", "percpu_hash", "lru_hash",
                            "lru_percpu_hash"})
"""Maps whose program updates ``ebpf.compiled.mapwrite`` may answer natively."""
MUTATING_HELPERS = frozenset({"map_update_elem", "map_delete_elem"})


def fnv1a(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


# --------------------------------------------------------------------------------------------
# the LLVM function
# --------------------------------------------------------------------------------------------

def _fnv_fn(module: ir.Module) -> ir.Function:
    """i64 fnv(i8 *p, i64 n)."""
    f = ir.Function(module, ir.FunctionType(I64, [I8.as_pointer(), I64]), "fnv")
    f.linkage = "internal"
    p, n = f.args
    entry, head, body, done = (f.append_basic_block(x) for x in ("e", "h", "b", "d"))
    b = ir.IRBuilder(entry)
    i, h = b.alloca(I64), b.alloca(I64)
    b.store(c64(0), i)
    b.store(c64(FNV_OFFSET), h)
    b.branch(head)
    b.position_at_end(head)
    b.cbranch(b.icmp_unsigned("<", b.load(i), n), body, done)
    b.position_at_end(body)
    k = b.load(i)
    byte = b.zext(b.load(b.gep(p, [k])), I64)
    b.store(b.mul(b.xor(b.load(h), byte), c64(FNV_PRIME)), h)
    b.store(b.add(k, c64(1)), i)
    b.branch(head)
    b.position_at_end(done)
    b.ret(b.load(h))
    return f


def _eq_fn(module: ir.Module) -> ir.Function:
    """i64 prefix_eq(i8 *a, i8 *b, i64 bits): the first ``bits`` bits (most significant
    first in each byte) equal; with bits = 8 x size, plain equality."""
    f = ir.Function(module, ir.FunctionType(I64, [I8.as_pointer(), I8.as_pointer(), I64]),
                    "prefix_eq")
    f.linkage = "internal"
    pa, pb, bits = f.args
    entry, head, body, tail, part, yes, no = (
        f.append_basic_block(x) for x in ("e", "h", "b", "t", "p", "y", "n"))
    b = ir.IRBuilder(entry)
    full = b.lshr(bits, c64(3))
    i = b.alloca(I64)
    b.store(c64(0), i)
    b.branch(head)
    b.position_at_end(head)
    k = b.load(i)
    b.cbranch(b.icmp_unsigned("<", k, full), body, tail)
    b.position_at_end(body)
    same = b.icmp_unsigned("==", b.load(b.gep(pa, [k])), b.load(b.gep(pb, [k])))
    b.store(b.add(k, c64(1)), i)
    b.cbranch(same, head, no)
    b.position_at_end(tail)
    rem = b.and_(bits, c64(7))
    b.cbranch(b.icmp_unsigned("==", rem, c64(0)), yes, part)
    b.position_at_end(part)
    mask = b.trunc(b.and_(b.shl(c64(0xFF), b.sub(c64(8), rem)), c64(0xFF)), I8)
    diff = b.and_(b.xor(b.load(b.gep(pa, [full])), b.load(b.gep(pb, [full]))), mask)
    b.cbranch(b.icmp_unsigned("==", diff, ir.Constant(I8, 0)), yes, no)
    b.position_at_end(yes)
    b.ret(c64(1))
    b.position_at_end(no)
    b.ret(c64(0))
    return f


def _desc_fn(module: ir.Module) -> ir.Function:
    """i64 desc_row(i64 *rt, i64 map_pointer): the map's descriptor row, else -1."""
    f = ir.Function(module, ir.FunctionType(I64, [P64, I64]), "desc_row")
    f.linkage = "internal"
    rt, r1 = f.args
    entry, head, body, nxt, found, none = (f.append_basic_block(x) for x in (
        "e", "h", "b", "n", "f", "x"))
    b = ir.IRBuilder(entry)
    maps = b.inttoptr(b.load(b.gep(rt, [c64(cg.RT_MAPS)])), P64)
    n_maps = b.load(b.gep(rt, [c64(cg.RT_NMAPS)]))
    i = b.alloca(I64)
    b.store(c64(0), i)
    b.branch(head)
    b.position_at_end(head)
    b.cbranch(b.icmp_unsigned("<", b.load(i), n_maps), body, none)
    b.position_at_end(body)
    d = b.gep(maps, [b.mul(b.load(i), c64(DESC_WORDS))])
    b.cbranch(b.icmp_unsigned("==", b.load(d), r1), found, nxt)
    b.position_at_end(nxt)
    b.store(b.add(b.load(i), c64(1)), i)
    b.branch(head)
    b.position_at_end(found)
    b.ret(b.load(i))
    b.position_at_end(none)
    b.ret(c64(-1))
    return f


def _host_fn(module: ir.Module) -> ir.Function:
    """i8 *host_of(i64 *rt, i64 address, i64 size): where ``size`` bytes at the VM's
    ``address`` are, when the region table lets native code read them (as the VM's
    mem.read would), else null."""
    f = ir.Function(module, ir.FunctionType(I8.as_pointer(), [P64, I64, I64]), "host_of")
    f.linkage = "internal"
    rt, addr, size = f.args
    entry, known, ok_blk, no = (f.append_basic_block(x) for x in ("e", "k", "o", "n"))
    b = ir.IRBuilder(entry)
    idx = b.lshr(b.sub(addr, c64(FIRST_BASE)), c64(32))
    b.cbranch(b.icmp_unsigned("<", idx, b.load(b.gep(rt, [c64(cg.RT_NREG)]))), known, no)
    b.position_at_end(known)
    table = b.inttoptr(b.load(b.gep(rt, [c64(cg.RT_TABLE)])), P64)
    entry_at = b.gep(table, [b.mul(idx, c64(cg.ENTRY_WORDS))])
    off = b.and_(addr, c64(0xFFFFFFFF))
    ok = b.and_(b.icmp_unsigned(">=", off, b.load(b.gep(entry_at, [c64(1)]))),
                b.icmp_unsigned("<=", b.add(off, size), b.load(b.gep(entry_at, [c64(2)]))))
    flags = b.load(b.gep(entry_at, [c64(3)]))
    ok = b.and_(ok, b.icmp_unsigned("!=", b.and_(flags, c64(cg.F_LOAD)), c64(0)))
    b.cbranch(ok, ok_blk, no)
    b.position_at_end(ok_blk)
    b.ret(b.inttoptr(b.add(b.load(entry_at), off), I8.as_pointer()))
    b.position_at_end(no)
    b.ret(ir.Constant(I8.as_pointer(), None))
    return f


def _find_fn(module: ir.Module, fnv: ir.Function, eq: ir.Function) -> ir.Function:
    """i64 find(i64 *desc, i8 *key): the hash table slot holding ``key``, else the empty
    slot where it belongs with ``MISSING`` set (open addressing, linear probing)."""
    f = ir.Function(module, ir.FunctionType(I64, [P64, I8.as_pointer()]), "find")
    f.linkage = "internal"
    d, key = f.args
    entry, body, cmp_, nxt, hit, empty = (f.append_basic_block(x) for x in (
        "e", "b", "c", "n", "h", "x"))
    b = ir.IRBuilder(entry)
    i8p = I8.as_pointer()
    ksz = b.load(b.gep(d, [c64(W_KEY_SIZE)]))
    table = b.inttoptr(b.load(b.gep(d, [c64(W_TABLE)])), P64)
    mask, stride = b.load(b.gep(d, [c64(W_MASK)])), b.load(b.gep(d, [c64(W_STRIDE)]))
    pos = b.alloca(I64)
    b.store(b.and_(b.call(fnv, [key, ksz]), mask), pos)
    b.branch(body)
    b.position_at_end(body)
    slot = b.gep(table, [b.mul(b.load(pos), stride)])
    b.cbranch(b.icmp_unsigned("==", b.load(slot), c64(0)), empty, cmp_)
    b.position_at_end(cmp_)
    same = b.call(eq, [b.bitcast(b.gep(slot, [c64(2)]), i8p), key, b.mul(ksz, c64(8))])
    b.cbranch(b.icmp_unsigned("!=", same, c64(0)), hit, nxt)
    b.position_at_end(nxt)
    b.store(b.and_(b.add(b.load(pos), c64(1)), mask), pos)
    b.branch(body)
    b.position_at_end(hit)
    b.ret(b.load(pos))
    b.position_at_end(empty)
    b.ret(b.or_(b.load(pos), c64(MISSING)))
    return f


def _touch_fn(module: ir.Module) -> ir.Function:
    """i64 touch(i64 *rt, i64 entry): an LRU entry used (``entry`` = descriptor row << 32 |
    table slot) onto the recency log; 0 when the log is full (the VM must answer)."""
    f = ir.Function(module, ir.FunctionType(I64, [P64, I64]), "touch")
    f.linkage = "internal"
    rt, ent = f.args
    entry, room, put, same, full = (f.append_basic_block(x) for x in ("e", "r", "p", "s",
                                                                       "f"))
    b = ir.IRBuilder(entry)
    log = b.inttoptr(b.load(b.gep(rt, [c64(RT_X + X_LOG)])), P64)
    n_at = b.gep(rt, [c64(RT_X + X_LOG_LEN)])
    n = b.load(n_at)
    b.cbranch(b.icmp_unsigned("<", n, b.load(b.gep(rt, [c64(RT_X + X_LOG_CAP)]))), room,
              full)
    b.position_at_end(room)  # the same entry twice in a row: once is enough
    last = b.load(b.gep(log, [b.sub(b.select(b.icmp_unsigned("==", n, c64(0)), c64(1), n),
                                    c64(1))]))
    dup = b.and_(b.icmp_unsigned("!=", n, c64(0)), b.icmp_unsigned("==", last, ent))
    b.cbranch(dup, same, put)
    b.position_at_end(put)
    b.store(ent, b.gep(log, [n]))
    b.store(b.add(n, c64(1)), n_at)
    b.ret(c64(1))
    b.position_at_end(same)
    b.ret(c64(1))
    b.position_at_end(full)
    b.ret(c64(0))
    return f


class _Parts:
    """The internal functions both native map helpers share, in one module."""

    def __init__(self, module: ir.Module) -> None:
        self.fnv, self.eq = _fnv_fn(module), _eq_fn(module)
        self.desc, self.host = _desc_fn(module), _host_fn(module)
        self.find, self.touch = _find_fn(module, self.fnv, self.eq), _touch_fn(module)
        self.memmove = ir.Function(module, ir.FunctionType(ir.VoidType(), [
            I8.as_pointer(), I8.as_pointer(), I64, ir.IntType(1)]),
            "llvm.memmove.p0i8.p0i8.i64")


def lookup_ir() -> str:
    """The LLVM IR of ``map_lookup`` (see the module docstring)."""
    module = ir.Module(name="bpf_maps")
    parts = _Parts(module)
    fn = ir.Function(module, ir.FunctionType(I64, [P64, I64, I64]), "map_lookup")
    rt, r1, r2 = fn.args
    i8p = I8.as_pointer()
    blk = {n: fn.append_basic_block(n) for n in (
        "entry", "found", "kinds", "array", "probe", "probe_insert", "array_new", "array_put",
        "hash_hit", "lru", "lru_known",
        "lpm", "lpm_head", "lpm_body", "lpm_try", "lpm_next", "fill", "nope", "miss")}
    b = ir.IRBuilder(blk["entry"])

    def at(name: str) -> None:
        b.position_at_end(blk[name])

    def word(base: ir.Value, k: Any) -> ir.Value:
        return b.gep(base, [k if isinstance(k, ir.Value) else c64(k)])

    row = b.call(parts.desc, [rt, r1])
    pos = b.alloca(I64)
    ptr_slot = b.alloca(P64)
    b.cbranch(b.icmp_signed("<", row, c64(0)), blk["nope"], blk["found"])

    at("found")  # the key: readable through the region table, as the VM's mem.read
    d = word(b.inttoptr(b.load(word(rt, cg.RT_MAPS)), P64), b.mul(row, c64(DESC_WORDS)))
    ksz = b.load(word(d, W_KEY_SIZE))
    key = b.call(parts.host, [rt, r2, ksz])
    b.cbranch(b.icmp_unsigned("==", b.ptrtoint(key, I64), c64(0)), blk["nope"],
              blk["kinds"])
    at("kinds")
    kind = b.load(word(d, W_KIND))
    sw = b.switch(kind, blk["nope"])
    sw.add_case(c64(K_ARRAY), blk["array"])
    sw.add_case(c64(K_HASH), blk["probe"])
    sw.add_case(c64(K_LPM), blk["lpm"])

    at("array")  # beyond max_entries: nothing (ArrayMap.lookup)
    index = b.zext(b.load(b.bitcast(key, I32.as_pointer()), align=1), I64)
    b.cbranch(b.icmp_unsigned("<", index, b.load(word(d, W_LIMIT))), blk["probe"],
              blk["miss"])

    at("probe")  # [used, value address, key bytes...]
    table = b.inttoptr(b.load(word(d, W_TABLE)), P64)
    found = b.call(parts.find, [d, key])
    b.store(b.and_(found, c64(~MISSING)), pos)
    slot = word(table, b.mul(b.load(pos), b.load(word(d, W_STRIDE))))
    b.store(word(slot, 1), ptr_slot)
    missing = b.icmp_unsigned("!=", b.and_(found, c64(MISSING)), c64(0))
    is_array = b.icmp_unsigned("==", kind, c64(K_ARRAY))
    b.cbranch(missing, blk["probe_insert"], blk["hash_hit"])
    at("probe_insert")  # hash: a miss; array: a new index, its slot waits for the VM's answer
    count = b.load(word(d, W_COUNT))
    room = b.icmp_unsigned("<", b.mul(count, c64(2)), b.add(b.load(word(d, W_MASK)), c64(1)))
    b.cbranch(is_array, blk["array_new"], blk["miss"])
    at("array_new")
    b.cbranch(room, blk["array_put"], blk["nope"])
    at("array_put")
    b.store(c64(1), slot)
    b.store(c64(0), word(slot, 1))
    b.call(parts.memmove, [b.bitcast(word(slot, 2), i8p), key, ksz,
                           ir.Constant(ir.IntType(1), 0)])
    b.store(b.add(count, c64(1)), word(d, W_COUNT))
    b.branch(blk["fill"])
    at("hash_hit")  # an LRU map: the use goes onto the recency log
    lru = b.icmp_unsigned("!=", b.and_(b.load(word(d, W_FLAGS)), c64(F_LRU)), c64(0))
    b.cbranch(lru, blk["lru"], blk["fill"])
    at("lru")
    addr = b.load(b.load(ptr_slot))
    b.cbranch(b.icmp_unsigned("==", addr, c64(0)), blk["fill"], blk["lru_known"])
    at("lru_known")
    logged = b.call(parts.touch, [rt, b.or_(b.shl(row, c64(32)), b.load(pos))])
    b.ret(b.select(b.icmp_unsigned("!=", logged, c64(0)), addr, c64(NOPE)))

    at("lpm")  # entries by decreasing prefix length: [prefixlen, value address, data...]
    plen = b.zext(b.load(b.bitcast(key, I32.as_pointer()), align=1), I64)
    b.store(c64(0), pos)
    b.cbranch(b.icmp_unsigned(">", plen, b.load(word(d, W_LIMIT))), blk["miss"],
              blk["lpm_head"])
    at("lpm_head")
    b.cbranch(b.icmp_unsigned("<", b.load(pos), b.load(word(d, W_COUNT))), blk["lpm_body"],
              blk["miss"])
    at("lpm_body")
    ent = word(b.inttoptr(b.load(word(d, W_TABLE)), P64),
               b.mul(b.load(pos), b.load(word(d, W_STRIDE))))
    eplen = b.load(ent)
    b.cbranch(b.icmp_unsigned("<=", eplen, plen), blk["lpm_try"], blk["lpm_next"])
    at("lpm_try")
    same = b.call(parts.eq, [b.bitcast(word(ent, 2), i8p), b.gep(key, [c64(4)]), eplen])
    b.store(word(ent, 1), ptr_slot)
    b.cbranch(b.icmp_unsigned("!=", same, c64(0)), blk["fill"], blk["lpm_next"])
    at("lpm_next")
    b.store(b.add(b.load(pos), c64(1)), pos)
    b.branch(blk["lpm_head"])

    at("fill")  # the value's address if the VM has handed it out, else ask for it
    addr = b.load(b.load(ptr_slot))
    known = b.icmp_unsigned("!=", addr, c64(0))
    with b.if_then(b.not_(known)):
        b.store(b.ptrtoint(b.load(ptr_slot), I64), word(rt, cg.RT_FILL))
    b.ret(b.select(known, addr, c64(NOPE)))
    at("nope")
    b.ret(c64(NOPE))
    at("miss")
    b.ret(c64(0))
    return str(module)


# --------------------------------------------------------------------------------------------
# the tables (Python side)
# --------------------------------------------------------------------------------------------

class NativeMaps:
    """The descriptors and tables of one VM's maps, for ``rt[RT_MAPS]``.

    ``arrays`` persist for the VM's life (their addresses never change); ``refresh()``
    rebuilds the hash and LPM tables (before each batch run); ``written()`` keeps one up to
    date after a program's update or delete.
    """

    def __init__(self, vm: Any) -> None:
        self.vm = vm
        self.desc = np.zeros(0, dtype=np.uint64)
        self._tables: dict[int, tuple[int, Any, int]] = {}  # hash/LPM: pointer -> row, map, kind
        self._held: dict[int, np.ndarray] = {}  # pointer -> its hash/LPM table (kept alive)
        self._arrays: dict[int, np.ndarray] = {}  # map pointer -> its table (kept)
        self._cpu = vm.env.cpu  # per-CPU arrays: the addresses are this CPU's values
        self._log = np.zeros(LOG_CAP, np.uint64)  # [INSERTED |] row << 32 | table slot
        self._vbuf = np.zeros(VBUF_BYTES, np.uint8)  # the values inserted, in log order
        self._victim: bytes | None = None  # what an insertion into a full LRU map evicts
        self._versions: dict[int, int] = {}  # hash map pointer -> the version its table holds
        self._rt = rt = vm._rt
        rt[RT_X + X_LOG], rt[RT_X + X_LOG_LEN] = self._log.ctypes.data, 0
        rt[RT_X + X_LOG_CAP] = LOG_CAP
        rt[RT_X + X_VBUF], rt[RT_X + X_VBUF_LEN] = self._vbuf.ctypes.data, 0
        rt[RT_X + X_VBUF_CAP] = VBUF_BYTES

    def _maps(self) -> list[tuple[int, Any, int]]:
        """(pointer, map, kind) of the maps the VM has handed out a pointer to (the others
        are not registered here: registering would move later maps' pointers)."""
        out = []
        for ptr, m in self.vm.registered_maps():
            kind = ARRAY_KINDS.get(m.type_name) or SNAPSHOT_KINDS.get(m.type_name)
            if kind is not None:
                out.append((ptr, m, kind))
        return out

    def refresh(self) -> None:
        """Descriptors for every supported map; hash/LPM tables from their contents now
        (a hash table whose map has kept its keys since, on the same CPU, as it is)."""
        rows: list[np.ndarray] = []
        old_rows = {ptr: self.desc[row * DESC_WORDS:(row + 1) * DESC_WORDS].copy()
                    for ptr, (row, _, _) in self._tables.items()}
        kept, self._tables, self._held = self._held, {}, {}
        if self.vm.env.cpu != self._cpu:
            self._arrays.clear()
            self._versions.clear()  # per-CPU tables hold that CPU's addresses
            self._cpu = self.vm.env.cpu
        d = self.desc
        counts = {int(d[k + W_MAP]): int(d[k + W_COUNT]) for k in range(0, len(d), DESC_WORDS)}
        for ptr, m, kind in self._maps():
            kw = -(-m.key_size // 8)
            if kind == K_ARRAY:
                table = self._arrays.get(ptr)
                fresh = table is None
                if fresh:
                    table = self._arrays[ptr] = np.zeros(ARRAY_SLOTS * (2 + kw), np.uint64)
                rows.append(self._desc(ptr, kind, m, table, ARRAY_SLOTS - 1, 2 + kw,
                                       m.max_entries, 0 if fresh else counts.get(ptr, 0)))
            else:
                self._tables[ptr] = (len(rows), m, kind)
                if ptr in old_rows and self._versions.get(ptr, -1) == getattr(m, "version", -2):
                    self._held[ptr] = kept[ptr]
                    rows.append(old_rows[ptr])
                else:
                    rows.append(self._snapshot(ptr, m, kind))
        self.desc = np.concatenate(rows) if rows else np.zeros(DESC_WORDS, np.uint64)
        rt = self.vm._rt
        rt[cg.RT_MAPS] = self.desc.ctypes.data
        rt[cg.RT_NMAPS] = len(rows)

    def _snapshot(self, ptr: int, m: Any, kind: int) -> np.ndarray:
        """A hash or LPM map's descriptor, its table built from the map's contents now."""
        if kind == K_HASH:
            kw = -(-m.key_size // 8)
            self._versions.pop(ptr, None)
            table, mask, n = self._hash_table(m, kw)
            self._versions[ptr] = m.version
            row = self._desc(ptr, kind, m, table, mask, 2 + kw, m.max_entries, n)
        else:
            table, n = self._lpm_table(m)
            row = self._desc(ptr, kind, m, table, 0, 2 + -(-(m.key_size - 4) // 8),
                             8 * (m.key_size - 4), n)
        self._held[ptr] = table
        return row

    def written(self, ptr: int, key_address: int) -> None:
        """A program's update or delete of map ``ptr`` at this key succeeded (on the VM's
        handler): its table as the map is now, before the next native lookup."""
        held = self._tables.get(ptr)
        if held is None or self.vm._rt[cg.RT_NMAPS] == 0:
            return  # an array (updated in place), or not in a batch
        row, m, kind = held
        at = row * DESC_WORDS
        if kind == K_HASH and self._follow(ptr, m, at, key_address):
            self._versions[ptr] = m.version  # the table holds the map's keys again
            return
        self.desc[at:at + DESC_WORDS] = self._snapshot(ptr, m, kind)  # full, LPM

    def _follow(self, ptr: int, m: Any, at: int, key_address: int) -> bool:
        """The hash table of ``m`` after one key changed (False: rebuild it)."""
        d = self.desc
        key = bytes(self.vm.mem.read(key_address, m.key_size))
        value = m.peek(key, self.vm.env.cpu if m.percpu else 0)
        table, stride = self._held[ptr], int(d[at + W_STRIDE])
        mask, count = int(d[at + W_MASK]), int(d[at + W_COUNT])
        pos = self._probe(table, stride, mask, key)
        present = bool(table[pos * stride])
        if value is None and present:  # deleted
            self._remove(table, stride, mask, pos, m.key_size)
            d[at + W_COUNT] = count - 1
            return True
        if value is not None and present:  # updated in place
            return True
        victim, self._victim = self._victim, None
        if value is not None and victim is not None and m.peek(victim) is None:
            gone = self._probe(table, stride, mask, victim)  # an LRU map evicted it
            if table[gone * stride]:
                self._remove(table, stride, mask, gone, m.key_size)
                count -= 1
                d[at + W_COUNT] = count
            pos = self._probe(table, stride, mask, key)
        if value is not None and 2 * (count + 1) <= mask + 1:  # a new key
            self._put(table, stride, pos, key, self._address(m, value))
            d[at + W_COUNT] = count + 1
            return True
        return False

    @staticmethod
    def _remove(table: np.ndarray, stride: int, mask: int, pos: int, key_size: int) -> None:
        """Empty slot ``pos`` and move back the entries after it that could no longer be
        reached from their home slot (deletion in linear probing, without tombstones)."""
        raw = table.view(np.uint8)
        table[pos * stride:(pos + 1) * stride] = 0
        j = pos
        while True:
            j = (j + 1) & mask
            if not table[j * stride]:
                return
            at = (j * stride + 2) * 8
            home = fnv1a(raw[at:at + key_size].tobytes()) & mask
            # the entry at j stays if its home lies cyclically in (pos, j]
            if (home - pos - 1) & mask < (j - pos) & mask:
                continue
            table[pos * stride:(pos + 1) * stride] = table[j * stride:(j + 1) * stride]
            table[j * stride:(j + 1) * stride] = 0
            pos = j

    @staticmethod
    def _probe(table: np.ndarray, stride: int, mask: int, key: bytes) -> int:
        """The slot holding ``key``, else the empty slot where it belongs."""
        pos = fnv1a(key) & mask
        raw = table.view(np.uint8)
        while table[pos * stride]:
            at = (pos * stride + 2) * 8
            if raw[at:at + len(key)].tobytes() == key:
                return pos
            pos = (pos + 1) & mask
        return pos

    @staticmethod
    def _put(table: np.ndarray, stride: int, pos: int, key: bytes, addr: int) -> None:
        table[pos * stride:pos * stride + 2] = (1, addr)
        at = (pos * stride + 2) * 8
        table.view(np.uint8)[at:at + len(key)] = np.frombuffer(key, np.uint8)

    def _desc(self, ptr: int, kind: int, m: Any, table: np.ndarray, mask: int, stride: int,
              limit: int, count: int) -> np.ndarray:
        flags = F_LRU if getattr(m, "lru", False) else 0
        if m.type_name in WRITABLE_KINDS and not self.vm.map_readonly(m) and \
                0 <= self.vm.env.cpu < m.num_cpus:  # else the VM's handler raises
            flags |= F_WRITABLE
        row = np.zeros(DESC_WORDS, np.uint64)
        row[:] = (ptr, kind, m.key_size, table.ctypes.data, mask, stride, limit, count,
                  flags, m.value_size)
        return row

    # -- LRU recency -----------------------------------------------------------------------

    def apply_log(self) -> None:
        """Apply what native code logged since the last time to the Python maps, in order:
        LRU uses (``touch``; only each entry's last use matters) and insertions (the key
        from its table slot, the value from the value buffer: ``update`` as the VM's
        handler would have made it). A map's keys and order are then what the VM's calls
        would have left."""
        rt = self._rt
        n = rt[RT_X + X_LOG_LEN]
        if not n:
            return
        rt[RT_X + X_LOG_LEN] = 0
        rt[RT_X + X_VBUF_LEN] = 0
        entries = self._log[:n].tolist()
        last = {e: i for i, e in enumerate(entries)}  # a use's last occurrence
        desc, seen, cursor = self.desc, {}, 0
        versions: dict[int, tuple[Any, int]] = {}  # inserted into: map, version before
        for i, e in enumerate(entries):
            inserted = e & INSERTED
            if not inserted and last[e] != i:
                continue  # a later use of the same entry decides its place
            row = (e >> 32) & 0x7FFFFFFF
            at = seen.get(row)
            if at is None:
                ptr = int(desc[row * DESC_WORDS + W_MAP])
                at = seen[row] = (ptr, self._tables[ptr][1], self._held[ptr].view(np.uint8),
                                  int(desc[row * DESC_WORDS + W_STRIDE]))
            ptr, m, raw, stride = at
            start = ((e & 0xFFFFFFFF) * stride + 2) * 8
            key = raw[start:start + m.key_size].tobytes()
            if not inserted:
                m.touch((key,))
                continue
            versions.setdefault(ptr, (m, m.version))
            value = self._vbuf[cursor:cursor + m.value_size].tobytes()
            cursor += m.value_size
            if m.update(key, value, BPF_ANY, cpu=self.vm.env.cpu):
                raise VmError(f"map '{m.name}': a native insertion failed (compiled code)")
        for ptr, (m, before) in versions.items():
            if self._versions.get(ptr) == before:  # the table holds the keys inserted
                self._versions[ptr] = m.version

    def before_call(self, target: tuple[int, int] | None) -> None:
        """Before the VM's handler runs an instruction: the LRU log applied (the handler
        may depend on the order); for a map update (``target``: map pointer and key
        address), the key it would evict from a full LRU map, for ``written``."""
        self._victim = None
        if self._rt[RT_X + X_LOG_LEN]:
            self.apply_log()
        if target is None:
            return
        held = self._tables.get(target[0])
        if held is not None and getattr(held[1], "lru", False) and \
                len(held[1]) >= held[1].max_entries:
            self._victim = held[1].least_recent()

    def finish(self) -> None:
        """The end of a batch: the log applied, lookups back on the VM's handler."""
        self.apply_log()
        self.vm._rt[cg.RT_NMAPS] = 0

    def _address(self, m: Any, value: Any) -> int:
        """The address the VM has handed out for this value, else 0 (not created yet)."""
        region = self.vm.mem.find_map_value(value)
        return region.base if region is not None else 0

    def _hash_table(self, m: Any, kw: int) -> tuple[np.ndarray, int, int]:
        from ebpf.helpers.core import PERCPU_MAP_TYPES, map_kind

        cpu = self.vm.env.cpu if map_kind(m) in PERCPU_MAP_TYPES else 0
        entries = []
        for key, _ in m.items():
            value = m.peek(key, cpu)  # not a use (LRU maps keep their order)
            if value is not None:
                entries.append((bytes(key), self._address(m, value)))
        cap = 8
        while cap < 4 * len(entries):  # room for as many inserts again before a rebuild
            cap *= 2
        stride = 2 + kw
        table = np.zeros(cap * stride, np.uint64)
        for key, addr in entries:
            self._put(table, stride, self._probe(table, stride, cap - 1, key), key, addr)
        return table, cap - 1, len(entries)

    def _lpm_table(self, m: Any) -> tuple[np.ndarray, int]:
        size = m.key_size - 4
        stride = 2 + -(-size // 8)
        entries = []
        for key, value in m.items():
            plen = int.from_bytes(bytes(key[:4]), "little")
            entries.append((plen, bytes(key[4:]), self._address(m, value)))
        entries.sort(key=lambda e: -e[0])  # prefixes are distinct per length: one match
        table = np.zeros(max(1, len(entries)) * stride, np.uint64)
        raw = table.view(np.uint8)
        for k, (plen, data, addr) in enumerate(entries):
            table[k * stride:k * stride + 2] = (plen, addr)
            at = (k * stride + 2) * 8
            raw[at:at + size] = np.frombuffer(data, np.uint8)
        return table, len(entries)
