"""Native ``bpf_redirect``, ``bpf_redirect_map`` and ``bpf_fib_lookup`` for the batch driver.

The helpers' semantics are the VM's (``ebpf.helpers.packet.redirect`` / ``redirect_map``,
``ebpf.helpers.fib.fib_lookup``); this module answers them in native code where the state
it needs cannot change during a batch, and hands every other case to the VM's handler
(``f.interp``), so the results stay the VM's by construction:

- **redirect maps** (devmap, devmap_hash, cpumap, xskmap): a program cannot write them (the
  verifier refuses update and delete; their values are read-only or not looked up) and user
  space does not run during a batch, so ``Forward.refresh`` snapshots each registered one at
  the start of ``run_xdp_columns``: key -> ``redirect_target(key)`` in a small open-addressing
  table. BPF_F_BROADCAST (and a map pointer not in the snapshot) stays on the VM's handler.
- **bpf_redirect_info.tgt_index** (``Vm.redirect_index``, which survives across packets) lives
  in an rt word that the native code and the VM's handlers share (``REDIRECT_INDEX``, the
  property ``CompiledVm.redirect_index``).
- **the redirect target** of each packet: the native code writes it into a record per chunk
  packet (``REC_WORDS`` words: kind, ifindex or key, map, target, flags); ``take`` turns the
  records into ``ebpf.vm.trace.Redirect`` objects. Before the VM's handler runs anything
  for a packet, ``to_trace`` moves the packet's record into its trace (so a redirect
  helper on the VM's handler replaces it, or leaves it, as it would have in the VM): a
  record is therefore always newer than what the packet's trace holds.
- **FIB lookups**: the routes (``HelperEnv.get_routes``) and the forwarding switch do not
  change during a batch either; ``refresh`` lays them out as a table ordered by decreasing
  prefix length (ties in list order: the VM keeps the first of equal length), each with its
  return code, MTU, metric, ifindex, source, gateway and MACs, and the native lookup writes
  ``struct bpf_fib_lookup`` exactly where ``fib_lookup`` writes it. Routes the VM would
  refuse (a malformed prefix or address), an IPv4-mapped IPv6 address (whose
  ``is_loopback`` / ``is_link_local`` answer depends on the Python version) or parameters not
  readable and writable natively go to the VM's handler.

Outside a batch chunk (``begin`` .. ``end``: single ``run`` calls, runts) every call runs on
the VM's handler, so those traces are complete.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
from typing import Any

import numpy as np
from llvmlite import ir

from ebpf.compiled import batch
from ebpf.compiled import codegen as cg
from ebpf.compiled.codegen import I8, I16, I32, I64, P64, c64
from ebpf.helpers.core import (
    AF_INET,
    AF_INET6,
    BPF_F_BROADCAST,
    BPF_F_EXCLUDE_INGRESS,
    BPF_FIB_LKUP_RET_FRAG_NEEDED,
    BPF_FIB_LKUP_RET_FWD_DISABLED,
    BPF_FIB_LKUP_RET_NO_NEIGH,
    BPF_FIB_LKUP_RET_NO_SRC_ADDR,
    BPF_FIB_LKUP_RET_NOT_FWDED,
    BPF_FIB_LKUP_RET_SUCCESS,
    BPF_FIB_LOOKUP_FLAGS,
    BPF_FIB_LOOKUP_SKIP_NEIGH,
    BPF_FIB_LOOKUP_SRC,
    FIB_LOOKUP_SIZE,
    REDIRECT_MAP_TYPES,
    XDP_ACTION_MASK,
    XDP_REDIRECT,
    map_kind,
)
from ebpf.helpers.fib import ROUTE_CODES
from ebpf.vm.limits import M32, M64
from ebpf.vm.memory import FIRST_BASE
from ebpf.vm.trace import Redirect

# the family's rt words (cg.RT_FWD + ...)
W_REC, W_TGT, W_DEVS, W_ROUTES, W_FIB, W_REDIRECT_MAP = range(6)
assert W_REDIRECT_MAP < cg.RT_FAMILY_WORDS
NOPE = 1 << 63
"""What the native functions return when the VM's handler must answer (never a result)."""
# a packet's redirect record
REC_WORDS = 5  # kind, ifindex (KIND_IFINDEX) or key (KIND_MAP), map index, target, flags
KIND_NONE, KIND_IFINDEX, KIND_MAP = 0, 1, 2
# redirect map descriptors: table[0] = count, then per map: pointer, allowed flags, table, mask
DEV_WORDS = 4
SLOT_WORDS = 3  # a redirect table slot: used, key, target
GOLDEN = 0x9E3779B97F4A7C15
"""Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4) of a u32 key: the high half of key x this."""
# routes: table[0] = forwarding, table[1] = count, then ROUTE_WORDS per route
(R_FAMILY, R_NET_HI, R_NET_LO, R_MASK_HI, R_MASK_LO, R_CODE, R_MTU, R_METRIC, R_IFINDEX,
 R_SRC_LEN, R_SRC, R_GW_LEN, R_GW, R_HAS_DMAC, R_SMAC, R_DMAC) = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17)
