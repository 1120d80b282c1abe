"""Native packet helpers for the batch driver: ``bpf_csum_diff``, ``bpf_xdp_adjust_head`` /
``_tail`` / ``_meta``, ``bpf_xdp_get_buff_len``, ``bpf_xdp_load_bytes`` / ``_store_bytes``.

Their semantics are the VM's (``ebpf.helpers.packet``, ``ebpf.vm.xdp.XdpBuff``); here they
run on the state the native code already holds for the packet:

- the packet's ``data`` / ``data_end`` / ``data_meta`` are the ``xdp_md`` values in
  ``rt[RT_CTX_VALS ..]`` (synthetic addresses: the packet region's base plus the offset
  into the 4096-byte frame), and the packet region's table entry holds the frame's host
  address and the accessible window ``[data_meta, data_end)``, as ``XdpBuff._sync`` keeps
  the region's. An adjustment applies the kernel's checks exactly as ``XdpBuff`` does
  (headroom above ``sizeof(struct xdp_frame)`` plus the metadata, ``ETH_HLEN`` bytes left,
  the frame's hard end, metadata a multiple of 4 and at most ``metalen_max``: 0, -EINVAL
  or -EACCES), moves the metadata (adjust_head) or zeroes the grown tail (adjust_tail)
  in the frame, and writes the new values into the ``xdp_md`` words and the table entry.
  A pointer taken before the move keeps its address, and is accessible exactly where it
  falls inside the new window, as in the VM.
- ``bpf_csum_diff`` reads its two buffers through the region table, as native loads do
  (where the table does not allow the read, the VM's handler runs: its fault), and
  computes the helper's result in the VM's mode (``HelperEnv.csum_diff``): ``fold16``
  (Linux >= 6.13) or ``x86_unfolded`` (sizes multiples of 4, at most 512 bytes in all,
  else -EINVAL). ``csum_partial`` is a ones'-complement sum whose 32-bit result is the
  unique value in [1, 2**32 - 1] congruent to the plain sum of the data's zero-padded
  little-endian u32 words and the seed modulo 2**32 - 1 (0 only for an all-zero sum), so
  the native code sums u32 words in a u64 and folds it twice.
- A frame longer than the linear part has fragments, which only the VM's ``XdpBuff``
  holds: ``adjust_tail``, ``get_buff_len`` and ``load/store_bytes`` on such a packet run
  on the VM's handler (adjust_head and adjust_meta do not touch fragments).

The native helpers answer only inside a batch chunk (``W_ON``, set by ``start`` and cleared
by ``stop``): ``CompiledVm.run`` keeps every helper on the VM's handler, so its trace lists
every helper call. While they answer, ``XdpBuff`` (the VM's view, built when a packet
first calls back) may fall behind the native state: ``W_MOVED`` says so, and ``pull``
brings it up to date before Python reads it (before every callback, after a tail call).
The batch's outputs are read from the native state by the driver.

``packet_helper(i64 *rt, i64 op, i64 r1, .., i64 r5) -> i64`` is one LLVM function for every
program; the call sites (registered with ``codegen.native_helper``) pass their ``OP_*`` and
the registers, and fall back to the VM's handler when it returns ``NOPE``.
"""

from __future__ import annotations

import errno
from typing import Any

from llvmlite import ir

from ebpf.compiled import codegen as cg
from ebpf.compiled.batch import MAX_LINEAR
from ebpf.compiled.codegen import I8, I32, I64, P64, c64
from ebpf.vm.memory import FIRST_BASE
from ebpf.vm.xdp import (
    ETH_HLEN,
    FRAG_SIZE,
    SKB_SHARED_INFO_SIZE,
    TEST_RUN_FRAME_SIZE,
    XDP_FRAME_SIZE,
)

