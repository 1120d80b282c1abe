"""Arrays of references (kernel/bpf/arraymap.c, hashtab.c): PROG_ARRAY, PERF_EVENT_ARRAY,
ARRAY_OF_MAPS and HASH_OF_MAPS, updated from user space only."""


from __future__ import annotations

from typing import Any

from ebpf.errors import VmError
from ebpf.kernel_enums import map_type_name
from ebpf.loader.program import MapDef
from ebpf.maps.base import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_CTXLEN_MASK,
    BPF_F_CURRENT_CPU,
    BPF_F_INDEX_MASK,
    BPF_F_INNER_MAP,
    BPF_NOEXIST,
    E2BIG,
    EEXIST,
    EINVAL,
    ENOENT,
    EOPNOTSUPP,
    BpfMap,
    KeyedMap,
    OutputRecord,
    SlotMap,
    _le32,
)


# ---------------------------------------------------------------------------------------
# fd arrays: PROG_ARRAY, PERF_EVENT_ARRAY, ARRAY_OF_MAPS (kernel/bpf/arraymap.c)
# ---------------------------------------------------------------------------------------
class _FdArray(SlotMap):
    """An array of references (programs, maps, perf events), updated from user space only.

    bpf_fd_array_map_update_elem: flags other than BPF_ANY -> -EINVAL, index beyond
    max_entries -> -E2BIG, then the object is checked. Delete: beyond -> -E2BIG, empty
    slot -> -ENOENT. Iteration (get_next_key) visits every index, empty or not.
    """

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(4, (4,))

    def _accept(self, value: Any) -> tuple[int, Any]:
        """(0, what to store) or (-errno, None) for a value offered to update."""
        raise NotImplementedError

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        index = self._index(key)
        if flags != BPF_ANY:
            return -EINVAL
        if index >= self.max_entries:
            return -E2BIG
        err, stored = self._accept(value)
        if err:
            return err
        self._slots[index] = stored
        return 0

    def delete(self, key: bytes) -> int:
        index = self._index(key)
        if index >= self.max_entries:
            return -E2BIG
        if self._slots.pop(index, None) is None:
            return -ENOENT
        return 0



def _not_bytes(m: BpfMap, value: Any, what: str) -> None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise VmError(f"map '{m.name}' ({m.type_name}): value must be {what}, not bytes "
                      f"(file descriptors do not exist in the VM)")


class ProgArray(_FdArray):
    """BPF_MAP_TYPE_PROG_ARRAY: index -> program (a name or any program object).

    ``lookup`` / ``get_prog`` return the target or None; the VM runs tail calls from it.
    """

    type_name = "prog_array"
    value_form = "prog"

    def _accept(self, value: Any) -> tuple[int, Any]:
        _not_bytes(self, value, "a program (name or object)")
        if value is None:
            raise VmError(f"map '{self.name}': use delete() to empty a slot")
        return 0, value

    def get_prog(self, index: int) -> Any:
        """The program at ``index`` (bpf_tail_call's u32 index), or None."""
        return self._slots.get(index & 0xFFFFFFFF)


class _MapInMap:
    """Inner-map compatibility (bpf_map_meta_equal and the per-type map_meta_equal)."""

    defn: MapDef

    def _inner_ok(self, inner: Any) -> bool:
        if not isinstance(inner, BpfMap):
            return False
        meta = self.defn.inner
        if meta is None:
            return True
        if (inner.defn.type, inner.key_size, inner.value_size, inner.flags) != (
                meta.type, meta.key_size, meta.value_size, meta.flags):
            return False
        name = map_type_name(meta.type)
        if name == "xskmap" or (name == "array" and not meta.flags & BPF_F_INNER_MAP):
            return inner.max_entries == meta.max_entries
        return True


class ArrayOfMaps(_MapInMap, _FdArray):
    """BPF_MAP_TYPE_ARRAY_OF_MAPS: index -> inner BpfMap; a lookup returns the inner map.

    An inner map unlike the definition's template (type, sizes, flags; max_entries for
    arrays without BPF_F_INNER_MAP) is refused with -EINVAL.
    """

    type_name = "array_of_maps"
    value_form = "inner"

    def _accept(self, value: Any) -> tuple[int, Any]:
        _not_bytes(self, value, "the inner BpfMap")
        return (0, value) if self._inner_ok(value) else (-EINVAL, None)


class PerfEventArray(_FdArray):
    """BPF_MAP_TYPE_PERF_EVENT_ARRAY: index -> perf event (a u32 fd placeholder).

    Like libbpf's perf_buffer, the map starts with a BPF-output event on every index below
    min(max_entries, num_cpus), index i bound to CPU i; user space may delete or set slots
    (index i is always taken as bound to CPU i). ``output`` is bpf_perf_event_output.
    """

    type_name = "perf_event_array"

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self.records: list[OutputRecord] = []
        for i in range(min(self.max_entries, num_cpus)):
            self._slots[i] = bytearray(_le32(i))

    def _accept(self, value: Any) -> tuple[int, Any]:
        return 0, bytearray(self._value(value))

    def lookup(self, key: bytes, cpu: int = 0) -> Any:
        """Always None: programs cannot look into a perf event array (the verifier says so)."""
        self._index(key)
        return None

    def output(self, data: bytes, flags: int = BPF_F_CURRENT_CPU, cpu: int = 0) -> int:
        """bpf_perf_event_output from a program on ``cpu``; ``data`` is the whole record.

        For XDP the helper may also append BPF_F_CTXLEN_MASK packet bytes: the VM appends
        them to ``data`` itself and checks their length (-EFAULT) after calling
        ``check_output_flags``. Returns -EINVAL for unknown flag bits, -E2BIG for an index
        beyond max_entries, -ENOENT for an empty slot, -EOPNOTSUPP when the index's event
        is bound to another CPU.
        """
        self._check_cpu(cpu)
        err = self.check_output_flags(flags)
        if err:
            return err
        index = flags & BPF_F_INDEX_MASK
        if index == BPF_F_CURRENT_CPU:
            index = cpu
        if index >= self.max_entries:
            return -E2BIG
        if index not in self._slots:
            return -ENOENT
        if index != cpu:
            return -EOPNOTSUPP
        self.records.append(OutputRecord(cpu, bytes(data)))
        return 0

    @staticmethod
    def check_output_flags(flags: int) -> int:
        """bpf_xdp_event_output's first check: -EINVAL for bits outside index and ctxlen."""
        return -EINVAL if flags & ~(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK) else 0


class HashOfMaps(_MapInMap, KeyedMap):
    """BPF_MAP_TYPE_HASH_OF_MAPS: key -> inner BpfMap, with HASH update and delete rules.

    The inner map is checked first (-EINVAL), then flags above BPF_EXIST (-EINVAL),
    BPF_NOEXIST / BPF_EXIST (-EEXIST / -ENOENT) and capacity (-E2BIG).
    """

    type_name = "hash_of_maps"
    value_form = "inner"

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(None, (4,))
        if self.key_size <= 0:
            self._bad_def(f"key_size {self.key_size} must be positive")


    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        key = self._key(key)
        _not_bytes(self, value, "the inner BpfMap")
        if not self._inner_ok(value):
            return -EINVAL
        if flags > BPF_EXIST:
            return -EINVAL
        exists = key in self._entries
        if exists and flags == BPF_NOEXIST:
            return -EEXIST
        if not exists and flags == BPF_EXIST:
            return -ENOENT
        if not exists and len(self._entries) >= self.max_entries:
            return -E2BIG
        self._entries[key] = value
        return 0