ROUTE_WORDS = 18  # R_SRC and R_GW take two words each (16 address bytes as stored)
UNICAST = 1 << 8
"""R_CODE of a route that forwards (the others hold their return code)."""


def _word(rt_word: int) -> int:
    return cg.RT_FWD + rt_word


def _get_redirect_index(vm: Any) -> int:
    return vm._rt[_word(W_TGT)]


def _set_redirect_index(vm: Any, value: int) -> None:
    vm._rt[_word(W_TGT)] = value & M64


REDIRECT_INDEX = property(_get_redirect_index, _set_redirect_index,
                          doc="bpf_redirect_info.tgt_index, shared with the native code")


# --------------------------------------------------------------------------------------------
# call sites
# --------------------------------------------------------------------------------------------

@cg.native_helper("redirect")
def _emit_redirect(f: Any, slot: int) -> None:
    """bpf_redirect: flags -> XDP_ABORTED (0); else tgt_index = ifindex, XDP_REDIRECT."""
    b = f.b
    rec = f.rt_load(_word(W_REC))
    native, vm = f.block(f"s{slot}_fwd"), f.block(f"s{slot}_vm")
    b.cbranch(b.icmp_unsigned("==", rec, c64(0)), vm, native)  # outside a chunk
    b.position_at_end(native)
    ok = b.icmp_unsigned("==", f.reg(2), c64(0))
    with b.if_then(ok):
        ifindex = b.and_(f.reg(1), c64(M32))
        b.store(ifindex, f.rt_ptr(_word(W_TGT)))
        at = b.inttoptr(b.add(rec, b.mul(f.rt_load(cg.RT_CUR), c64(8 * REC_WORDS))), P64)
        b.store(c64(KIND_IFINDEX), at)
        b.store(ifindex, b.gep(at, [c64(1)]))
    f.set_reg(0, b.select(ok, c64(XDP_REDIRECT), c64(0)))
    b.branch(f.slot_block(slot + 1))
    b.position_at_end(vm)
    f.interp(slot, slot + 1)


def _emit_native_call(f: Any, slot: int, rt_word: int, args: list[int]) -> None:
    """r0 = the native function at ``rt[rt_word]`` (rt, the argument registers), unless it
    says NOPE: then the VM's handler."""
    f.call_native(slot, f.rt_load(_word(rt_word)), [f.reg(r) for r in args], NOPE)


@cg.native_helper("redirect_map")
def _emit_redirect_map(f: Any, slot: int) -> None:
    _emit_native_call(f, slot, W_REDIRECT_MAP, [1, 2, 3])


@cg.native_helper("fib_lookup")
def _emit_fib_lookup(f: Any, slot: int) -> None:
    _emit_native_call(f, slot, W_FIB, [2, 3, 4])


# --------------------------------------------------------------------------------------------
# the native functions
# --------------------------------------------------------------------------------------------

class _Ir:
    """A function under construction: named blocks and word access."""

    def __init__(self, module: ir.Module, name: str, nargs: int, blocks: tuple[str, ...]):
        self.fn = ir.Function(module, ir.FunctionType(I64, [P64] + [I64] * nargs), name)
        self.blk = {n: self.fn.append_basic_block(n) for n in ("entry", *blocks)}
        self.b = ir.IRBuilder(self.blk["entry"])

    def at(self, name: str) -> None:
        self.b.position_at_end(self.blk[name])

    def word(self, base: ir.Value, k: Any) -> ir.Value:
        return self.b.gep(base, [k if isinstance(k, ir.Value) else c64(k)])

    def load(self, base: ir.Value, k: Any) -> ir.Value:
        return self.b.load(self.word(base, k))

    def ret(self, value: Any) -> None:
        self.b.ret(value if isinstance(value, ir.Value) else c64(value))