# the family's rt words (codegen.RT_PKT)
W_ON = cg.RT_PKT  # 1 inside a batch chunk: the native helpers answer; 0: the VM's handler
W_FRAGS = cg.RT_PKT + 1  # the chunk's fragment state: FRAG_WORDS int64 per packet
W_MOVED = cg.RT_PKT + 2  # native code moved data / data_end / data_meta: XdpBuff is behind
W_MODE = cg.RT_PKT + 3  # csum_diff: MODE_FOLD16, MODE_X86, else the VM's handler (its error)
W_METALEN_MAX = cg.RT_PKT + 4  # HelperEnv.metalen_max
W_FN = cg.RT_PKT + 5  # the address of packet_helper
W_VIEW = cg.RT_PKT + 6  # the chunk packet whose XdpBuff took the fragment state (pull)
assert W_VIEW < cg.RT_PKT + cg.RT_FAMILY_WORDS
FRAG_WORDS = 3
F_BYTES, F_KEPT, F_WHOLE = range(FRAG_WORDS)
"""Per chunk packet: its fragments' bytes, how many of them are the frame's own (the rest:
zeros a grown tail added), its whole length."""

MODES = {"fold16": 0, "x86_unfolded": 1}
MODE_UNKNOWN = 2
OP_CSUM, OP_HEAD, OP_TAIL, OP_META, OP_LEN, OP_LOAD, OP_STORE = range(7)
HELPER_OPS = {"csum_diff": OP_CSUM, "xdp_adjust_head": OP_HEAD, "xdp_adjust_tail": OP_TAIL,
              "xdp_adjust_meta": OP_META, "xdp_get_buff_len": OP_LEN,
              "xdp_load_bytes": OP_LOAD, "xdp_store_bytes": OP_STORE}
NOPE = 1 << 63
"""Not answered natively (never a result: those are below 2**32 or a negative errno)."""
HARD_END = TEST_RUN_FRAME_SIZE - SKB_SHARED_INFO_SIZE
"""``XdpBuff.hard_end`` of the batch's frames (``xdp_data_hard_end``)."""
XDP_POINTER_MAX = 0xFFFF
"""bpf_xdp_pointer: offsets and lengths above this are -EFAULT (``_xdp_pointer_check``)."""
CSUM_X86_MAX = 512
"""x86_unfolded: at most this many bytes of from and to together (``csum_diff``)."""
M32 = 0xFFFFFFFF
F_LOAD, F_STORE = cg.F_LOAD, cg.F_STORE


# --------------------------------------------------------------------------------------------
# the LLVM function
# --------------------------------------------------------------------------------------------

def _intrinsic(module: ir.Module, name: str, args: list[ir.Type]) -> ir.Function:
    return ir.Function(module, ir.FunctionType(ir.VoidType(), args), name)


def _func(module: ir.Module, name: str, args: list[ir.Type]
          ) -> tuple[ir.Function, ir.IRBuilder]:
    fn = ir.Function(module, ir.FunctionType(I64, args), name)
    fn.linkage = "internal"
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))


def _rt(b: ir.IRBuilder, rt: ir.Value, word: int | ir.Value) -> ir.Value:
    return b.gep(rt, [word if isinstance(word, ir.Value) else c64(word)])


def _host_fn(module: ir.Module) -> ir.Function:
    """i64 host(i64 *rt, i64 addr, i64 size, i64 need): the host address of ``size``
    bytes at ``addr`` where the region table allows ``need`` there, else 0 (the check
    of ``codegen._Fn.access``)."""
    fn, b = _func(module, "host", [P64, I64, I64, I64])
    rt, addr, size, need = fn.args
    idx = b.lshr(b.sub(addr, c64(FIRST_BASE)), c64(32))
    with b.if_then(b.icmp_unsigned(">=", idx, b.load(_rt(b, rt, cg.RT_NREG)))):
        b.ret(c64(0))
    table = b.inttoptr(b.load(_rt(b, rt, cg.RT_TABLE)), P64)
    entry = b.gep(table, [b.mul(idx, c64(cg.ENTRY_WORDS))])
    host = b.load(entry)
    lo, hi, flags = (b.load(b.gep(entry, [c64(k)])) for k in (1, 2, 3))
    off = b.and_(addr, c64(M32))
    ok = b.and_(b.icmp_unsigned(">=", off, lo), b.icmp_unsigned("<=", b.add(off, size), hi))
    ok = b.and_(ok, b.icmp_unsigned("!=", b.and_(flags, need), c64(0)))
    ok = b.and_(ok, b.icmp_unsigned("!=", host, c64(0)))
    b.ret(b.select(ok, b.add(host, off), c64(0)))
    return fn


