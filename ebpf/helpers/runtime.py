"""Time, randomness and CPU helpers from the ``HelperEnv``, and the control transfers the VM
implements (tail_call, loop)."""


from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from ebpf.helpers.core import BPF_MAX_LOOPS, helper
from ebpf.vm.limits import M32, M64

if TYPE_CHECKING:
    from ebpf.vm.machine import Vm


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