@functools.cache  # (the same text every time: built once per process)
def redirect_map_ir() -> str:
    """``i64 redirect_map(i64 *rt, i64 map, i64 key, i64 flags)``: r0, or NOPE."""
    module = ir.Module(name="bpf_redirect_map")
    g = _Ir(module, "redirect_map", 3, ("scan", "scan_body", "scan_next", "found", "flags_ok",
                                       "probe_body", "probe_cmp", "probe_next", "hit",
                                       "miss", "nope"))
    b, (rt, r1, r2, r3) = g.b, g.fn.args
    rec = g.load(rt, _word(W_REC))
    cur = g.load(rt, cg.RT_CUR)
    devs = b.inttoptr(g.load(rt, _word(W_DEVS)), P64)
    i, pos, d_at = b.alloca(I64), b.alloca(I64), b.alloca(P64)
    b.store(c64(0), i)
    b.cbranch(b.icmp_unsigned("==", rec, c64(0)), g.blk["nope"], g.blk["scan"])

    g.at("scan")  # the map's descriptor
    b.cbranch(b.icmp_unsigned("<", b.load(i), b.load(devs)), g.blk["scan_body"], g.blk["nope"])
    g.at("scan_body")
    d = g.word(devs, b.add(c64(1), b.mul(b.load(i), c64(DEV_WORDS))))
    b.store(d, d_at)
    b.cbranch(b.icmp_unsigned("==", b.load(d), r1), g.blk["found"], g.blk["scan_next"])
    g.at("scan_next")
    b.store(b.add(b.load(i), c64(1)), i)
    b.branch(g.blk["scan"])

    g.at("found")  # flags beyond the action and the map type's flags: XDP_ABORTED
    d = b.load(d_at)
    allowed = g.load(d, 1)
    bad = b.icmp_unsigned("!=", b.and_(r3, b.not_(allowed)), c64(0))
    with b.if_then(bad):
        g.ret(0)
    broadcast = b.icmp_unsigned("!=", b.and_(r3, c64(BPF_F_BROADCAST)), c64(0))
    b.cbranch(broadcast, g.blk["nope"], g.blk["flags_ok"])
    g.at("flags_ok")
    key = b.and_(r2, c64(M32))
    table = b.inttoptr(g.load(d, 2), P64)
    mask = g.load(d, 3)
    b.store(b.and_(b.lshr(b.mul(key, c64(GOLDEN)), c64(32)), mask), pos)
    b.branch(g.blk["probe_body"])
    g.at("probe_body")
    s = g.word(table, b.mul(b.load(pos), c64(SLOT_WORDS)))
    b.cbranch(b.icmp_unsigned("==", b.load(s), c64(0)), g.blk["miss"], g.blk["probe_cmp"])
    g.at("probe_cmp")
    b.cbranch(b.icmp_unsigned("==", g.load(s, 1), key), g.blk["hit"], g.blk["probe_next"])
    g.at("probe_next")
    b.store(b.and_(b.add(b.load(pos), c64(1)), mask), pos)
    b.branch(g.blk["probe_body"])

    g.at("miss")  # the previous target index, in the ifindex form; the action in the flags
    recp = b.inttoptr(b.add(rec, b.mul(cur, c64(8 * REC_WORDS))), P64)
    b.store(c64(KIND_IFINDEX), recp)
    b.store(g.load(rt, _word(W_TGT)), g.word(recp, 1))
    g.ret(b.and_(r3, c64(XDP_ACTION_MASK)))

    g.at("hit")
    recp = b.inttoptr(b.add(rec, b.mul(cur, c64(8 * REC_WORDS))), P64)
    b.store(key, g.word(rt, _word(W_TGT)))
    s = g.word(table, b.mul(b.load(pos), c64(SLOT_WORDS)))
    for k, v in enumerate((c64(KIND_MAP), key, b.load(i), g.load(s, 2),
                           b.and_(r3, b.and_(allowed, c64(~XDP_ACTION_MASK & M64))))):
        b.store(v, g.word(recp, k))
    g.ret(XDP_REDIRECT)

    g.at("nope")
    g.ret(NOPE)
    return str(module)


