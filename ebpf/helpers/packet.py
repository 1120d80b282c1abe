"""XDP packet helpers (adjust head/meta/tail, buffer length, load/store bytes), redirects and
checksums [net/core/filter.c]."""


from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from ebpf.errors import VmError
from ebpf.helpers.core import (
    BPF_F_BROADCAST,
    BPF_F_EXCLUDE_INGRESS,
    REDIRECT_MAP_TYPES,
    XDP_ACTION_MASK,
    XDP_REDIRECT,
    helper,
    map_kind,
    s32,
    xdp_of,
)
from ebpf.vm.limits import M32, M64
from ebpf.vm.trace import Redirect

if TYPE_CHECKING:
    from ebpf.vm.machine import Vm


# --------------------------------------------------------------------------------------------
# XDP packet helpers
# --------------------------------------------------------------------------------------------

@helper("xdp_adjust_head", 2)
def xdp_adjust_head(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return xdp_of(vm, "xdp_adjust_head").adjust_head(s32(r2))


@helper("xdp_adjust_meta", 2)
def xdp_adjust_meta(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return xdp_of(vm, "xdp_adjust_meta").adjust_meta(s32(r2))


@helper("xdp_adjust_tail", 2)
def xdp_adjust_tail(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return xdp_of(vm, "xdp_adjust_tail").adjust_tail(s32(r2))


@helper("xdp_get_buff_len", 1)
def xdp_get_buff_len(vm: Vm, *_: int) -> int:
    return xdp_of(vm, "xdp_get_buff_len").buff_len()


def _xdp_pointer_check(buff, offset: int, length: int) -> int:
    """bpf_xdp_pointer's checks: -EFAULT past 0xffff, -EINVAL past the buffer, else 0."""
    if offset > 0xFFFF or length > 0xFFFF:
        return -errno.EFAULT
    if offset + length > buff.buff_len():
        return -errno.EINVAL
    return 0


@helper("xdp_load_bytes", 4)
def xdp_load_bytes(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int:
    """Copy len bytes at data + offset into buf; -EFAULT / -EINVAL as bpf_xdp_pointer."""
    buff = xdp_of(vm, "xdp_load_bytes")
    offset, length = r2 & M32, r4 & M32
    err = _xdp_pointer_check(buff, offset, length)
    if err:
        return err
    vm.mem.write(r3, buff.read_bytes(offset, length))
    return 0


@helper("xdp_store_bytes", 4)
def xdp_store_bytes(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int:
    """Copy len bytes from buf to data + offset; -EFAULT / -EINVAL as bpf_xdp_pointer."""
    buff = xdp_of(vm, "xdp_store_bytes")
    offset, length = r2 & M32, r4 & M32
    err = _xdp_pointer_check(buff, offset, length)
    if err:
        return err
    buff.write_bytes(offset, vm.mem.read(r3, length))
    return 0


# --------------------------------------------------------------------------------------------
# redirect
# --------------------------------------------------------------------------------------------

@helper("redirect", 2)
def redirect(vm: Vm, r1: int, r2: int, *_: int) -> int:
    """bpf_xdp_redirect: any flag -> XDP_ABORTED; else remember ifindex, XDP_REDIRECT."""
    if r2:
        return 0  # XDP_ABORTED
    ifindex = r1 & M32
    vm.redirect_index = ifindex
    vm.trace.redirect = Redirect("ifindex", ifindex=ifindex)
    return XDP_REDIRECT


@helper("redirect_map", 3)
def redirect_map(vm: Vm, r1: int, r2: int, r3: int, *_: int) -> int:
    """bpf_xdp_redirect_map [__bpf_xdp_redirect_map in include/linux/filter.h].

    Flags outside the action mask (the low 2 bits) and the map type's flag mask
    (BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS for devmaps, none otherwise) -> XDP_ABORTED.
    The key is truncated to u32. On a miss without BPF_F_BROADCAST the result is
    ``flags & 3`` and the redirect state is cleared to the ifindex form with the previous
    target index (which an XDP_REDIRECT would then use, as the kernel does). With
    BPF_F_BROADCAST the result is XDP_REDIRECT to every entry of the map (recorded as kind
    ``broadcast``; the VM does not expand it per entry).
    """
    m = vm.get_map(r1)
    kind = map_kind(m)
    if kind not in REDIRECT_MAP_TYPES:
        raise VmError(f"bpf_redirect_map on {kind} map '{m.name}' (the verifier rejects it)")
    flags = r3
    flag_mask = BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS if kind.startswith("devmap") else 0
    if flags & ~(XDP_ACTION_MASK | flag_mask):
        return 0  # XDP_ABORTED
    key = r2 & M32
    target = m.redirect_target(key)
    broadcast = bool(flags & BPF_F_BROADCAST)
    vm.record_map_op(m.name, "lookup", key.to_bytes(4, "little"), hit=target is not None,
                     write=False)
    if target is None and not broadcast:
        vm.trace.redirect = Redirect("ifindex", ifindex=vm.redirect_index)
        return flags & XDP_ACTION_MASK
    vm.redirect_index = key
    vm.trace.redirect = Redirect(
        "broadcast" if broadcast else "map", map=m.name, key=key, map_type=kind,
        ifindex=target if kind.startswith("devmap") else None,
        target=target, flags=flags & flag_mask)
    return XDP_REDIRECT


# --------------------------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------------------------

def csum_partial(data: bytes, seed: int) -> int:
    """x86-64 ``csum_partial`` (arch/x86/lib/csum-partial_64.c): the 32-bit result.

    A 64-bit ones'-complement sum (add with end-around carry) of the little-endian u64
    words of ``data``, the last one zero-padded, starting from ``seed``; then
    ``csum_finalize_sum`` folds it to 32 bits: hi + lo with end-around carry. The value is
    unique given the sum modulo 2**32 - 1 and is 0 only when seed and data are all zero, so
    neither the summation order nor the older x86 implementation changes it.
    """
    total = seed & M32
    pad = -len(data) % 8
    for (word,) in struct.iter_unpack("<Q", data + bytes(pad)):
        total += word
    while total >> 64:
        total = (total & M64) + (total >> 64)
    folded = (total & M32) + (total >> 32)
    return (folded & M32) + (folded >> 32)


def csum_add(csum: int, addend: int) -> int:
    """include/net/checksum.h csum_add: 32-bit add with end-around carry."""
    res = (csum + addend) & M32
    return (res + (res < addend)) & M32


def csum_sub(csum: int, addend: int) -> int:
    return csum_add(csum, ~addend & M32)


def csum_from32to16(value: int) -> int:
    """Fold 32 bits to 16 with end-around carry (no final inversion, unlike csum_fold)."""
    value = (value & 0xFFFF) + (value >> 16)
    return ((value & 0xFFFF) + (value >> 16)) & 0xFFFF


def csum_diff(from_data: bytes, to_data: bytes, seed: int, mode: str = "fold16") -> int:
    """The value bpf_csum_diff returns (as an unsigned register value, or negative errno).

    ``fold16`` (Linux >= 6.13, "bpf_csum_diff: optimize and homogenize for all archs"):
    both non-empty: csum_sub(csum_partial(to, seed), csum_partial(from, 0)); only to:
    csum_partial(to, seed); only from: ~csum_partial(from, ~seed); neither: seed; the result
    goes through csum_from32to16. No size restrictions.

    ``x86_unfolded`` (older kernels): sizes must be multiples of 4 and total <= 512 bytes,
    else -EINVAL; result csum_partial(~from words ++ to words, seed) as a u32, unfolded.
    """
    seed &= M32
    if mode == "fold16":
        ret = seed
        if from_data and to_data:
            ret = csum_sub(csum_partial(to_data, ret), csum_partial(from_data, 0))
        elif to_data:
            ret = csum_partial(to_data, ret)
        elif from_data:
            ret = ~csum_partial(from_data, ~ret & M32) & M32
        return csum_from32to16(ret)
    if mode == "x86_unfolded":
        if (len(from_data) | len(to_data)) & 3 or len(from_data) + len(to_data) > 512:
            return -errno.EINVAL
        inverted = bytes(b ^ 0xFF for b in from_data)
        return csum_partial(inverted + to_data, seed)
    raise VmError(f"unknown csum_diff mode {mode!r} (fold16 or x86_unfolded)")


@helper("csum_diff", 5)
def bpf_csum_diff(vm: Vm, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    from_data = vm.mem.read(r1, r2 & M32)
    to_data = vm.mem.read(r3, r4 & M32)
    return csum_diff(from_data, to_data, r5, vm.env.csum_diff)
