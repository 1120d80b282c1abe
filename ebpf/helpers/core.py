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
- xdp_adjust_head/meta/tail, xdp_get_buff_len, xdp_load_bytes/store_bytes: ``ebpf.vm.xdp``.
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

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ebpf.errors import VmError
from ebpf.kernel_enums import HELPER_IDS, helper_name, map_type_name
from ebpf.vm.limits import M32, M64

if TYPE_CHECKING:
    from ebpf.vm.machine import Vm


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


def s32(value: int) -> int:
    value &= M32
    return value - (1 << 32) if value & 0x80000000 else value


def map_kind(m: Any) -> str:
    return map_type_name(m.defn.type) or f"type_{m.defn.type}"


def xdp_of(vm: Vm, name: str):
    if vm.xdp is None:
        raise VmError(f"bpf_{name} needs an XDP context (run the program with run_xdp)")
    return vm.xdp