def _words_fn(module: ir.Module) -> ir.Function:
    """i64 words(i64 host, i64 n): the plain sum of the little-endian u32 words of ``n``
    bytes at ``host``, the last one zero-padded."""
    fn, b = _func(module, "words", [I64, I64])
    host, n = fn.args
    p = b.inttoptr(host, I8.as_pointer())
    i, s = b.alloca(I64), b.alloca(I64)
    b.store(c64(0), i)
    b.store(c64(0), s)
    head, body, tail, tbody, done = (fn.append_basic_block(x) for x in
                                     ("head", "body", "tail", "tbody", "done"))
    b.branch(head)
    b.position_at_end(head)
    k = b.load(i)
    b.cbranch(b.icmp_unsigned("<=", b.add(k, c64(4)), n), body, tail)
    b.position_at_end(body)
    word = b.load(b.bitcast(b.gep(p, [k]), I32.as_pointer()), align=1)
    b.store(b.add(b.load(s), b.zext(word, I64)), s)
    b.store(b.add(k, c64(4)), i)
    b.branch(head)
    b.position_at_end(tail)  # the last 1-3 bytes, zero-padded to a word
    first = b.load(i)
    b.branch(tbody)
    b.position_at_end(tbody)
    k = b.load(i)
    more = fn.append_basic_block("more")
    b.cbranch(b.icmp_unsigned("<", k, n), more, done)
    b.position_at_end(more)
    byte = b.zext(b.load(b.gep(p, [k])), I64)
    b.store(b.add(b.load(s), b.shl(byte, b.mul(b.sub(k, first), c64(8)))), s)
    b.store(b.add(k, c64(1)), i)
    b.branch(tbody)
    b.position_at_end(done)
    b.ret(b.load(s))
    return fn


def _fold32(b: ir.IRBuilder, total: ir.Value) -> ir.Value:
    """``csum_partial``'s result from the plain sum (below 2**63): hi + lo twice."""
    for _ in range(2):
        total = b.add(b.and_(total, c64(M32)), b.lshr(total, c64(32)))
    return total


def _csum_add(b: ir.IRBuilder, csum: ir.Value, addend: ir.Value) -> ir.Value:
    """include/net/checksum.h csum_add on u32 values (``ebpf.helpers.packet.csum_add``)."""
    res = b.and_(b.add(csum, addend), c64(M32))
    return b.add(res, b.zext(b.icmp_unsigned("<", res, addend), I64))


def _csum_fn(module: ir.Module, host: ir.Function, words: ir.Function) -> ir.Function:
    """i64 csum(i64 *rt, r1, r2, r3, r4, r5): ``ebpf.helpers.packet.bpf_csum_diff``."""
    fn, b = _func(module, "csum", [P64, I64, I64, I64, I64, I64])
    rt, r1, r2, r3, r4, r5 = fn.args
    mode = b.load(_rt(b, rt, W_MODE))
    with b.if_then(b.icmp_unsigned(">=", mode, c64(MODE_UNKNOWN))):
        b.ret(c64(NOPE))
    totals = [b.alloca(I64), b.alloca(I64)]
    sizes = [b.and_(r2, c64(M32)), b.and_(r4, c64(M32))]
    for ptr, n, total in zip((r1, r3), sizes, totals, strict=True):  # from, then to
        b.store(c64(0), total)
        with b.if_then(b.icmp_unsigned("!=", n, c64(0))):  # size 0 reads nothing
            at = b.call(host, [rt, ptr, n, c64(F_LOAD)])
            with b.if_then(b.icmp_unsigned("==", at, c64(0))):
                b.ret(c64(NOPE))
            b.store(b.call(words, [at, n]), total)
    (nf, nt), (sf, st) = sizes, [b.load(t) for t in totals]
    seed = b.and_(r5, c64(M32))
    with b.if_then(b.icmp_unsigned("==", mode, c64(MODES["x86_unfolded"]))):
        bad = b.or_(b.icmp_unsigned("!=", b.and_(b.or_(nf, nt), c64(3)), c64(0)),
                    b.icmp_unsigned(">", b.add(nf, nt), c64(CSUM_X86_MAX)))
        with b.if_then(bad):
            b.ret(c64(-errno.EINVAL))
        # ~from word by word: M32 - word each
        b.ret(_fold32(b, b.add(b.add(seed, b.sub(b.mul(b.lshr(nf, c64(2)), c64(M32)), sf)),
                               st)))
    partial_to = _fold32(b, b.add(seed, st))  # csum_partial(to, seed)
    partial_from = _fold32(b, sf)  # csum_partial(from, 0)
    both = _csum_add(b, partial_to, b.xor(partial_from, c64(M32)))  # csum_sub
    only_from = b.xor(_fold32(b, b.add(b.xor(seed, c64(M32)), sf)), c64(M32))
    has_from, has_to = b.icmp_unsigned("!=", nf, c64(0)), b.icmp_unsigned("!=", nt, c64(0))
    ret = b.select(has_to, b.select(has_from, both, partial_to),
                   b.select(has_from, only_from, seed))
    for _ in range(2):  # csum_from32to16
        ret = b.add(b.and_(ret, c64(0xFFFF)), b.lshr(ret, c64(16)))
    b.ret(b.and_(ret, c64(0xFFFF)))
    return fn


