"""Many packets per native call: the batch driver and the Python side of a batch.

``driver_ir()`` is one LLVM function, the same for every program: ``i64 batch(i64 *rt,
i64 *desc)`` runs packets ``desc[START] ..`` of a chunk through the program function at
``desc[PROG]``, each as ``ebpf.vm.xdp.run_xdp`` would set it up (a zeroed 4096-byte frame,
the packet at the 256-byte headroom, ``xdp_md`` pointing at it, ingress ifindex 1, rx queue
0, registers zero but r1 = the context and r10 = the top of a zeroed stack; the clock map's
u64 set to the packet's time when the program reads the clock) and stores its
verdict, output bytes (``data_meta .. data_end``) and metadata length. A tail call
returns SWITCH after the VM's handler switched programs (the packet's view is built: the
handler ran, or the native ``ebpf.compiled.tailcall``) and put the target's native
function in ``rt[RT_TAIL + W_FN]``: the driver calls it with the same registers, as often as
the packet tail-calls. It stops at the first
packet whose function returns neither (an error) and says which.

Nothing comes back to Python for a packet that runs entirely natively. The first time a
packet calls back into the VM (a helper, a fault), ``CompiledVm`` builds the VM's view of
that packet from the native state (``materialize``: its ``XdpBuff`` on the shared frame,
a fresh trace, the per-run state reset, the clock set), so the VM's handler sees exactly
what it would have seen running the packet itself.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir

from ebpf.compiled import codegen as cg
from ebpf.compiled import tailcall
from ebpf.compiled.codegen import I8, I64, P64, c64
from ebpf.vm.limits import STACK_SIZE
from ebpf.vm.xdp import TEST_RUN_FRAME_SIZE, XDP_PACKET_HEADROOM

# desc[] layout (i64 words)
D_N, D_START, D_STOP, D_PKT_DATA, D_PKT_OFF, D_OUT, D_VERDICT, D_OUT_LEN, D_META_LEN = range(9)
D_FRAME_HOST, D_PKT_BASE, D_PKT_IDX, D_CTX_BASE, D_STACK_HOST, D_STACK_BASE = range(9, 15)
D_PROG, D_REGS, D_CLOCK_HOST, D_CLOCK_NS, D_OUT_POS, D_OUT_OFF = 15, 16, 17, 18, 19, 20
# paths (``Batch.record``): the log of path entries (0: not recorded), its next free word and
# size, and per packet the steps, where its entries start in the log and how many
D_PLOG, D_PLOG_POS, D_PLOG_CAP, D_STEPS, D_POFF, D_PLEN = range(21, 27)
D_WORDS = 27
FULL = 3
"""What the driver returns when the path log has no room for another packet's path
(``D_STOP``: the first packet not run)."""
PLOG_WORDS = 1 << 18
"""Words of the path log (2 MiB): a chunk stops early when it is full."""
OUT_STRIDE = TEST_RUN_FRAME_SIZE
"""At most this many bytes of output per packet: no packet outgrows its frame (the outputs
are packed one after the other, ``D_OUT_POS`` the next free byte)."""
MAX_LINEAR = TEST_RUN_FRAME_SIZE - XDP_PACKET_HEADROOM - 320
"""The linear part of a frame (``ebpf.vm.xdp``: 3520 bytes). A longer packet runs in the
batch on its first 3520 bytes, as the program sees it; the rest is its fragments, which
only helpers reach (the native adjust_tail changes their lengths, ``packethelpers``; the
others build the VM's view, fragments included), so the tail is appended to the output
as they left it. Runts run one at a time on the VM's own path."""


def driver_ir() -> str:
    """The LLVM IR of the batch driver (``batch``)."""
    module = ir.Module(name="bpf_batch")
    fnty = ir.FunctionType(I64, [P64, P64])
    fn = ir.Function(module, fnty, "batch")
    rt, desc = fn.args
    i8p = I8.as_pointer()
    memset = ir.Function(module, ir.FunctionType(ir.VoidType(), [i8p, I8, I64, ir.IntType(1)]),
                         "llvm.memset.p0i8.i64")
    memcpy = ir.Function(module, ir.FunctionType(ir.VoidType(), [i8p, i8p, I64,
                                                                 ir.IntType(1)]),
                         "llvm.memcpy.p0i8.p0i8.i64")
    entry, head, body, done, out, stop = (fn.append_basic_block(n) for n in
                                          ("entry", "head", "body", "done", "out", "stop"))
    b = ir.IRBuilder(entry)

    def word(base, k):
        return b.gep(base, [k if isinstance(k, ir.Value) else c64(k)])

    def load(base, k):
        return b.load(word(base, k))

    def ptr(value, ty=i8p):
        return b.inttoptr(value, ty)

    false = ir.Constant(ir.IntType(1), 0)
    counter = b.alloca(I64)
    status_at = b.alloca(I64)
    b.store(load(desc, D_START), counter)
    b.branch(head)

    b.position_at_end(head)
    i = b.load(counter)
    b.cbranch(b.icmp_unsigned("<", i, load(desc, D_N)), body, done)

    b.position_at_end(body)
    # no room in the path log for a whole path buffer: stop before this packet
    plog = load(desc, D_PLOG)
    roomy, stop_full = fn.append_basic_block("roomy"), fn.append_basic_block("full")
    full = b.and_(b.icmp_unsigned("!=", plog, c64(0)),
                  b.icmp_unsigned(">", b.add(load(desc, D_PLOG_POS), c64(cg.PATH_CAP)),
                                  load(desc, D_PLOG_CAP)))
    b.cbranch(full, stop_full, roomy)
    b.position_at_end(stop_full)
    b.store(i, word(desc, D_STOP))
    b.ret(c64(FULL))
    b.position_at_end(roomy)
    offs = ptr(load(desc, D_PKT_OFF), P64)
    start = load(offs, i)
    whole = b.sub(load(offs, b.add(i, c64(1))), start)
    length = b.select(b.icmp_unsigned(">", whole, c64(MAX_LINEAR)), c64(MAX_LINEAR), whole)
    frame_host = load(desc, D_FRAME_HOST)
    b.call(memset, [ptr(frame_host), ir.Constant(I8, 0), c64(TEST_RUN_FRAME_SIZE), false])
    data_host = b.add(frame_host, c64(XDP_PACKET_HEADROOM))
    b.call(memcpy, [ptr(data_host), ptr(b.add(load(desc, D_PKT_DATA), start)), length, false])
    # the packet region's table entry and the xdp_md values, as _sync_regions writes them
    table = ptr(load(rt, cg.RT_TABLE), P64)
    entry_at = b.mul(load(desc, D_PKT_IDX), c64(cg.ENTRY_WORDS))
    end_off = b.add(c64(XDP_PACKET_HEADROOM), length)
    for k, v in enumerate((frame_host, c64(XDP_PACKET_HEADROOM), end_off,
                           c64(cg.F_LOAD | cg.F_STORE))):
        b.store(v, word(table, b.add(entry_at, c64(k))))
    base = load(desc, D_PKT_BASE)
    data = b.add(base, c64(XDP_PACKET_HEADROOM))
    for k, v in enumerate((data, b.add(base, end_off), data, c64(1), c64(0), c64(0))):
        b.store(v, word(rt, cg.RT_CTX_VALS + k))
    clock = load(desc, D_CLOCK_HOST)
    set_clock, clock_done = fn.append_basic_block("clock"), fn.append_basic_block("clocked")
    b.cbranch(b.icmp_unsigned("!=", clock, c64(0)), set_clock, clock_done)
    b.position_at_end(set_clock)
    b.store(load(ptr(load(desc, D_CLOCK_NS), P64), i), ptr(clock, P64))
    b.branch(clock_done)
    b.position_at_end(clock_done)
    b.store(i, word(rt, cg.RT_CUR))
    b.store(c64(0), word(rt, cg.RT_STEPS))
    b.store(c64(0), word(rt, cg.RT_PATH_LEN))
    for w in (tailcall.W_VIEW, tailcall.W_COUNT, tailcall.W_FLUSHED, tailcall.W_PROG):
        b.store(c64(0), word(rt, cg.RT_TAIL + w))  # a packet's own tail-call state
    b.call(memset, [ptr(load(desc, D_STACK_HOST)), ir.Constant(I8, 0), c64(STACK_SIZE), false])
    regs = ptr(load(desc, D_REGS), P64)
    for r in range(11):
        b.store(c64(0), word(regs, r))
    b.store(load(desc, D_CTX_BASE), word(regs, 1))
    b.store(b.add(load(desc, D_STACK_BASE), c64(STACK_SIZE)), word(regs, 10))
    prog = b.inttoptr(load(desc, D_PROG), fnty.as_pointer())
    b.store(b.call(prog, [regs, rt]), status_at)
    switch, again, decide = (fn.append_basic_block(n) for n in ("switch", "again", "decide"))
    b.branch(switch)
    b.position_at_end(switch)
    b.cbranch(b.icmp_unsigned("==", b.load(status_at), c64(cg.SWITCH)), again, decide)
    b.position_at_end(again)  # a tail call: on in the target's function
    b.store(b.call(b.inttoptr(load(rt, cg.RT_TAIL + tailcall.W_FN), fnty.as_pointer()),
                   [regs, rt]), status_at)
    b.branch(switch)
    b.position_at_end(decide)
    status = b.load(status_at)
    b.cbranch(b.icmp_unsigned("==", status, c64(cg.EXIT)), out, stop)

    b.position_at_end(out)
    verdicts = ptr(load(desc, D_VERDICT), P64)
    b.store(b.and_(load(regs, 0), c64(0xFFFFFFFF)), word(verdicts, i))
    meta = b.sub(load(rt, cg.RT_CTX_VALS + 2), base)
    end = b.sub(load(rt, cg.RT_CTX_VALS + 1), base)
    n_out = b.sub(end, meta)
    pos = load(desc, D_OUT_POS)
    b.store(pos, word(ptr(load(desc, D_OUT_OFF), P64), i))
    b.store(b.add(pos, n_out), word(desc, D_OUT_POS))
    dst = b.add(load(desc, D_OUT), pos)
    b.call(memcpy, [ptr(dst), ptr(b.add(frame_host, meta)), n_out, false])
    b.store(n_out, word(ptr(load(desc, D_OUT_LEN), P64), i))
    b.store(b.sub(b.sub(load(rt, cg.RT_CTX_VALS), base), meta),
            word(ptr(load(desc, D_META_LEN), P64), i))
    # the packet's steps and the native part of its path, into the log
    logged, next_packet = fn.append_basic_block("logged"), fn.append_basic_block("next")
    b.cbranch(b.icmp_unsigned("!=", load(desc, D_PLOG), c64(0)), logged, next_packet)
    b.position_at_end(logged)
    b.store(load(rt, cg.RT_STEPS), word(ptr(load(desc, D_STEPS), P64), i))
    n_path, at = load(rt, cg.RT_PATH_LEN), load(desc, D_PLOG_POS)
    b.store(at, word(ptr(load(desc, D_POFF), P64), i))
    b.store(n_path, word(ptr(load(desc, D_PLEN), P64), i))
    b.call(memcpy, [ptr(b.add(load(desc, D_PLOG), b.mul(at, c64(8)))),
                    ptr(load(rt, cg.RT_PATH_PTR)), b.mul(n_path, c64(8)), false])
    b.store(b.add(at, n_path), word(desc, D_PLOG_POS))
    b.branch(next_packet)
    b.position_at_end(next_packet)
    b.store(b.add(i, c64(1)), counter)
    b.branch(head)

    b.position_at_end(stop)
    b.store(i, word(desc, D_STOP))
    b.ret(status)

    b.position_at_end(done)
    b.store(b.load(counter), word(desc, D_STOP))
    b.ret(c64(cg.EXIT))
    return str(module)


CHUNK = 4096
"""Packets per chunk (bounds the output buffer: CHUNK x OUT_STRIDE bytes)."""


class Batch:
    """The buffers of one VM's batches (allocated once) and the chunk being run."""

    def __init__(self) -> None:
        import ctypes

        import numpy as np

        self.desc = (ctypes.c_uint64 * D_WORDS)()
        self.out = np.zeros(CHUNK * OUT_STRIDE, dtype=np.uint8)
        self.verdict = np.zeros(CHUNK, dtype=np.int64)
        self.out_len = np.zeros(CHUNK, dtype=np.int64)
        self.meta_len = np.zeros(CHUNK, dtype=np.int64)
        self.out_off = np.zeros(CHUNK, dtype=np.int64)
        self.lens = np.zeros(0, dtype=np.int64)
        self.steps = np.zeros(CHUNK, dtype=np.int64)
        self.poff = np.zeros(CHUNK, dtype=np.int64)
        self.plen = np.zeros(CHUNK, dtype=np.int64)
        self.plog: Any = None  # allocated when paths are first recorded
        self.prefix: dict[int, list[int]] = {}
        """Per chunk packet: the path entries moved out of the native buffer by a callback
        (they come before the packet's entries in the log)."""
        d = self.desc
        d[D_OUT_OFF] = self.out_off.ctypes.data
        d[D_OUT], d[D_VERDICT] = self.out.ctypes.data, self.verdict.ctypes.data
        d[D_OUT_LEN], d[D_META_LEN] = self.out_len.ctypes.data, self.meta_len.ctypes.data
        self.chunk: list[bytes] = []
        self.first = 0  # index of chunk[0] in the caller's stream
        self.current = -1  # the packet whose VM state is built (materialized)
        self.traces: dict[int, Any] = {}
        self.paths: dict[int, list[int]] = {}
        """Per materialized chunk packet: its path entries after the entry 0 that went
        through the VM's ``path`` (the VM's view: tail calls' ``path_index`` count them)."""
        self.buffs: dict[int, Any] = {}  # the packets' XdpBuff, built on a callback

    def load(self, chunk: list[bytes], lens: Any, first: int, clock_ns: Any = None
             ) -> tuple[bytes, object]:
        """Point the descriptor at ``chunk`` (``lens``: an int64 array of its lengths;
        ``clock_ns``: a uint64 array of the chunk's clock values, when the program reads
        the clock); returns what must stay alive meanwhile."""
        import ctypes

        import numpy as np

        data = b"".join(chunk)
        offs = np.zeros(len(chunk) + 1, dtype=np.int64)
        np.cumsum(lens, out=offs[1:])
        self.lens = lens
        d = self.desc
        d[D_N] = len(chunk)
        d[D_OUT_POS] = 0
        d[D_PKT_DATA] = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
        d[D_PKT_OFF] = offs.ctypes.data
        if clock_ns is not None:
            d[D_CLOCK_NS] = clock_ns.ctypes.data
        self.chunk, self.first, self.current = chunk, first, -1
        self.traces, self.buffs, self.prefix, self.paths = {}, {}, {}, {}
        d[D_PLOG_POS] = 0
        return data, offs

    def record(self, on: bool) -> None:
        """Record each packet's steps and path (``D_PLOG``) from now on, or stop."""
        import numpy as np

        d = self.desc
        if on and self.plog is None:
            self.plog = np.zeros(PLOG_WORDS, dtype=np.uint64)
            d[D_STEPS], d[D_POFF] = self.steps.ctypes.data, self.poff.ctypes.data
            d[D_PLEN], d[D_PLOG_CAP] = self.plen.ctypes.data, PLOG_WORDS
        d[D_PLOG] = self.plog.ctypes.data if on else 0
