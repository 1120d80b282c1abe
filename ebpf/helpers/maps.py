"""Map helpers: lookup, percpu lookup, update and delete [kernel/bpf/helpers.c]."""


from __future__ import annotations

from typing import TYPE_CHECKING

from ebpf.errors import VmError
from ebpf.helpers.core import (
    NO_PROGRAM_LOOKUP,
    NO_PROGRAM_WRITES,
    PERCPU_MAP_TYPES,
    READONLY_VALUE_TYPES,
    helper,
    map_kind,
)
from ebpf.vm.limits import M32

if TYPE_CHECKING:
    from ebpf.maps.base import BpfMap
    from ebpf.vm.machine import Vm


# --------------------------------------------------------------------------------------------
# maps
# --------------------------------------------------------------------------------------------

@helper("map_lookup_elem", 2)
def map_lookup_elem(vm: Vm, r1: int, r2: int, *_: int) -> int:
    """Pointer to the value (stable per entry), an inner map's pointer, or 0 on a miss."""
    m = vm.get_map(r1)
    kind = map_kind(m)
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
    kind = map_kind(m)
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
    m = _writable_map(vm, r1, "bpf_map_update_elem")
    key = vm.mem.read(r2, m.key_size)
    value = vm.mem.read(r3, m.value_size)
    ret = m.update(key, value, r4, cpu=vm.env.cpu)
    vm.record_map_op(m.name, "update", key, hit=ret == 0, write=ret == 0, ret=ret)
    return ret


@helper("map_delete_elem", 2)
def map_delete_elem(vm: Vm, r1: int, r2: int, *_: int) -> int:
    m = _writable_map(vm, r1, "bpf_map_delete_elem")
    key = vm.mem.read(r2, m.key_size)
    ret = m.delete(key)
    vm.record_map_op(m.name, "delete", key, hit=ret == 0, write=ret == 0, ret=ret)
    return ret


def _writable_map(vm: Vm, r1: int, helper_name: str) -> BpfMap:
    """The map in r1, for a helper that writes it: VmError where the verifier would reject
    the call (a map type programs cannot write, a read-only map)."""
    m = vm.get_map(r1)
    kind = map_kind(m)
    if kind in NO_PROGRAM_WRITES:
        raise VmError(f"{helper_name} on {kind} map '{m.name}' is not allowed from a "
                      f"program (the verifier rejects it)")
    if vm.map_readonly(m):
        raise VmError(f"{helper_name} on read-only map '{m.name}'")
    return m