class _Packet:
    """The packet's state as IR values, loaded from the xdp_md words and its table entry."""

    def __init__(self, b: ir.IRBuilder, rt: ir.Value) -> None:
        self.b, self.rt = b, rt
        data_ptr = b.load(_rt(b, rt, cg.RT_CTX_VALS))
        self.base = b.and_(data_ptr, c64(~M32))
        self.data = b.and_(data_ptr, c64(M32))
        self.end = b.sub(b.load(_rt(b, rt, cg.RT_CTX_VALS + 1)), self.base)
        self.meta = b.sub(b.load(_rt(b, rt, cg.RT_CTX_VALS + 2)), self.base)
        idx = b.lshr(b.sub(self.base, c64(FIRST_BASE)), c64(32))
        self.ok = b.icmp_unsigned("<", idx, b.load(_rt(b, rt, cg.RT_NREG)))
        self.entry_at = b.mul(idx, c64(cg.ENTRY_WORDS))

    def host(self) -> ir.Value:
        """The frame's host address (0: not mapped natively); only where ``ok``."""
        b = self.b
        table = b.inttoptr(b.load(_rt(b, self.rt, cg.RT_TABLE)), P64)
        return b.load(b.gep(table, [self.entry_at]))

    def frags(self) -> tuple[ir.Value, ir.Value, ir.Value]:
        """(pointer to the packet's fragment state, whether the fragments are native's to
        change: the frame has some and the VM has no view of it, whether the frame is
        linear only: it never had fragments, or native code trimmed them all away)."""
        b = self.b
        cur = b.load(_rt(b, self.rt, cg.RT_CUR))
        state = b.gep(b.inttoptr(b.load(_rt(b, self.rt, W_FRAGS)), P64),
                      [b.mul(cur, c64(FRAG_WORDS))])
        jumbo = b.icmp_unsigned(">", b.load(b.gep(state, [c64(F_WHOLE)])), c64(MAX_LINEAR))
        no_view = b.icmp_unsigned("!=", b.load(_rt(b, self.rt, W_VIEW)), cur)
        some = b.icmp_unsigned("!=", b.load(b.gep(state, [c64(F_BYTES)])), c64(0))
        native = b.and_(b.and_(jumbo, no_view), some)
        linear = b.or_(b.not_(jumbo), b.and_(no_view, b.not_(some)))
        return state, native, linear

    def store(self, data: ir.Value, end: ir.Value, meta: ir.Value) -> None:
        """The new offsets into the xdp_md words and the table entry's window."""
        b, rt = self.b, self.rt
        b.store(b.add(self.base, data), _rt(b, rt, cg.RT_CTX_VALS))
        b.store(b.add(self.base, end), _rt(b, rt, cg.RT_CTX_VALS + 1))
        b.store(b.add(self.base, meta), _rt(b, rt, cg.RT_CTX_VALS + 2))
        table = b.inttoptr(b.load(_rt(b, rt, cg.RT_TABLE)), P64)
        b.store(meta, b.gep(table, [b.add(self.entry_at, c64(1))]))
        b.store(end, b.gep(table, [b.add(self.entry_at, c64(2))]))
        b.store(c64(1), _rt(b, rt, W_MOVED))