def _be(b: ir.IRBuilder, p: ir.Value, off: int, width: int) -> ir.Value:
    """The big-endian ``width``-byte number at ``p + off`` as an i64."""
    ty = {4: I32, 8: I64}[width]
    v = b.load(b.bitcast(b.gep(p, [c64(off)]), ty.as_pointer()), align=1)
    v = b.bswap(v)
    return b.zext(v, I64) if width < 8 else v


def _put(b: ir.IRBuilder, p: ir.Value, off: int, value: ir.Value, ty: ir.IntType) -> None:
    """Store ``value`` truncated to ``ty`` at ``p + off`` (host order, as struct.pack "<")."""
    b.store(b.trunc(value, ty) if ty is not I64 else value,
            b.bitcast(b.gep(p, [c64(off)]), ty.as_pointer()), align=1)


@functools.cache
def fib_ir() -> str:
    """``i64 fib_lookup(i64 *rt, i64 params, i64 plen, i64 flags)``: r0, or NOPE."""
    module = ir.Module(name="bpf_fib_lookup")
    g = _Ir(module, "fib_lookup", 3, (
        "args", "readable", "family", "v4", "v6", "v6_strict", "lookup", "scan", "scan_body",
        "scan_next", "found", "code", "unicast", "nope", "einval", "eafnosupport",
        "not_fwded"))
    b, (rt, r2, r3, r4) = g.b, g.fn.args
    i8p = I8.as_pointer()
    memcpy = ir.Function(module, ir.FunctionType(ir.VoidType(), [
        i8p, i8p, I64, ir.IntType(1)]), "llvm.memcpy.p0i8.p0i8.i64")
    routes = b.inttoptr(g.load(rt, _word(W_ROUTES)), P64)
    on_vm = b.or_(b.icmp_unsigned("==", g.load(rt, _word(W_REC)), c64(0)),
                  b.icmp_unsigned("==", g.load(rt, _word(W_ROUTES)), c64(0)))
    hi, lo, k, ret = (b.alloca(I64) for _ in range(4))
    b.cbranch(on_vm, g.blk["nope"], g.blk["args"])

    g.at("args")  # before the parameters are read (ebpf.helpers.fib.fib_lookup)
    bad = b.or_(b.icmp_unsigned("<", r3, c64(FIB_LOOKUP_SIZE)),
                b.icmp_unsigned("!=", b.and_(r4, c64(~BPF_FIB_LOOKUP_FLAGS & M64)), c64(0)))
    b.cbranch(bad, g.blk["einval"], g.blk["readable"])

    g.at("readable")  # 64 bytes readable and writable through the region table
    idx = b.lshr(b.sub(r2, c64(FIRST_BASE)), c64(32))
    inside = b.icmp_unsigned("<", idx, g.load(rt, cg.RT_NREG))
    safe_idx = b.select(inside, idx, c64(0))
    entry = g.word(b.inttoptr(g.load(rt, cg.RT_TABLE), P64), b.mul(safe_idx, c64(cg.ENTRY_WORDS)))
    off = b.and_(r2, c64(M32))
    ok = b.and_(b.icmp_unsigned(">=", off, g.load(entry, 1)),
                b.icmp_unsigned("<=", b.add(off, c64(FIB_LOOKUP_SIZE)), g.load(entry, 2)))
    need = c64(cg.F_LOAD | cg.F_STORE)
    ok = b.and_(ok, b.icmp_unsigned("==", b.and_(g.load(entry, 3), need), need))
    b.cbranch(b.and_(inside, ok), g.blk["family"], g.blk["nope"])

    g.at("family")
    p = b.inttoptr(b.add(g.load(entry, 0), off), i8p)
    family = b.zext(b.load(p), I64)
    sw = b.switch(family, g.blk["eafnosupport"])
    sw.add_case(c64(AF_INET), g.blk["v4"])
    sw.add_case(c64(AF_INET6), g.blk["v6"])

    g.at("v4")
    b.store(b.shl(_be(b, p, 32, 4), c64(32)), hi)
    b.store(c64(0), lo)
    b.branch(g.blk["lookup"])

    g.at("v6")  # rt6_need_strict() on either address -> NOT_FWDED (the VM's checks)
    src_hi, src_lo = _be(b, p, 16, 8), _be(b, p, 24, 8)
    dst_hi, dst_lo = _be(b, p, 32, 8), _be(b, p, 40, 8)
    b.store(dst_hi, hi)
    b.store(dst_lo, lo)
    mapped = strict = ir.Constant(ir.IntType(1), 0)
    for a_hi, a_lo in ((src_hi, src_lo), (dst_hi, dst_lo)):
        zero_hi = b.icmp_unsigned("==", a_hi, c64(0))
        mapped = b.or_(mapped, b.and_(zero_hi, b.icmp_unsigned(
            "==", b.lshr(a_lo, c64(32)), c64(0xFFFF))))
        strict = b.or_(strict, b.icmp_unsigned("==", b.lshr(a_hi, c64(56)), c64(0xFF)))
        strict = b.or_(strict, b.icmp_unsigned("==", b.lshr(a_hi, c64(54)), c64(0xFE80 >> 6)))
        strict = b.or_(strict, b.and_(zero_hi, b.icmp_unsigned("==", a_lo, c64(1))))
    b.cbranch(mapped, g.blk["nope"], g.blk["v6_strict"])
    g.at("v6_strict")
    b.cbranch(strict, g.blk["not_fwded"], g.blk["lookup"])

    g.at("lookup")  # forwarding off; else the first (longest) matching prefix
    with b.if_then(b.icmp_unsigned("==", g.load(routes, 0), c64(0))):
        g.ret(BPF_FIB_LKUP_RET_FWD_DISABLED)
    b.store(c64(0), k)
    b.branch(g.blk["scan"])
    g.at("scan")
    b.cbranch(b.icmp_unsigned("<", b.load(k), g.load(routes, 1)), g.blk["scan_body"],
              g.blk["not_fwded"])
    g.at("scan_body")
    e = g.word(routes, b.add(c64(2), b.mul(b.load(k), c64(ROUTE_WORDS))))
    match = b.icmp_unsigned("==", g.load(e, R_FAMILY), family)
    for addr, net, mask in ((hi, R_NET_HI, R_MASK_HI), (lo, R_NET_LO, R_MASK_LO)):
        diff = b.and_(b.xor(b.load(addr), g.load(e, net)), g.load(e, mask))
        match = b.and_(match, b.icmp_unsigned("==", diff, c64(0)))
    b.cbranch(match, g.blk["found"], g.blk["scan_next"])
    g.at("scan_next")
    b.store(b.add(b.load(k), c64(1)), k)
    b.branch(g.blk["scan"])

    g.at("found")  # blackhole, unreachable, prohibit, throw: their codes
    e = g.word(routes, b.add(c64(2), b.mul(b.load(k), c64(ROUTE_WORDS))))
    code = g.load(e, R_CODE)
    b.cbranch(b.icmp_unsigned("==", code, c64(UNICAST)), g.blk["unicast"], g.blk["code"])
    g.at("code")
    g.ret(code)
    g.at("unicast")
    mtu = g.load(e, R_MTU)
    tot_len = b.zext(b.load(b.bitcast(b.gep(p, [c64(6)]), I16.as_pointer()), align=1), I64)
    with b.if_then(b.icmp_unsigned(">", tot_len, mtu)):  # check_mtu
        _put(b, p, 6, mtu, I16)
        g.ret(BPF_FIB_LKUP_RET_FRAG_NEEDED)
    _put(b, p, 12, g.load(e, R_METRIC), I32)
    _put(b, p, 8, g.load(e, R_IFINDEX), I32)
    b.store(c64(BPF_FIB_LKUP_RET_SUCCESS), ret)
    false = ir.Constant(ir.IntType(1), 0)

    def copy(dst_off: int, word: int, length: ir.Value) -> None:
        b.call(memcpy, [b.gep(p, [c64(dst_off)]), b.bitcast(g.word(e, word), i8p), length,
                        false])

    def success() -> ir.Value:
        return b.icmp_unsigned("==", b.load(ret), c64(BPF_FIB_LKUP_RET_SUCCESS))

    with b.if_then(b.icmp_unsigned("!=", b.and_(r4, c64(BPF_FIB_LOOKUP_SRC)), c64(0))):
        src_len = g.load(e, R_SRC_LEN)
        with b.if_else(b.icmp_unsigned("==", src_len, c64(0))) as (none, some):
            with none:
                b.store(c64(BPF_FIB_LKUP_RET_NO_SRC_ADDR), ret)
            with some:
                copy(16, R_SRC, src_len)
    gw_len = g.load(e, R_GW_LEN)
    with b.if_then(b.and_(success(), b.icmp_unsigned("!=", gw_len, c64(0)))):
        copy(32, R_GW, gw_len)
    neigh = b.icmp_unsigned("==", b.and_(r4, c64(BPF_FIB_LOOKUP_SKIP_NEIGH)), c64(0))
    with b.if_then(b.and_(success(), neigh)):
        with b.if_else(b.icmp_unsigned("==", g.load(e, R_HAS_DMAC), c64(0))) as (none, some):
            with none:
                b.store(c64(BPF_FIB_LKUP_RET_NO_NEIGH), ret)
            with some:
                copy(52, R_SMAC, c64(6))
                copy(58, R_DMAC, c64(6))
    with b.if_then(success()):
        _put(b, p, 48, c64(0), I32)  # h_vlan_proto, h_vlan_TCI
        with b.if_then(b.icmp_unsigned("!=", mtu, c64(0))):
            _put(b, p, 6, mtu, I16)
    g.ret(b.load(ret))

    g.at("nope")
    g.ret(NOPE)
    g.at("einval")
    g.ret(-errno.EINVAL & M64)
    g.at("eafnosupport")
    g.ret(-errno.EAFNOSUPPORT & M64)
    g.at("not_fwded")
    g.ret(BPF_FIB_LKUP_RET_NOT_FWDED)
    return str(module)


