"""Output helpers: trace_printk formatting, perf event output and ring buffers."""


from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from ebpf.errors import VmError
from ebpf.helpers.core import BPF_F_CTXLEN_MASK, MAX_BPRINTF_BUF, helper, map_kind, xdp_of
from ebpf.vm.limits import M32

if TYPE_CHECKING:
    from ebpf.vm.machine import Vm


# --------------------------------------------------------------------------------------------
# output: trace_printk, perf events, ring buffers
# --------------------------------------------------------------------------------------------

def format_printk(fmt: bytes, args: list[int], read_string: Callable[[int], bytes]) -> str:
    """bpf_bprintf_prepare + bstr_printf for the specifiers they accept.

    Plain text must be printable ASCII or whitespace (bytes >= 0x80 pass on new kernels).
    A conversion is ``%`` [flags ``0 +-``]... [width] then ``%``, ``c``, ``s``, ``p``
    (with ``K``/``x``/``B``/``s`` suffixes; IP forms ``pI4``/``pi4``/``pI6``/``pi6``), or
    [``l``|``ll``] ``d i u x X``. Without ``l`` the argument is a 32-bit int. Raises
    ValueError where the kernel returns -EINVAL. ``%p`` prints the raw value (the kernel
    hashes plain pointers, so those differ).
    """
    out: list[str] = []
    i = 0
    argi = 0
    n = len(fmt)

    def next_arg() -> int:
        nonlocal argi
        if argi >= len(args):
            raise ValueError("too many conversions")
        argi += 1
        return args[argi - 1]

    while i < n:
        c = fmt[i]
        if c < 0x80 and not (0x20 <= c < 0x7F or c in b" \t\n\v\f\r"):
            raise ValueError(f"byte 0x{c:02x} is not printable")
        if c != 0x25:  # '%'
            out.append(chr(c) if c < 0x80 else bytes([c]).decode("latin-1"))
            i += 1
            continue
        i += 1
        if i < n and fmt[i] == 0x25:
            out.append("%")
            i += 1
            continue
        start = i
        while i < n and fmt[i] in b"0+- ":
            i += 1
        while i < n and 0x30 <= fmt[i] <= 0x39:
            i += 1
        spec_flags = fmt[start:i].decode()
        if i >= n:
            raise ValueError("incomplete conversion")
        c = fmt[i]
        if c == ord("p"):
            i += 1
            value = next_arg()
            suffix = ""
            if i < n and fmt[i] in b"KxBs":
                suffix = chr(fmt[i])
                i += 1
            elif i + 1 < n and fmt[i] in b"iI" and fmt[i + 1] in b"46":
                suffix = chr(fmt[i]) + chr(fmt[i + 1])
                i += 2
            if suffix in ("I4", "i4", "I6", "i6"):
                raw = read_string_fixed(read_string, value, 4 if suffix[1] == "4" else 16)
                text = _format_ip(raw, suffix)
            else:
                text = f"{value:x}" if suffix == "x" else f"0x{value:x}"
            out.append(_pad(text, spec_flags))
            continue
        if c == ord("s"):
            i += 1
            out.append(_pad(read_string(next_arg()).decode("latin-1"), spec_flags))
            continue
        if c == ord("c"):
            i += 1
            out.append(_pad(chr(next_arg() & 0xFF), spec_flags))
            continue
        size = 32
        if c == ord("l"):
            size = 64
            i += 1
            if i < n and fmt[i] == ord("l"):
                i += 1
        if i >= n or fmt[i] not in b"diuxX":
            raise ValueError("unsupported conversion")
        conv = chr(fmt[i])
        i += 1
        value = next_arg() & ((1 << size) - 1)
        if conv in "di" and value >> (size - 1):
            value -= 1 << size
        pyconv = "d" if conv in "diu" else conv
        out.append(("%" + spec_flags + pyconv) % value)
    return "".join(out)


def read_string_fixed(read: Callable[[int], bytes], addr: int, size: int) -> bytes:
    data = read(addr)
    return data[:size].ljust(size, b"\0")


