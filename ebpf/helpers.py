"""BPF helper functions, one small handler each, in a table keyed by helper id.

A handler is ``fn(vm, r1, r2, r3, r4, r5) -> int | None`` (registers as unsigned 64-bit
ints). It returns the value for r0 (a negative errno is sign-extended to 64 bits, as the
kernel's ``BPF_CALL_x`` wrappers return ``u64``), or None when it transferred control
itself (``tail_call``, ``loop``; see ``Vm.take_jump``). Names come from
``ebpf.kernel_enums``; ids not in ``HELPERS`` make the VM raise VmError naming the helper.

Determinism: time and randomness come from ``HelperEnv``: a clock that starts at
``clock_start_ns`` and advances ``clock_step_ns`` on every read, and ``random.Random(seed)``
for ``get_prandom_u32``. Two VMs with the same environment and the same packets produce the
same traces.

What is modelled, and how (kernel file in brackets):

- map_lookup/update/delete_elem [kernel/bpf/helpers.c]: keys and values are read from
  program memory with the map's sizes; lookup returns a pointer into the value (stable per
  entry) or 0; per-CPU maps use ``HelperEnv.cpu``. Operations the verifier forbids from a
  program (update or delete of fd maps and redirect maps, lookup in prog or perf arrays)
  raise VmError.
- csum_diff [net/core/filter.c]: see ``csum_diff``; the result differs between kernels.
- xdp_adjust_head/meta/tail, xdp_get_buff_len, xdp_load_bytes/store_bytes: ``ebpf.xdp``.
- redirect, redirect_map [net/core/filter.c]: record the target in the trace; see below.
- fib_lookup: against ``HelperEnv.routes``, see ``fib_lookup``.
- trace_printk: formats like bpf_bprintf_prepare + bstr_printf (the subset they accept);
  the text is captured in ``Trace.printk``; returns its length.
- perf_event_output, ringbuf_output/reserve/submit/discard: records go to the map's
  ``records`` (ebpf.maps).
- ktime_get_ns / boot / coarse / tai, jiffies64, get_prandom_u32, get_smp_processor_id,
  get_numa_node_id: from the environment.
- tail_call, loop: control transfer, implemented with the VM.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ebpf.errors import VmError
from ebpf.kernel_enums import HELPER_IDS, helper_name, map_type_name
from ebpf.trace import Redirect

if TYPE_CHECKING:
    from ebpf.vm import Vm

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

# include/uapi/linux/bpf.h
BPF_F_BROADCAST = 1 << 3
BPF_F_EXCLUDE_INGRESS = 1 << 4
BPF_F_INDEX_MASK = 0xFFFFFFFF
BPF_F_CTXLEN_MASK = 0xFFFFF << 32
BPF_MAX_LOOPS = 8 * 1024 * 1024
XDP_ACTION_MASK = 3  # XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX: redirect_map's miss action
XDP_REDIRECT = 4
MAX_BPRINTF_BUF = 1024
MAX_TRACE_PRINTK_ARGS = 3

# struct bpf_fib_lookup (64 bytes) and its return codes
AF_INET = 2
AF_INET6 = 10
BPF_FIB_LOOKUP_DIRECT = 1 << 0
BPF_FIB_LOOKUP_OUTPUT = 1 << 1
BPF_FIB_LOOKUP_SKIP_NEIGH = 1 << 2
BPF_FIB_LOOKUP_TBID = 1 << 3
BPF_FIB_LOOKUP_SRC = 1 << 4
BPF_FIB_LOOKUP_MARK = 1 << 5
BPF_FIB_LOOKUP_FLAGS = 0x3F
BPF_FIB_LKUP_RET_SUCCESS = 0
BPF_FIB_LKUP_RET_BLACKHOLE = 1
BPF_FIB_LKUP_RET_UNREACHABLE = 2
BPF_FIB_LKUP_RET_PROHIBIT = 3
BPF_FIB_LKUP_RET_NOT_FWDED = 4
BPF_FIB_LKUP_RET_FWD_DISABLED = 5
BPF_FIB_LKUP_RET_UNSUPP_LWT = 6
BPF_FIB_LKUP_RET_NO_NEIGH = 7
BPF_FIB_LKUP_RET_FRAG_NEEDED = 8
BPF_FIB_LKUP_RET_NO_SRC_ADDR = 9
FIB_LOOKUP_SIZE = 64

PERCPU_MAP_TYPES = frozenset({"percpu_hash", "percpu_array", "lru_percpu_hash"})
REDIRECT_MAP_TYPES = frozenset({"devmap", "devmap_hash", "cpumap", "xskmap"})
# map types a program may not update or delete in (check_map_func_compatibility)
NO_PROGRAM_WRITES = frozenset({"prog_array", "array_of_maps", "hash_of_maps", "devmap",
                               "devmap_hash", "cpumap", "xskmap", "perf_event_array",
                               "ringbuf"})
NO_PROGRAM_LOOKUP = frozenset({"prog_array", "perf_event_array", "ringbuf", "cpumap"})
READONLY_VALUE_TYPES = frozenset({"devmap", "devmap_hash", "xskmap"})


# --------------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------------

@dataclass
class Route:
    """One route for ``bpf_fib_lookup``: a prefix and what the kernel would find for it.

    ``dmac`` None means no valid neighbour entry (-> BPF_FIB_LKUP_RET_NO_NEIGH). ``kind``
    is ``unicast`` or one of ``blackhole``, ``unreachable``, ``prohibit``, ``throw``
    (-> NOT_FWDED), as the route types RTN_*. ``gateway`` replaces the destination address
    in the result, as the kernel does for gateway routes.
    """

    prefix: str
    ifindex: int
    smac: bytes = bytes(6)
    dmac: bytes | None = bytes(6)
    gateway: str | None = None
    mtu: int = 1500
    metric: int = 0
    src: str | None = None  # preferred source address (BPF_FIB_LOOKUP_SRC)
    kind: str = "unicast"

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.prefix, strict=False)


@dataclass
class HelperEnv:
    """Everything helpers read that is not in the program or the maps.

    ``csum_diff``: ``"fold16"`` (Linux >= 6.13: the result is folded to 16 bits with
    csum_from32to16, any sizes) or ``"x86_unfolded"`` (older x86-64 kernels: the unfolded
    32-bit csum_partial result, sizes multiples of 4 and at most 512 bytes in total).
    """

    cpu: int = 0
    num_cpus: int = 1
    numa_node: int = 0
    seed: int = 0
    clock_start_ns: int = 1_000_000_000
    clock_step_ns: int = 1_000
    boot_offset_ns: int = 0  # ktime_get_boot_ns - ktime_get_ns (time spent suspended)
    tai_offset_ns: int = 37_000_000_000  # TAI - UTC; ktime_get_tai_ns = clock + this
    hz: int = 250
    jiffies_start: int = (-300 * 250) & M32  # INITIAL_JIFFIES for HZ=250, as u64
    routes: list[Route | tuple] = field(default_factory=list)
    forwarding: bool = True  # IN_DEV_FORWARD on the lookup device
    csum_diff: str = "fold16"
    metalen_max: int = 255

    def get_routes(self) -> list[Route]:
        return [r if isinstance(r, Route) else Route(*r) for r in self.routes]


class HelperState:
    """Mutable helper state of one VM: the clock and the random generator."""

    def __init__(self, env: HelperEnv) -> None:
        self.env = env
        self.reads = 0
        self.rng = random.Random(env.seed)

    def now_ns(self) -> int:
        """The deterministic monotonic clock: advances ``clock_step_ns`` per read."""
        value = self.env.clock_start_ns + self.reads * self.env.clock_step_ns
        self.reads += 1
        return value & M64


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------

HelperFn = Callable[..., "int | None"]


@dataclass(frozen=True)
class HelperSpec:
    id: int
    name: str
    nargs: int
    fn: HelperFn


HELPERS: dict[int, HelperSpec] = {}


def helper(name: str, nargs: int) -> Callable[[HelperFn], HelperFn]:
    """Register ``fn`` as the handler of the helper called ``name`` (kernel_enums name)."""
    def register(fn: HelperFn) -> HelperFn:
        hid = HELPER_IDS[name]
        HELPERS[hid] = HelperSpec(hid, name, nargs, fn)
        return fn
    return register


def get_helper(helper_id: int) -> HelperSpec:
    spec = HELPERS.get(helper_id)
    if spec is None:
        raise VmError(f"helper {helper_id} (bpf_{helper_name(helper_id)}) is not implemented "
                      f"by the VM")
    return spec


def _s32(value: int) -> int:
    value &= M32
    return value - (1 << 32) if value & 0x80000000 else value


def _type(m: Any) -> str:
    return map_type_name(m.defn.type) or f"type_{m.defn.type}"


def _xdp(vm: Vm, name: str):
    if vm.xdp is None:
        raise VmError(f"bpf_{name} needs an XDP context (run the program with run_xdp)")
    return vm.xdp


# --------------------------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------------------------

@helper("map_lookup_elem", 2)
def map_lookup_elem(vm: Vm, r1: int, r2: int, *_: int) -> int:
    """Pointer to the value (stable per entry), an inner map's pointer, or 0 on a miss."""
    m = vm.get_map(r1)
    kind = _type(m)
    if kind in NO_PROGRAM_LOOKUP:
        raise VmError(f"bpf_map_lookup_elem on {kind} map '{m.name}' is not allowed from a "
                      f"program (the verifier rejects it)")
    key = vm.mem.read(r2, m.key_size)
    value = m.lookup(key, vm.env.cpu) if kind in PERCPU_MAP_TYPES else m.lookup(key)
    vm.record_map_op(m.name, "lookup", key, hit=value is not None, write=False)
    if value is None:
        return 0
    if isinstance(value, bytearray):
        readonly = vm.map_readonly(m) or kind in READONLY_VALUE_TYPES
        return vm.mem.map_value(value, m.name, key, readonly).base
    if hasattr(value, "defn"):  # map-in-map: the inner map
        return vm.map_pointer(value)
    raise VmError(f"bpf_map_lookup_elem on '{m.name}' returned {type(value).__name__}")