# --------------------------------------------------------------------------------------------
# the tables (Python side)
# --------------------------------------------------------------------------------------------

def _address_words(packed: bytes) -> tuple[int, int]:
    """An address (4 or 16 bytes) as the native code compares it: big-endian, left-aligned
    in 128 bits, the high and the low 64."""
    full = packed.ljust(16, b"\0")
    return int.from_bytes(full[:8], "big"), int.from_bytes(full[8:], "big")


def _route_row(route: Any) -> np.ndarray:
    """One route's ROUTE_WORDS (ValueError / TypeError where the VM would raise)."""
    net = route.network
    for value in (route.mtu, route.metric, route.ifindex):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"route {route.prefix}: not an integer: {value!r}")
    if not 0 <= route.mtu < 1 << 63:
        raise ValueError(f"route {route.prefix}: mtu {route.mtu}")
    row = np.zeros(ROUTE_WORDS, np.uint64)
    raw = row.view(np.uint8)
    row[R_FAMILY] = AF_INET if net.version == 4 else AF_INET6
    row[R_NET_HI], row[R_NET_LO] = _address_words(net.network_address.packed)
    row[R_MASK_HI], row[R_MASK_LO] = _address_words(net.netmask.packed)
    row[R_CODE] = UNICAST if route.kind == "unicast" else \
        ROUTE_CODES.get(route.kind, BPF_FIB_LKUP_RET_NOT_FWDED)
    row[R_MTU], row[R_METRIC], row[R_IFINDEX] = route.mtu, route.metric & M32, \
        route.ifindex & M32
    for length, at, value in ((R_SRC_LEN, R_SRC, route.src), (R_GW_LEN, R_GW, route.gateway)):
        if value is not None:
            packed = ipaddress.ip_address(value).packed
            row[length] = len(packed)
            raw[8 * at:8 * at + len(packed)] = np.frombuffer(packed, np.uint8)
    if route.dmac is not None:
        row[R_HAS_DMAC] = 1
        for at, mac in ((R_SMAC, route.smac), (R_DMAC, route.dmac)):
            raw[8 * at:8 * at + 6] = np.frombuffer(bytes(mac)[:6].ljust(6, b"\0"), np.uint8)
    return row


