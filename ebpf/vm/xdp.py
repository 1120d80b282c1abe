"""XDP: the packet frame, ``struct xdp_md``, the adjust helpers' arithmetic, and ``run_xdp``.

The frame is laid out as the kernel's BPF_PROG_TEST_RUN lays it out (net/bpf/test_run.c,
``bpf_prog_test_run_xdp``): one zeroed buffer of ``frame_sz`` = 4096 bytes (PAGE_SIZE);
``XDP_PACKET_HEADROOM`` (256) bytes of headroom, the packet, then free space up to the
reserved tail, ``SKB_DATA_ALIGN(sizeof(struct skb_shared_info))`` = 320 bytes on x86-64.
So the packet may grow by ``adjust_tail`` until it is 4096 - 256 - 320 = 3520 bytes long.
A longer packet is split as test_run splits it: the first 3520 bytes are the linear part
the program sees between data and data_end, the rest goes into page-sized (4096-byte)
fragments, reachable through bpf_xdp_load_bytes / store_bytes, counted by
bpf_xdp_get_buff_len, trimmed or grown by bpf_xdp_adjust_tail and copied out after the
linear part (multi-buffer XDP, net/core/filter.c ``bpf_xdp_frags_*_tail``).
Metadata supplied by the caller (the test_run ``ctx_in`` form with ``data = len(meta)``)
sits directly before ``data``, taken from the headroom.

``struct xdp_md`` is six u32 fields: data, data_end, data_meta, ingress_ifindex,
rx_queue_index, egress_ifindex. The verifier only lets XDP programs read them, 4 bytes at a
4-byte-aligned offset (``xdp_is_valid_access``), and rewrites loads of the first three into
loads of the 64-bit ``xdp_buff`` pointers: here a load of ``ctx->data`` yields the synthetic
64-bit address of the packet data. ``egress_ifindex`` is only readable by devmap programs
(``BPF_XDP_DEVMAP`` attach type), which test_run refuses; the VM returns the configured value
(0 by default) instead of rejecting the load.

Output, as BPF_PROG_TEST_RUN returns it: whatever the verdict (DROP and ABORTED included),
``data_out`` is the bytes from ``data_meta`` to ``data_end`` after the program's adjustments
(``size = xdp.data_end - xdp.data_meta``; ``bpf_test_finish(..., xdp.data_meta, ...)``), so it
begins with the metadata when there is any. ``XdpResult.packet_out`` is exactly that;
``XdpResult.packet`` drops the ``meta_len`` metadata bytes. The verdict is r0 truncated to
u32, reported as is even when it is not one of the five actions (test_run's ``retval``);
a real driver would treat an unknown action as XDP_ABORTED (``bpf_warn_invalid_xdp_action``).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ebpf.errors import VmError
from ebpf.loader.program import non_xdp_reason
from ebpf.vm.memory import Memory, Region, RegionKind
from ebpf.vm.trace import Redirect, Trace

if TYPE_CHECKING:
    from ebpf.vm.machine import Vm

XDP_ABORTED = 0
XDP_DROP = 1
XDP_PASS = 2
XDP_TX = 3
XDP_REDIRECT = 4
VERDICT_NAMES = {XDP_ABORTED: "XDP_ABORTED", XDP_DROP: "XDP_DROP", XDP_PASS: "XDP_PASS",
                 XDP_TX: "XDP_TX", XDP_REDIRECT: "XDP_REDIRECT"}

XDP_PACKET_HEADROOM = 256
TEST_RUN_FRAME_SIZE = 4096  # PAGE_SIZE: frame_sz of the buffer test_run builds
SKB_SHARED_INFO_SIZE = 320  # SKB_DATA_ALIGN(sizeof(struct skb_shared_info)), x86-64
XDP_FRAME_SIZE = 40  # sizeof(struct xdp_frame): reserved at data_hard_start
ETH_HLEN = 14
XDP_MD_SIZE = 24
# xdp_metalen_invalid(): 4-byte aligned and at most type_max(skb_shared_info.meta_len) = 255
# since Linux 6.3 ("net, xdp: allow metadata > 32"); 32 before that.
XDP_METALEN_MAX = 255
ENOTSUPP = 524  # kernel-internal errno returned by adjust_meta when metadata is unsupported

FRAG_SIZE = 4096  # PAGE_SIZE: test_run's fragment pages and rxq frag_size
XDP_MD_FIELDS = ("data", "data_end", "data_meta", "ingress_ifindex", "rx_queue_index",
                 "egress_ifindex")


class XdpBuff:
    """The kernel's ``struct xdp_buff`` for one packet: offsets into one frame buffer.

    ``data_meta``, ``data`` and ``data_end`` are offsets from ``data_hard_start`` (offset 0).
    The adjust methods return 0 or a negative errno exactly as the kernel helpers do and keep
    the packet region's accessible window equal to ``[data_meta, data_end)``.
    """

    def __init__(self, packet: bytes, *, meta: bytes = b"", ingress_ifindex: int = 1,
                 rx_queue_index: int = 0, egress_ifindex: int = 0,
                 frame_size: int = TEST_RUN_FRAME_SIZE,
                 shared_info_size: int = SKB_SHARED_INFO_SIZE,
                 metalen_max: int = XDP_METALEN_MAX) -> None:
        self.metalen_max = metalen_max
        if len(packet) < ETH_HLEN:
            raise VmError(f"packet of {len(packet)} bytes is shorter than ETH_HLEN {ETH_HLEN} "
                          f"(BPF_PROG_TEST_RUN returns -EINVAL)")
        if len(meta) % 4 or len(meta) > metalen_max:
            raise VmError(f"metadata of {len(meta)} bytes is invalid: it must be a multiple of "
                          f"4 and at most {metalen_max} (BPF_PROG_TEST_RUN returns -EINVAL)")
        self.frame_size = frame_size
        self.hard_end = frame_size - shared_info_size  # xdp_data_hard_end()
        self.data = XDP_PACKET_HEADROOM
        max_len = self.hard_end - self.data
        rest = packet[max_len:]
        packet = packet[:max_len]
        self.frags = [bytearray(rest[i:i + FRAG_SIZE]) for i in range(0, len(rest), FRAG_SIZE)]
        self.frame = bytearray(frame_size)
        self.data_meta = self.data - len(meta)
        self.data_end = self.data + len(packet)
        self.frame[self.data_meta:self.data] = meta
        self.frame[self.data:self.data_end] = packet
        self.ingress_ifindex = ingress_ifindex
        self.rx_queue_index = rx_queue_index
        self.egress_ifindex = egress_ifindex
        self.region: Region | None = None
        self.ctx_region: Region | None = None

    # -- memory ----------------------------------------------------------------------------

    def map_into(self, mem: Memory) -> tuple[Region, Region]:
        """Map the frame and the context into ``mem``; returns (packet, ctx) regions."""
        self.region = mem.add(RegionKind.PACKET, "packet", self.frame, lo=self.data_meta,
                              hi=self.data_end, origin=self.data, atomic_ok=False)
        self.ctx_region = mem.add(
            RegionKind.CTX, "ctx", bytearray(XDP_MD_SIZE), load_hook=self._ctx_load,
            store_error="write to xdp_md: the context is read-only to XDP programs",
            atomic_ok=False)
        return self.region, self.ctx_region

    def attach(self, packet_region: Region, ctx_region: Region) -> None:
        """Reuse existing regions (one per VM) for this packet."""
        packet_region.buf = self.frame
        packet_region.origin = self.data
        ctx_region.load_hook = self._ctx_load
        self.region = packet_region
        self.ctx_region = ctx_region
        self._sync()

    def _sync(self) -> None:
        if self.region is not None:
            self.region.lo = self.data_meta
            self.region.hi = self.data_end
            self.region.origin = self.data

    def pointer(self, off: int) -> int:
        assert self.region is not None
        return self.region.base + off

    def _ctx_load(self, off: int, size: int) -> int:
        """A load from ``struct xdp_md``: 4 bytes, aligned; pointers come back 64-bit."""
        if size != 4 or off % 4:
            raise VmError(f"invalid xdp_md access: {size}-byte load at offset {off} "
                          f"(only aligned 4-byte loads are allowed)")
        name = XDP_MD_FIELDS[off // 4]
        if name == "data":
            return self.pointer(self.data)
        if name == "data_end":
            return self.pointer(self.data_end)
        if name == "data_meta":
            return self.pointer(self.data_meta)
        return getattr(self, name) & 0xFFFFFFFF

    # -- helpers (net/core/filter.c) -------------------------------------------------------

    @property
    def metalen(self) -> int:
        return self.data - self.data_meta

    def adjust_head(self, offset: int) -> int:
        """bpf_xdp_adjust_head: move ``data`` by ``offset`` (negative grows the packet).

        The new data must stay >= data_hard_start + sizeof(struct xdp_frame) + metalen and
        <= data_end - ETH_HLEN, else -EINVAL. Metadata moves with data (memmove), so
        ``data_meta`` shifts by the same offset. Grown headroom is not cleared (test_run's
        buffer starts zeroed).
        """
        metalen = self.metalen
        data = self.data + offset
        if data < XDP_FRAME_SIZE + metalen or data > self.data_end - ETH_HLEN:
            return -errno.EINVAL
        if metalen:
            self.frame[self.data_meta + offset:self.data_meta + offset + metalen] = \
                self.frame[self.data_meta:self.data]
        self.data_meta += offset
        self.data = data
        self._sync()
        return 0

    def adjust_meta(self, offset: int) -> int:
        """bpf_xdp_adjust_meta: move ``data_meta`` by ``offset``.

        -EINVAL when the new meta is below data_hard_start + sizeof(struct xdp_frame) or
        above data; -EACCES when the resulting metadata length is not a multiple of 4 or
        exceeds ``metalen_max`` (255 on current kernels, 32 before 6.3).
        """
        meta = self.data_meta + offset
        if meta < XDP_FRAME_SIZE or meta > self.data:
            return -errno.EINVAL
        metalen = self.data - meta
        if metalen % 4 or metalen > self.metalen_max:
            return -errno.EACCES
        self.data_meta = meta
        self._sync()
        return 0

    def adjust_tail(self, offset: int) -> int:
        """bpf_xdp_adjust_tail: move ``data_end`` by ``offset``.

        -EINVAL when the new end passes the frame's hard end (frame_sz minus the reserved
        skb_shared_info) or leaves fewer than ETH_HLEN bytes after ``data``. Growth zeroes
        the new bytes (``memset(xdp->data_end, 0, offset)``). With fragments the tail of the
        last fragment moves instead (see ``_frags_shrink`` / ``_frags_grow``).
        """
        if self.frags:
            return self._frags_shrink(-offset) if offset < 0 else self._frags_grow(offset)
        data_end = self.data_end + offset
        if data_end > self.hard_end or data_end < self.data + ETH_HLEN:
            return -errno.EINVAL
        if offset > 0:
            self.frame[self.data_end:data_end] = bytes(offset)
        self.data_end = data_end
        self._sync()
        return 0

    def _frags_shrink(self, offset: int) -> int:
        """bpf_xdp_frags_shrink_tail: trim ``offset`` bytes from the last fragments.

        -EINVAL when fewer than ETH_HLEN bytes would remain in all. Emptied fragments are
        released; once none is left, the rest of ``offset`` comes off the linear part.
        """
        if offset > self.buff_len() - ETH_HLEN:
            return -errno.EINVAL
        while self.frags and offset > 0:
            last = self.frags[-1]
            shrink = min(offset, len(last))
            offset -= shrink
            if shrink == len(last):
                self.frags.pop()
            else:
                del last[len(last) - shrink:]
                break
        if not self.frags:
            self.data_end -= offset
            self._sync()
        return 0

    def _frags_grow(self, offset: int) -> int:
        """bpf_xdp_frags_increase_tail: zero-fill into the last fragment's page, -EINVAL
        past it (test_run's rxq frag_size is the 4096-byte page)."""
        last = self.frags[-1]
        if offset > FRAG_SIZE - len(last):
            return -errno.EINVAL
        last.extend(bytes(offset))
        return 0

    def buff_len(self) -> int:
        """xdp_get_buff_len: the linear part plus every fragment."""
        return self.data_end - self.data + sum(len(f) for f in self.frags)

    def read_bytes(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (counted from data) across linear part and frags."""
        return bytes(self._flat()[offset:offset + length])

    def write_bytes(self, offset: int, data: bytes) -> None:
        linear = self.data_end - self.data
        for i, byte in enumerate(data):
            at = offset + i
            if at < linear:
                self.frame[self.data + at] = byte
                continue
            at -= linear
            for frag in self.frags:
                if at < len(frag):
                    frag[at] = byte
                    break
                at -= len(frag)

    def _flat(self) -> bytes:
        return bytes(self.frame[self.data:self.data_end]) + b"".join(self.frags)

    def output(self) -> bytes:
        """What BPF_PROG_TEST_RUN copies out: data_meta .. data_end, then the fragments."""
        return bytes(self.frame[self.data_meta:self.data_end]) + b"".join(self.frags)


@dataclass
class XdpResult:
    """One packet through an XDP program, as BPF_PROG_TEST_RUN would report it."""

    verdict: int
    packet_out: bytes  # data_meta .. data_end (test_run's data_out)
    meta_len: int = 0
    redirect: Redirect | None = None
    trace: Trace = field(default_factory=lambda: Trace(program=""))

    @property
    def packet(self) -> bytes:
        """The packet from data to data_end, without metadata."""
        return self.packet_out[self.meta_len:]

    @property
    def meta(self) -> bytes:
        """The metadata in front of the packet (data_meta .. data)."""
        return self.packet_out[:self.meta_len]

    @property
    def verdict_name(self) -> str:
        return VERDICT_NAMES.get(self.verdict, f"unknown({self.verdict})")


def run_xdp(vm: Vm, packet: bytes, ingress_ifindex: int = 1, rx_queue: int = 0, *,
            egress_ifindex: int = 0, meta: bytes = b"") -> XdpResult:
    """Run ``vm``'s program on one packet as BPF_PROG_TEST_RUN does (no live redirect).

    ``ingress_ifindex`` defaults to 1 and ``rx_queue`` to 0: test_run's default rx queue is
    the loopback device's queue 0. The redirect target is reported only for XDP_REDIRECT.
    A program of another type, or from a section the kernel does not know, is refused
    (VmError with the reason), as BPF_PROG_TEST_RUN with an xdp_md would refuse it.
    """
    reason = non_xdp_reason(vm.program)
    if reason is not None:
        raise VmError(reason)
    buff = XdpBuff(bytes(packet), meta=bytes(meta), ingress_ifindex=ingress_ifindex,
                   rx_queue_index=rx_queue, egress_ifindex=egress_ifindex,
                   metalen_max=vm.env.metalen_max)
    trace = vm.run_xdp_buff(buff)
    verdict = trace.ret & 0xFFFFFFFF
    trace.verdict = verdict
    trace.packet_out = buff.output()
    if verdict != XDP_REDIRECT:
        trace.redirect = None
    return XdpResult(verdict, trace.packet_out, buff.metalen, trace.redirect, trace)