def _format_ip(raw: bytes, suffix: str) -> str:
    if suffix[1] == "4":
        if suffix[0] == "i":
            return ".".join(f"{b:03d}" for b in raw)
        return ".".join(str(b) for b in raw)
    if suffix[0] == "i":
        return raw.hex()
    return ":".join(raw[j:j + 2].hex() for j in range(0, 16, 2))


def _pad(text: str, spec_flags: str) -> str:
    width = int(spec_flags.lstrip("0+- ") or 0)
    return text.ljust(width) if "-" in spec_flags else text.rjust(width)


@helper("trace_printk", 5)
def trace_printk(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Format into Trace.printk; returns the text's length, or -EINVAL for a bad format."""
    fmt = vm.mem.read(r1, r2 & M32)
    nul = fmt.find(b"\0")
    if nul < 0:
        return -errno.EINVAL
    try:
        text = format_printk(fmt[:nul], [r3, r4, r5],
                             lambda addr: vm.mem.read_cstring(addr, MAX_BPRINTF_BUF))
    except (ValueError, VmError):
        return -errno.EINVAL
    text = text[:MAX_BPRINTF_BUF - 1]
    vm.trace.printk.append(text)
    return len(text.encode("latin-1"))


@helper("perf_event_output", 5)
def perf_event_output(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """bpf_xdp_event_output: data from memory, then ``flags >> 32`` packet bytes appended.

    -EINVAL for unknown flags, -EFAULT when the packet is shorter than the requested
    length, then the map's checks (index, slot, CPU).
    """
    m = vm.get_map(r2)
    if map_kind(m) != "perf_event_array":
        raise VmError(f"bpf_perf_event_output needs a perf_event_array, '{m.name}' is "
                      f"{map_kind(m)}")
    err = m.check_output_flags(r3)
    if err:
        return err
    ctx_len = (r3 & BPF_F_CTXLEN_MASK) >> 32
    data = vm.mem.read(r4, r5)
    if ctx_len:
        buff = xdp_of(vm, "perf_event_output")
        if ctx_len > buff.buff_len():
            return -errno.EFAULT
        data += buff.read_bytes(0, ctx_len)
    return m.output(data, r3, vm.env.cpu)


def _ringbuf(vm: Vm, addr: int, name: str):
    m = vm.get_map(addr)
    if map_kind(m) != "ringbuf":
        raise VmError(f"bpf_{name} needs a ringbuf map, '{m.name}' is {map_kind(m)}")
    return m


@helper("ringbuf_output", 4)
def ringbuf_output(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int:
    m = _ringbuf(vm, r1, "ringbuf_output")
    return m.output(vm.mem.read(r2, r3), r4, vm.env.cpu)


@helper("ringbuf_reserve", 3)
def ringbuf_reserve(vm: Vm, r1: int, r2: int, r3: int, *_: int) -> int:
    """A pointer to a zeroed sample of ``size`` bytes, or 0 (flags must be 0)."""
    m = _ringbuf(vm, r1, "ringbuf_reserve")
    sample = m.reserve(r2, r3, vm.env.cpu)
    if sample is None:
        return 0
    region = vm.mem.map_value(sample.data, m.name, None)
    vm.ringbuf_samples[region.base] = (m, sample)
    return region.base


def _ringbuf_commit(vm: Vm, addr: int, name: str, discard: bool) -> int:
    entry = vm.ringbuf_samples.pop(addr, None)
    if entry is None:
        raise VmError(f"bpf_{name}: 0x{addr:x} is not a reserved ring buffer sample")
    m, sample = entry
    (m.discard if discard else m.submit)(sample)
    return 0


@helper("ringbuf_submit", 2)
def ringbuf_submit(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return _ringbuf_commit(vm, r1, "ringbuf_submit", discard=False)


@helper("ringbuf_discard", 2)
def ringbuf_discard(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return _ringbuf_commit(vm, r1, "ringbuf_discard", discard=True)