class Forward:
    """One VM's redirect and route tables, its chunk records and its rt words."""

    def __init__(self, vm: Any, jit_add: Any) -> None:
        self.vm = vm
        rt = vm._rt
        rt[_word(W_FIB)] = jit_add(fib_ir(), "fib_lookup")
        rt[_word(W_REDIRECT_MAP)] = jit_add(redirect_map_ir(), "redirect_map")
        self.rec = np.zeros(batch.CHUNK * REC_WORDS, np.uint64)
        self.maps: list[Any] = []  # the redirect maps, in descriptor order
        self.devs = np.zeros(1, np.uint64)
        self.routes: np.ndarray | None = None
        self._held: list[np.ndarray] = []  # the redirect tables (kept alive)
        rt[_word(W_DEVS)] = self.devs.ctypes.data

    def refresh(self) -> None:
        """The redirect maps and the routes as they are now (before a batch run)."""
        self._refresh_devs()
        rt = self.vm._rt
        try:
            rows = [_route_row(r) for r in self.vm.env.get_routes()]
        except (ValueError, TypeError):  # the VM's handler raises its own error
            self.routes = None
            rt[_word(W_ROUTES)] = 0
            return
        rows.sort(key=lambda row: -int(row[R_MASK_HI]).bit_count()
                  - int(row[R_MASK_LO]).bit_count())  # stable: equal lengths in list order
        self.routes = np.concatenate([np.array([bool(self.vm.env.forwarding), len(rows)],
                                               np.uint64), *rows])
        rt[_word(W_ROUTES)] = self.routes.ctypes.data

    def _refresh_devs(self) -> None:
        descs: list[int] = []
        self.maps, self._held = [], []
        for ptr, m in self.vm.registered_maps():
            kind = map_kind(m)
            if kind not in REDIRECT_MAP_TYPES:
                continue
            targets = {}
            for key, _ in m.items():
                index = int.from_bytes(bytes(key)[:4], "little")
                target = m.redirect_target(index)
                if target is not None:
                    targets[index] = target
            cap = 8
            while cap < 2 * len(targets):
                cap *= 2
            table = np.zeros(cap * SLOT_WORDS, np.uint64)
            for index, target in targets.items():
                pos = ((index * GOLDEN & M64) >> 32) & (cap - 1)
                while table[pos * SLOT_WORDS]:
                    pos = (pos + 1) & (cap - 1)
                table[pos * SLOT_WORDS:(pos + 1) * SLOT_WORDS] = (1, index, target)
            flags = XDP_ACTION_MASK | (BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
                                       if kind.startswith("devmap") else 0)
            descs += [ptr, flags, table.ctypes.data, cap - 1]
            self.maps.append(m)
            self._held.append(table)
        self.devs = np.array([len(self.maps), *descs], np.uint64)
        self.vm._rt[_word(W_DEVS)] = self.devs.ctypes.data

    def begin(self) -> None:
        """A chunk starts: its records empty."""
        self.rec[::REC_WORDS] = KIND_NONE
        self.vm._rt[_word(W_REC)] = self.rec.ctypes.data

    def end(self) -> None:
        """The chunk is over: every call on the VM's handler again."""
        self.vm._rt[_word(W_REC)] = 0

    def to_trace(self) -> None:
        """Before the VM's handler runs an instruction of the current chunk packet (its VM
        state built): the packet's native redirect so far into its trace, where the
        handler finds it (a redirect helper replaces it, or leaves it as the kernel
        leaves bpf_redirect_info); the record is then empty."""
        k = self.vm._rt[cg.RT_CUR]
        if self.rec[k * REC_WORDS]:
            self.vm.trace.redirect = self.take(k, k + 1)[k]
            self.rec[k * REC_WORDS] = KIND_NONE

    def take(self, start: int, stop: int) -> dict[int, Redirect]:
        """The native redirect targets of chunk packets ``start .. stop``."""
        rec = self.rec.reshape(-1, REC_WORDS)
        out = {}
        for k in (start + np.flatnonzero(rec[start:stop, 0])).tolist():
            kind, value, index, target, flags = (int(x) for x in rec[k])
            if kind == KIND_IFINDEX:
                out[k] = Redirect("ifindex", ifindex=value)
                continue
            m = self.maps[index]
            mtype = map_kind(m)
            out[k] = Redirect("map", map=m.name, key=value, map_type=mtype,
                              ifindex=target if mtype.startswith("devmap") else None,
                              target=target, flags=flags)
        return out
