"""ARRAY and PERCPU_ARRAY maps (kernel/bpf/arraymap.c)."""


from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ebpf.errors import VmError
from ebpf.loader.program import MapDef
from ebpf.maps.base import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_LOCK,
    BPF_NOEXIST,
    E2BIG,
    EEXIST,
    EINVAL,
    BpfMap,
    _le32,
    _next_index,
    _u32,
)


# ---------------------------------------------------------------------------------------
# ARRAY, PERCPU_ARRAY (kernel/bpf/arraymap.c)
# ---------------------------------------------------------------------------------------
class ArrayMap(BpfMap):
    """BPF_MAP_TYPE_ARRAY: u32 index -> value, all preallocated and zeroed.

    Lookup beyond max_entries gives None; update beyond it -E2BIG; BPF_NOEXIST -EEXIST
    (every element exists); delete is always -EINVAL. Values are allocated on first touch,
    which is invisible to callers (they read as zeros either way).
    """

    type_name = "array"
    indexed = True

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self._slots: dict[int, bytearray] = {}

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(4, None)
        if self.value_size <= 0:
            self._bad_def(f"value_size {self.value_size} must be positive")

    def _slot(self, index: int) -> bytearray:
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = bytearray(self.value_size)
        return slot

    def _index(self, key: bytes) -> int:
        return _u32(self._key(key))

    def _check_array_flags(self, index: int, flags: int) -> int:
        """array_map_update_elem's checks, in its order."""
        if (flags & ~BPF_F_LOCK) > BPF_EXIST:
            return -EINVAL
        if index >= self.max_entries:
            return -E2BIG
        if flags & BPF_NOEXIST:
            return -EEXIST
        if flags & BPF_F_LOCK:
            return -EINVAL  # no bpf_spin_lock in the value
        return 0

    def lookup(self, key: bytes, cpu: int = 0) -> bytearray | None:
        index = self._index(key)
        return self._slot(index) if index < self.max_entries else None

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        index = self._index(key)
        data = self._value(value)
        if cpu is not None:
            self._check_cpu(cpu)
        err = self._check_array_flags(index, flags)
        if err:
            return err
        self._slot(index)[:] = data
        return 0

    def delete(self, key: bytes) -> int:
        self._key(key)
        return -EINVAL

    def get_next_key(self, key: bytes | None) -> bytes | None:
        return _next_index(None if key is None else self._index(key), self.max_entries)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        for index in range(self.max_entries):
            yield _le32(index), self._slot(index)

    def iter_state(self) -> Iterator[tuple[bytes, Any]]:
        """Touched indices whose value is not all zeros, in index order."""
        for index in sorted(self._slots):
            slot = self._slots[index]
            if any(slot):
                yield _le32(index), slot

    def clear(self) -> None:
        for slot in self._slots.values():
            slot[:] = bytes(len(slot))

    def __len__(self) -> int:
        return self.max_entries


class PercpuArrayMap(ArrayMap):
    """BPF_MAP_TYPE_PERCPU_ARRAY: an ARRAY with one value per CPU.

    From a program only the calling CPU's copy changes. From user space
    (bpf_percpu_array_update) flags above BPF_EXIST are -EINVAL and every CPU is written.
    """

    type_name = "percpu_array"
    value_form = "percpu"

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self._cpu_slots: dict[int, list[bytearray]] = {}

    def _cpus(self, index: int) -> list[bytearray]:
        slots = self._cpu_slots.get(index)
        if slots is None:
            slots = [bytearray(self.value_size) for _ in range(self.num_cpus)]
            self._cpu_slots[index] = slots
        return slots

    def lookup(self, key: bytes, cpu: int = 0) -> bytearray | None:
        index = self._index(key)
        if index >= self.max_entries or not 0 <= cpu < self.num_cpus:
            return None
        return self._cpus(index)[cpu]

    def lookup_percpu(self, key: bytes) -> list[bytearray] | None:
        """Every CPU's value (what user space reads), or None out of range."""
        index = self._index(key)
        return self._cpus(index) if index < self.max_entries else None

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        if cpu is None:
            return self.update_percpu(key, [self._value(value)] * self.num_cpus, flags)
        index = self._index(key)
        data = self._value(value)
        self._check_cpu(cpu)
        err = self._check_array_flags(index, flags)
        if err:
            return err
        self._cpus(index)[cpu][:] = data
        return 0

    def update_percpu(self, key: bytes, values: Sequence[bytes], flags: int = BPF_ANY) -> int:
        """User-space update with one value per CPU (bpf_percpu_array_update)."""
        index = self._index(key)
        datas = percpu_values(self, values)
        if flags > BPF_EXIST:
            return -EINVAL
        if index >= self.max_entries:
            return -E2BIG
        if flags == BPF_NOEXIST:
            return -EEXIST
        for slot, data in zip(self._cpus(index), datas, strict=True):
            slot[:] = data
        return 0

    def items(self) -> Iterator[tuple[bytes, Any]]:
        for index in range(self.max_entries):
            yield _le32(index), self._cpus(index)

    def iter_state(self) -> Iterator[tuple[bytes, Any]]:
        """Touched indices with a non-zero value on some CPU, in index order."""
        for index in sorted(self._cpu_slots):
            slots = self._cpu_slots[index]
            if any(any(slot) for slot in slots):
                yield _le32(index), slots

    def clear(self) -> None:
        for slots in self._cpu_slots.values():
            for slot in slots:
                slot[:] = bytes(len(slot))


def percpu_values(m: BpfMap, values: Sequence[bytes]) -> list[bytes]:
    if isinstance(values, (bytes, bytearray, memoryview)):
        raise VmError(f"map '{m.name}': per-CPU values must be a list, one per CPU")
    if len(values) != m.num_cpus:
        raise VmError(f"map '{m.name}': {len(values)} per-CPU values, "
                      f"expected {m.num_cpus} (num_cpus)")
    return [m._value(v) for v in values]