def _adjust_fn(module: ir.Module, host_fn: ir.Function) -> ir.Function:
    """i64 adjust(i64 *rt, i64 op, r1, r2, r3, r4): the XdpBuff helpers (see ``XdpBuff``)."""
    fn, b = _func(module, "adjust", [P64, I64, I64, I64, I64, I64])
    rt, op, _r1, r2, r3, r4 = fn.args
    i8p = I8.as_pointer()
    memmove = _intrinsic(module, "llvm.memmove.p0i8.p0i8.i64", [i8p, i8p, I64, ir.IntType(1)])
    memset = _intrinsic(module, "llvm.memset.p0i8.i64", [i8p, I8, I64, ir.IntType(1)])
    false = ir.Constant(ir.IntType(1), 0)
    pkt = _Packet(b, rt)
    with b.if_then(b.not_(pkt.ok)):
        b.ret(c64(NOPE))
    host = pkt.host()
    with b.if_then(b.icmp_unsigned("==", host, c64(0))):
        b.ret(c64(NOPE))
    data, end, meta = pkt.data, pkt.end, pkt.meta
    off = b.sext(b.trunc(r2, I32), I64)  # s32(r2)
    einval = c64(-errno.EINVAL)

    def at(offset: ir.Value) -> ir.Value:
        return b.inttoptr(b.add(host, offset), i8p)

    head, tail, meta_blk, length, bytes_blk = (fn.append_basic_block(x) for x in
                                               ("head", "tail", "meta", "len", "bytes"))
    sw = b.switch(op, bytes_blk)
    for value, blk in ((OP_HEAD, head), (OP_TAIL, tail), (OP_META, meta_blk),
                       (OP_LEN, length)):
        sw.add_case(c64(value), blk)

    b.position_at_end(head)  # XdpBuff.adjust_head
    metalen = b.sub(data, meta)
    new = b.add(data, off)
    with b.if_then(b.or_(b.icmp_signed("<", new, b.add(c64(XDP_FRAME_SIZE), metalen)),
                         b.icmp_signed(">", new, b.sub(end, c64(ETH_HLEN))))):
        b.ret(einval)
    b.call(memmove, [at(b.add(meta, off)), at(meta), metalen, false])
    pkt.store(new, end, b.add(meta, off))
    b.ret(c64(0))

    b.position_at_end(tail)  # XdpBuff.adjust_tail
    state, frags_native, linear = pkt.frags()
    frag_tail, linear_tail, other, nope = (fn.append_basic_block(x) for x in
                                           ("frag_tail", "linear_tail", "other", "nope"))
    b.cbranch(frags_native, frag_tail, other)
    b.position_at_end(other)
    b.cbranch(linear, linear_tail, nope)
    b.position_at_end(nope)
    b.ret(c64(NOPE))

    b.position_at_end(frag_tail)  # _frags_shrink / _frags_grow on the lengths
    nbytes, kept = b.gep(state, [c64(F_BYTES)]), b.gep(state, [c64(F_KEPT)])
    total = b.load(nbytes)
    with b.if_else(b.icmp_signed("<", off, c64(0))) as (shrink_blk, grow_blk):
        with shrink_blk:
            cut = b.neg(off)
            with b.if_then(b.icmp_signed(">", cut, b.sub(b.add(b.sub(end, data), total),
                                                         c64(ETH_HLEN)))):
                b.ret(einval)
            with b.if_then(b.icmp_signed("<=", cut, total)):
                left = b.sub(total, cut)
                b.store(left, nbytes)
                old = b.load(kept)
                b.store(b.select(b.icmp_signed("<", left, old), left, old), kept)
                b.ret(c64(0))
            b.store(c64(0), nbytes)  # every fragment released: the rest off the linear part
            b.store(c64(0), kept)
            pkt.store(data, b.sub(end, b.sub(cut, total)), meta)
            b.ret(c64(0))
        with grow_blk:  # into the last fragment's page
            last = b.sub(total, b.mul(b.udiv(b.sub(total, c64(1)), c64(FRAG_SIZE)),
                                      c64(FRAG_SIZE)))
            with b.if_then(b.icmp_signed(">", off, b.sub(c64(FRAG_SIZE), last))):
                b.ret(einval)
            b.store(b.add(total, off), nbytes)
            b.ret(c64(0))
    b.unreachable()

    b.position_at_end(linear_tail)  # without fragments
    new = b.add(end, off)
    with b.if_then(b.or_(b.icmp_signed(">", new, c64(HARD_END)),
                         b.icmp_signed("<", new, b.add(data, c64(ETH_HLEN))))):
        b.ret(einval)
    with b.if_then(b.icmp_signed(">", off, c64(0))):
        b.call(memset, [at(end), ir.Constant(I8, 0), off, false])
    pkt.store(data, new, meta)
    b.ret(c64(0))

    b.position_at_end(meta_blk)  # XdpBuff.adjust_meta
    new = b.add(meta, off)
    with b.if_then(b.or_(b.icmp_signed("<", new, c64(XDP_FRAME_SIZE)),
                         b.icmp_signed(">", new, data))):
        b.ret(einval)
    metalen = b.sub(data, new)
    with b.if_then(b.or_(b.icmp_unsigned("!=", b.and_(metalen, c64(3)), c64(0)),
                         b.icmp_unsigned(">", metalen,
                                         b.load(_rt(b, rt, W_METALEN_MAX))))):
        b.ret(c64(-errno.EACCES))
    pkt.store(data, end, new)
    b.ret(c64(0))

    b.position_at_end(length)  # XdpBuff.buff_len
    state, frags_native, linear = pkt.frags()
    with b.if_then(frags_native):
        b.ret(b.add(b.sub(end, data), b.load(b.gep(state, [c64(F_BYTES)]))))
    with b.if_then(b.not_(linear)):
        b.ret(c64(NOPE))
    b.ret(b.sub(end, data))

    b.position_at_end(bytes_blk)  # xdp_load_bytes / xdp_store_bytes without fragments
    with b.if_then(b.not_(pkt.frags()[2])):
        b.ret(c64(NOPE))
    offset, n = b.and_(r2, c64(M32)), b.and_(r4, c64(M32))
    with b.if_then(b.or_(b.icmp_unsigned(">", offset, c64(XDP_POINTER_MAX)),
                         b.icmp_unsigned(">", n, c64(XDP_POINTER_MAX)))):
        b.ret(c64(-errno.EFAULT))
    with b.if_then(b.icmp_unsigned(">", b.add(offset, n), b.sub(end, data))):
        b.ret(einval)
    with b.if_then(b.icmp_unsigned("==", n, c64(0))):
        b.ret(c64(0))
    store = b.icmp_unsigned("==", op, c64(OP_STORE))
    buf = b.call(host_fn, [rt, r3, n, b.select(store, c64(F_LOAD), c64(F_STORE))])
    with b.if_then(b.icmp_unsigned("==", buf, c64(0))):
        b.ret(c64(NOPE))
    pkt_at = b.add(host, b.add(data, offset))
    src, dst = b.select(store, buf, pkt_at), b.select(store, pkt_at, buf)
    b.call(memmove, [b.inttoptr(dst, i8p), b.inttoptr(src, i8p), n, false])
    b.ret(c64(0))
    return fn