@helper("map_lookup_percpu_elem", 3)
def map_lookup_percpu_elem(vm: Vm, r1: int, r2: int, r3: int, *_: int) -> int:
    """The value of another CPU's copy; 0 for a cpu beyond the machine's CPUs."""
    m = vm.get_map(r1)
    kind = _type(m)
    if kind not in PERCPU_MAP_TYPES:
        raise VmError(f"bpf_map_lookup_percpu_elem needs a per-CPU map, '{m.name}' is {kind}")
    key = vm.mem.read(r2, m.key_size)
    cpu = r3 & M32
    value = m.lookup(key, cpu) if cpu < m.num_cpus else None
    vm.record_map_op(m.name, "lookup", key, hit=value is not None, write=False)
    if value is None:
        return 0
    return vm.mem.map_value(value, m.name, key, vm.map_readonly(m)).base


@helper("map_update_elem", 4)
def map_update_elem(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int:
    """0 or a negative errno from the map; a per-CPU map updates this CPU's copy only."""
    m = vm.get_map(r1)
    kind = _type(m)
    if kind in NO_PROGRAM_WRITES:
        raise VmError(f"bpf_map_update_elem on {kind} map '{m.name}' is not allowed from a "
                      f"program (the verifier rejects it)")
    if vm.map_readonly(m):
        raise VmError(f"bpf_map_update_elem on read-only map '{m.name}'")
    key = vm.mem.read(r2, m.key_size)
    value = vm.mem.read(r3, m.value_size)
    ret = m.update(key, value, r4, cpu=vm.env.cpu)
    vm.record_map_op(m.name, "update", key, hit=ret == 0, write=ret == 0, ret=ret)
    return ret


@helper("map_delete_elem", 2)
def map_delete_elem(vm: Vm, r1: int, r2: int, *_: int) -> int:
    m = vm.get_map(r1)
    kind = _type(m)
    if kind in NO_PROGRAM_WRITES:
        raise VmError(f"bpf_map_delete_elem on {kind} map '{m.name}' is not allowed from a "
                      f"program (the verifier rejects it)")
    if vm.map_readonly(m):
        raise VmError(f"bpf_map_delete_elem on read-only map '{m.name}'")
    key = vm.mem.read(r2, m.key_size)
    ret = m.delete(key)
    vm.record_map_op(m.name, "delete", key, hit=ret == 0, write=ret == 0, ret=ret)
    return ret


# --------------------------------------------------------------------------------------------
# time, randomness, cpu
# --------------------------------------------------------------------------------------------

@helper("ktime_get_ns", 0)
def ktime_get_ns(vm: Vm, *_: int) -> int:
    """CLOCK_MONOTONIC: clock_start_ns, then clock_step_ns later on every read."""
    return vm.helper_state.now_ns()


@helper("ktime_get_boot_ns", 0)
def ktime_get_boot_ns(vm: Vm, *_: int) -> int:
    """CLOCK_BOOTTIME: the monotonic clock plus the configured suspend time."""
    return (vm.helper_state.now_ns() + vm.env.boot_offset_ns) & M64


@helper("ktime_get_coarse_ns", 0)
def ktime_get_coarse_ns(vm: Vm, *_: int) -> int:
    return vm.helper_state.now_ns()


@helper("ktime_get_tai_ns", 0)
def ktime_get_tai_ns(vm: Vm, *_: int) -> int:
    return (vm.helper_state.now_ns() + vm.env.tai_offset_ns) & M64


@helper("jiffies64", 0)
def jiffies64(vm: Vm, *_: int) -> int:
    """jiffies_start plus the clock's elapsed time in ticks of 1/hz s (reads the clock)."""
    elapsed = vm.helper_state.now_ns() - vm.env.clock_start_ns
    return (vm.env.jiffies_start + elapsed * vm.env.hz // 1_000_000_000) & M64


@helper("get_prandom_u32", 0)
def get_prandom_u32(vm: Vm, *_: int) -> int:
    """random.Random(seed).getrandbits(32), continuing across runs of the same VM."""
    return vm.helper_state.rng.getrandbits(32)


@helper("get_smp_processor_id", 0)
def get_smp_processor_id(vm: Vm, *_: int) -> int:
    return vm.env.cpu


@helper("get_numa_node_id", 0)
def get_numa_node_id(vm: Vm, *_: int) -> int:
    return vm.env.numa_node


# --------------------------------------------------------------------------------------------
# control transfer (implemented by the VM)
# --------------------------------------------------------------------------------------------

@helper("tail_call", 3)
def tail_call(vm: Vm, r1: int, r2: int, r3: int, *_: int) -> None:
    """See ``Vm.tail_call``: jumps or falls through; r0 is left alone."""
    vm.tail_call(r2, r3)
    return None


@helper("loop", 4)
def loop(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int | None:
    """bpf_loop(nr_loops, callback, ctx, flags) [kernel/bpf/bpf_iter.c].

    flags != 0 -> -EINVAL; nr_loops > 8M (BPF_MAX_LOOPS) -> -E2BIG; otherwise calls
    callback(i, ctx) for i = 0.. until it returns nonzero (result i + 1) or nr_loops calls
    were made (result nr_loops). Each call runs in a new frame, like a bpf-to-bpf call.
    """
    nr_loops = r1 & M32
    if r4:
        return -errno.EINVAL
    if nr_loops > BPF_MAX_LOOPS:
        return -errno.E2BIG
    if nr_loops == 0:
        return 0
    target = vm.function_slot(r2)

    def after(index: int, ret: int) -> int | None:
        if ret & M64 or index + 1 == nr_loops:
            return index + 1
        vm.start_callback(target, [index + 1, r3, 0, 0, 0], lambda r: after(index + 1, r))
        return None

    vm.start_callback(target, [0, r3, 0, 0, 0], lambda r: after(0, r))
    return None


# --------------------------------------------------------------------------------------------
# XDP packet helpers
# --------------------------------------------------------------------------------------------

@helper("xdp_adjust_head", 2)
def xdp_adjust_head(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return _xdp(vm, "xdp_adjust_head").adjust_head(_s32(r2))


@helper("xdp_adjust_meta", 2)
def xdp_adjust_meta(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return _xdp(vm, "xdp_adjust_meta").adjust_meta(_s32(r2))


@helper("xdp_adjust_tail", 2)
def xdp_adjust_tail(vm: Vm, r1: int, r2: int, *_: int) -> int:
    return _xdp(vm, "xdp_adjust_tail").adjust_tail(_s32(r2))


@helper("xdp_get_buff_len", 1)
def xdp_get_buff_len(vm: Vm, *_: int) -> int:
    return _xdp(vm, "xdp_get_buff_len").buff_len()


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
    buff = _xdp(vm, "xdp_load_bytes")
    offset, length = r2 & M32, r4 & M32
    err = _xdp_pointer_check(buff, offset, length)
    if err:
        return err
    vm.mem.write(r3, buff.read_bytes(offset, length))
    return 0


@helper("xdp_store_bytes", 4)
def xdp_store_bytes(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int:
    """Copy len bytes from buf to data + offset; -EFAULT / -EINVAL as bpf_xdp_pointer."""
    buff = _xdp(vm, "xdp_store_bytes")
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
    kind = _type(m)
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
    if _type(m) != "perf_event_array":
        raise VmError(f"bpf_perf_event_output needs a perf_event_array, '{m.name}' is "
                      f"{_type(m)}")
    err = m.check_output_flags(r3)
    if err:
        return err
    ctx_len = (r3 & BPF_F_CTXLEN_MASK) >> 32
    data = vm.mem.read(r4, r5)
    if ctx_len:
        buff = _xdp(vm, "perf_event_output")
        if ctx_len > buff.buff_len():
            return -errno.EFAULT
        data += buff.read_bytes(0, ctx_len)
    return m.output(data, r3, vm.env.cpu)


def _ringbuf(vm: Vm, addr: int, name: str):
    m = vm.get_map(addr)
    if _type(m) != "ringbuf":
        raise VmError(f"bpf_{name} needs a ringbuf map, '{m.name}' is {_type(m)}")
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


# --------------------------------------------------------------------------------------------
# fib_lookup
# --------------------------------------------------------------------------------------------

@helper("fib_lookup", 4)
def fib_lookup(vm: Vm, r1: int, r2: int, r3: int, r4: int, *_: int) -> int:
    """bpf_xdp_fib_lookup against ``HelperEnv.routes`` (net/core/filter.c).

    plen < 64 or unknown flags -> -EINVAL; a family other than AF_INET/AF_INET6 ->
    -EAFNOSUPPORT. ``forwarding`` False -> FWD_DISABLED. The longest matching prefix wins
    (one table: DIRECT/OUTPUT/TBID/MARK are accepted and ignored; the input ifindex is not
    checked). No route -> NOT_FWDED; blackhole/unreachable/prohibit routes -> their codes.
    Then, as the kernel does for XDP (check_mtu): tot_len > mtu -> mtu_result = mtu,
    FRAG_NEEDED. Then rt_metric and ifindex are written, the gateway (if any) replaces the
    destination address; with BPF_FIB_LOOKUP_SRC the route's ``src`` is written (none ->
    NO_SRC_ADDR). Without SKIP_NEIGH, no ``dmac`` -> NO_NEIGH; else smac/dmac are written.
    On success h_vlan_proto = h_vlan_TCI = 0 and mtu_result = mtu.
    """
    if r3 < FIB_LOOKUP_SIZE or r4 & ~BPF_FIB_LOOKUP_FLAGS:
        return -errno.EINVAL
    params = bytearray(vm.mem.read(r2, FIB_LOOKUP_SIZE))
    family = params[0]
    if family == AF_INET:
        dst = ipaddress.IPv4Address(bytes(params[32:36]))
    elif family == AF_INET6:
        dst = ipaddress.IPv6Address(bytes(params[32:48]))
        src = ipaddress.IPv6Address(bytes(params[16:32]))
        # bpf_ipv6_fib_lookup: rt6_need_strict() on either address (multicast, link-local,
        # loopback) -> NOT_FWDED, before anything else is looked at.
        if any(a.is_multicast or a.is_link_local or a.is_loopback for a in (src, dst)):
            return BPF_FIB_LKUP_RET_NOT_FWDED
    else:
        return -errno.EAFNOSUPPORT
    if not vm.env.forwarding:
        return BPF_FIB_LKUP_RET_FWD_DISABLED
    best: Route | None = None
    for route in vm.env.get_routes():
        net = route.network
        if net.version == dst.version and dst in net:
            if best is None or net.prefixlen > best.network.prefixlen:
                best = route
    if best is None or best.kind == "throw":
        return BPF_FIB_LKUP_RET_NOT_FWDED
    codes = {"blackhole": BPF_FIB_LKUP_RET_BLACKHOLE, "unreachable": BPF_FIB_LKUP_RET_UNREACHABLE,
             "prohibit": BPF_FIB_LKUP_RET_PROHIBIT}
    if best.kind != "unicast":
        return codes.get(best.kind, BPF_FIB_LKUP_RET_NOT_FWDED)
    tot_len = struct.unpack_from("<H", params, 6)[0]
    if tot_len > best.mtu:
        struct.pack_into("<H", params, 6, best.mtu & 0xFFFF)
        vm.mem.write(r2, bytes(params))
        return BPF_FIB_LKUP_RET_FRAG_NEEDED
    struct.pack_into("<I", params, 12, best.metric & M32)
    struct.pack_into("<I", params, 8, best.ifindex & M32)
    ret = BPF_FIB_LKUP_RET_SUCCESS
    if r4 & BPF_FIB_LOOKUP_SRC:
        if best.src is None:
            ret = BPF_FIB_LKUP_RET_NO_SRC_ADDR
        else:
            src = ipaddress.ip_address(best.src).packed
            params[16:16 + len(src)] = src
    if ret == BPF_FIB_LKUP_RET_SUCCESS and best.gateway is not None:
        gw = ipaddress.ip_address(best.gateway).packed
        params[32:32 + len(gw)] = gw
    if ret == BPF_FIB_LKUP_RET_SUCCESS and not r4 & BPF_FIB_LOOKUP_SKIP_NEIGH:
        if best.dmac is None:
            ret = BPF_FIB_LKUP_RET_NO_NEIGH
        else:
            params[52:58] = bytes(best.smac)[:6].ljust(6, b"\0")
            params[58:64] = bytes(best.dmac)[:6].ljust(6, b"\0")
    if ret == BPF_FIB_LKUP_RET_SUCCESS:
        params[48:52] = bytes(4)  # h_vlan_proto, h_vlan_TCI
        if best.mtu:
            struct.pack_into("<H", params, 6, best.mtu & 0xFFFF)
    vm.mem.write(r2, bytes(params))
    return ret
