"""What a kernel test run gives back, and the errors of the kernel bridge.

XDP test runs (``test_run``), as net/bpf/test_run.c (bpf_prog_test_run_xdp) has them; the
numbers are what kernel 6.18 does here (older kernels are stricter where noted):

- data_in is at least 14 bytes (ETH_HLEN). At most 4096 - 256 (headroom) - 320
  (skb_shared_info) = 3520 bytes are linear, the rest goes to fragments: an xdp.frags program
  sees the whole length through bpf_xdp_get_buff_len, any other program only the linear
  part (data_end - data), yet data_out holds every byte.
- ``struct xdp_md`` as ctx_in: ``data_meta`` must be 0; ``data`` is the metadata length,
  the first ``data`` bytes of data_in (a multiple of 4; at most 32 before 6.x, 216 = the
  headroom minus struct xdp_frame on 6.18); ``data_end`` may not pass the end of data_in
  (6.18 takes a shorter one as the linear length, the rest becoming fragments; older
  kernels demand equality); ``egress_ifindex`` must be 0. ``ingress_ifindex`` 0 keeps the
  loopback device's queue 0, so the program still reads ingress_ifindex 1; otherwise it
  names a device of this network namespace (ENODEV if none) and ``rx_queue_index`` must be
  one of its registered rx queues; a queue index without a device is EINVAL. A ctx_in
  longer than struct xdp_md must be zeros past it (E2BIG), a shorter one is zero-extended.
- ctx_out gives ``data`` / ``data_end`` back relative to data_meta, which is how
  ``RunResult`` splits data_out into ``meta_out`` and ``data_out``.
- with ``repeat`` > 1 the program runs again on the same buffer: packet rewrites, head / tail
  adjustments and map updates accumulate, and data_out is the state after the last run;
  ``duration`` is the kernel's average per run in ns (an integer).
"""

from __future__ import annotations

import errno as errno_mod
import os
import struct
from dataclasses import dataclass

from ebpf.errors import KernelError

ETH_HLEN = 14
DATA_OUT_SLACK = 4096  # data_out room beyond the input, for programs that grow the packet


class KernelLoadError(KernelError):
    """The object did not load: ``log`` holds the verifier log of the rejected program (or
    libbpf's messages when no program was rejected), ``program`` its name or None."""

    def __init__(self, message: str, log: str = "", program: str | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.program = program


class KernelCallError(KernelError):
    """A bpf(2) operation failed: ``errno`` is the positive Linux errno."""

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


def errno_text(err: int) -> str:
    return f"{errno_mod.errorcode.get(err, str(err))} ({os.strerror(err)})"


@dataclass(frozen=True)
class XdpMd:
    """struct xdp_md as BPF_PROG_TEST_RUN takes it (ctx_in) and gives it back (ctx_out).

    Offsets are relative to the start of data_in / data_out: ``data`` is the metadata
    length, ``data_end`` the end of the linear packet.
    """

    data: int = 0
    data_end: int = 0
    data_meta: int = 0
    ingress_ifindex: int = 0
    rx_queue_index: int = 0
    egress_ifindex: int = 0

    _FORMAT = struct.Struct("<6I")
    SIZE = _FORMAT.size  # 24

    def pack(self) -> bytes:
        return self._FORMAT.pack(self.data, self.data_end, self.data_meta,
                                 self.ingress_ifindex, self.rx_queue_index,
                                 self.egress_ifindex)

    @classmethod
    def unpack(cls, raw: bytes) -> XdpMd:
        return cls(*cls._FORMAT.unpack(raw[: cls.SIZE].ljust(cls.SIZE, b"\0")))


@dataclass(frozen=True)
class RunResult:
    """One BPF_PROG_TEST_RUN: the verdict, the packet after the program, the kernel's
    timing. ``data_out`` is the packet from ``data`` on (fragments included), ``meta_out``
    the metadata in front of it; ``duration_ns`` the kernel's average per run in ns."""

    retval: int
    data_out: bytes
    duration_ns: int
    meta_out: bytes = b""
    ctx_out: XdpMd | None = None
    repeat: int = 1


@dataclass(frozen=True)
class ProgInfo:
    """What the kernel says of a loaded program (struct bpf_prog_info).

    Lengths are bytes: ``xlated_prog_len`` of the instructions after verification and
    rewriting, ``jited_prog_len`` of the native code (0 with the JIT off); ``insn_cnt`` is
    xlated_prog_len / 8; ``verified_insns`` the instructions the verifier processed.
    """

    name: str
    id: int
    tag: str
    xlated_prog_len: int
    jited_prog_len: int
    insn_cnt: int
    verified_insns: int
    nr_map_ids: int


def test_run_hint(err: int, data_in: bytes, ctx_in: bytes) -> str:
    """Which bpf_prog_test_run_xdp rule a failed run most likely broke, in the kernel's
    order of checks (ctx, then the data, then the device)."""
    md = XdpMd.unpack(ctx_in)
    if err == errno_mod.ENODEV:
        return f"no device with ingress_ifindex {md.ingress_ifindex} in this network namespace"
    if err != errno_mod.EINVAL:
        return ""
    if md.data_meta:
        return f"ctx data_meta must be 0, got {md.data_meta}"
    if md.data_end > len(data_in):
        return f"ctx data_end {md.data_end} is beyond the data_in length {len(data_in)}"
    if md.data > md.data_end:
        return f"ctx data {md.data} is beyond data_end {md.data_end}"
    if md.data % 4 or md.data > 32:
        return (f"metadata of {md.data} bytes: must be a multiple of 4 and fit the headroom "
                f"(32 bytes before 6.x, 216 on 6.18)")
    if len(data_in) < ETH_HLEN:
        return f"data_in of {len(data_in)} bytes: the kernel needs at least {ETH_HLEN}"
    if md.egress_ifindex:
        return f"ctx egress_ifindex must be 0, got {md.egress_ifindex}"
    if md.rx_queue_index and not md.ingress_ifindex:
        return f"rx_queue_index {md.rx_queue_index} needs an ingress_ifindex"
    if md.rx_queue_index:
        return (f"rx_queue_index {md.rx_queue_index} is not a registered rx queue of "
                f"ifindex {md.ingress_ifindex}")
    return ""