def packet_ir() -> str:
    """The LLVM IR of ``packet_helper`` (see the module docstring)."""
    module = ir.Module(name="bpf_packet")
    host, words = _host_fn(module), _words_fn(module)
    csum, adjust = _csum_fn(module, host, words), _adjust_fn(module, host)
    fn = ir.Function(module, ir.FunctionType(I64, [P64, I64] + [I64] * 5), "packet_helper")
    rt, op, r1, r2, r3, r4, r5 = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    is_csum, other = fn.append_basic_block("csum"), fn.append_basic_block("other")
    b.cbranch(b.icmp_unsigned("==", op, c64(OP_CSUM)), is_csum, other)
    b.position_at_end(is_csum)
    b.ret(b.call(csum, [rt, r1, r2, r3, r4, r5]))
    b.position_at_end(other)
    b.ret(b.call(adjust, [rt, op, r1, r2, r3, r4]))
    return str(module)


# --------------------------------------------------------------------------------------------
# the call sites
# --------------------------------------------------------------------------------------------

def _emitter(op: int) -> cg.NativeEmitter:
    def emit(f: Any, slot: int) -> None:
        """r0 = packet_helper(op, r1-r5) inside a batch chunk, else (or NOPE) the VM's."""
        b = f.b
        native, vm = f.block(f"s{slot}_pkt"), f.block(f"s{slot}_pkt_vm")
        b.cbranch(b.icmp_unsigned("!=", f.rt_load(W_ON), c64(0)), native, vm)
        b.position_at_end(native)
        f.call_native(slot, f.rt_load(W_FN), [c64(op)] + [f.reg(r) for r in range(1, 6)],
                      NOPE, vm=vm)
    return emit


for _name, _op in HELPER_OPS.items():
    cg.native_helper(_name)(_emitter(_op))


# --------------------------------------------------------------------------------------------
# the Python side
# --------------------------------------------------------------------------------------------

class PacketHelpers:
    """The family's rt words of one ``CompiledVm`` and the VM's view kept in step."""

    def __init__(self, vm: Any, fn_address: int) -> None:
        self.vm = vm
        rt = vm._rt
        rt[W_FN] = fn_address
        rt[W_MODE] = MODES.get(vm.env.csum_diff, MODE_UNKNOWN)
        rt[W_METALEN_MAX] = vm.env.metalen_max
        self.stop()

    def start(self, lens: Any) -> None:
        """A chunk runs: the native helpers answer (``lens``: the chunk's frame lengths,
        an int64 array)."""
        import numpy as np

        rt = self.vm._rt
        frags = np.maximum(lens - MAX_LINEAR, 0)
        self._frags = np.ascontiguousarray(np.stack([frags, frags, lens], axis=1),
                                           dtype=np.int64)
        rt[W_FRAGS] = self._frags.ctypes.data
        rt[W_MOVED] = 0
        rt[W_VIEW] = (1 << 64) - 1
        rt[W_ON] = 1

    def stop(self) -> None:
        """Every packet helper on the VM's handler again."""
        rt = self.vm._rt
        rt[W_ON] = rt[W_MOVED] = rt[W_FRAGS] = 0

    def tail(self, k: int, frame: bytes) -> bytes:
        """The fragments of chunk packet ``k`` (``frame``: the whole frame) as native
        code left them: the frame's bytes after the linear part, trimmed, then zeros."""
        nbytes, kept = int(self._frags[k, F_BYTES]), int(self._frags[k, F_KEPT])
        return frame[MAX_LINEAR:MAX_LINEAR + kept] + bytes(nbytes - kept)

    def pull(self) -> None:
        """The VM's ``XdpBuff`` of the running packet follows the native state: its
        fragments when its view was just built (from then on the VM's handler changes
        them), data / data_end / data_meta when native helpers moved them."""
        vm = self.vm
        rt = vm._rt
        xdp, b = vm.xdp, vm._batch
        if not rt[W_ON] or xdp is None or b is None:
            return
        k = rt[cg.RT_CUR]
        if rt[W_VIEW] != k:
            rt[W_VIEW] = k
            if xdp.frags:
                flat = self.tail(k, b.chunk[k])
                xdp.frags = [bytearray(flat[i:i + FRAG_SIZE])
                             for i in range(0, len(flat), FRAG_SIZE)]
        if not rt[W_MOVED]:
            return
        rt[W_MOVED] = 0
        base = vm._packet_region.base
        xdp.data = rt[cg.RT_CTX_VALS] - base
        xdp.data_end = rt[cg.RT_CTX_VALS + 1] - base
        xdp.data_meta = rt[cg.RT_CTX_VALS + 2] - base
        xdp.attach(vm._packet_region, vm._ctx_region)
