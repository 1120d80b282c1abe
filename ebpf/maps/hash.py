"""HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH maps (kernel/bpf/hashtab.c)."""


from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from ebpf.loader.program import MapDef
from ebpf.maps.array import percpu_values
from ebpf.maps.base import (
    BPF_ANY,
    BPF_EXIST,
    BPF_NOEXIST,
    E2BIG,
    EEXIST,
    EINVAL,
    ENOENT,
    BpfMap,
    _next_key,
)


# ---------------------------------------------------------------------------------------
# HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH (kernel/bpf/hashtab.c)
# ---------------------------------------------------------------------------------------
class HashMap(BpfMap):
    """BPF_MAP_TYPE_HASH with max_entries capacity.

    Update checks, in the kernel's order: flags other than ANY/NOEXIST/EXIST -> -EINVAL
    (BPF_F_LOCK too: no spin lock); existing key with BPF_NOEXIST -> -EEXIST; missing key
    with BPF_EXIST -> -ENOENT; a new key when full -> -E2BIG (preallocated maps run out of
    free elements; BPF_F_NO_PREALLOC maps check the count; both say E2BIG). Replacing an
    existing key in a full map succeeds. Iteration follows insertion order (the kernel's
    is bucket order, i.e. arbitrary).
    """

    type_name = "hash"
    percpu: ClassVar[bool] = False
    lru: ClassVar[bool] = False

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self._entries: OrderedDict[bytes, Any] = OrderedDict()
        self.version = 0
        """Counts changes of the set of keys (an insertion, an eviction, a delete, a clear;
        not a value changed in place nor an LRU use): ``ebpf.compiled`` keeps its table of
        the keys while it stays the same."""

    def _validate(self) -> None:
        super()._validate()
        if self.key_size <= 0 or self.value_size <= 0:
            self._bad_def(f"key_size {self.key_size} and value_size {self.value_size} "
                          f"must be positive")

    def lookup(self, key: bytes, cpu: int = 0) -> bytearray | None:
        key = self._key(key)
        if self.percpu and not 0 <= cpu < self.num_cpus:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.lru:
            self._entries.move_to_end(key)
        return entry[cpu] if self.percpu else entry

    def peek(self, key: bytes, cpu: int = 0) -> bytearray | None:
        """``lookup`` that does not count as a use (LRU maps: the order stays)."""
        entry = self._entries.get(self._key(key))
        if entry is None or (self.percpu and not 0 <= cpu < self.num_cpus):
            return None
        return entry[cpu] if self.percpu else entry

    def touch(self, keys: Iterator[bytes] | Sequence[bytes]) -> None:
        """LRU maps: each existing key in turn becomes the most recently used, as a
        program's lookup of it makes it (``ebpf.compiled`` replays its lookups so)."""
        entries = self._entries
        for key in keys:
            if key in entries:
                entries.move_to_end(key)

    def least_recent(self) -> bytes | None:
        """The key an insertion into a full LRU map evicts (the oldest), or None."""
        return next(iter(self._entries), None)

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        key, data = self._update_args(key, value, cpu)
        if self.percpu and cpu is None:
            return self._update(key, flags, all_cpus=[data] * self.num_cpus)
        return self._update(key, flags, data=data, cpu=cpu or 0)

    def _update(self, key: bytes, flags: int, data: bytes = b"", cpu: int = 0,
                all_cpus: list[bytes] | None = None) -> int:
        if flags not in (BPF_ANY, BPF_NOEXIST, BPF_EXIST):
            return -EINVAL
        entry = self._entries.get(key)
        if entry is not None and flags == BPF_NOEXIST:
            return -EEXIST
        if entry is None and flags == BPF_EXIST:
            return -ENOENT
        if entry is None and len(self._entries) >= self.max_entries:
            if not self.lru:
                return -E2BIG
            self._entries.popitem(last=False)  # evict the least recently used
        if entry is None:
            self.version += 1
        if not self.percpu:
            if entry is None:
                self._entries[key] = bytearray(data)
            else:
                entry[:] = data
        elif entry is None:
            if all_cpus is not None:
                self._entries[key] = [bytearray(d) for d in all_cpus]
            else:
                fresh = [bytearray(self.value_size) for _ in range(self.num_cpus)]
                fresh[cpu][:] = data
                self._entries[key] = fresh
        elif all_cpus is not None:
            for slot, d in zip(entry, all_cpus, strict=True):
                slot[:] = d
        else:
            entry[cpu][:] = data
        if self.lru:
            self._entries.move_to_end(key)
        return 0

    def delete(self, key: bytes) -> int:
        key = self._key(key)
        if self._entries.pop(key, None) is None:
            return -ENOENT
        self.version += 1
        return 0

    def get_next_key(self, key: bytes | None) -> bytes | None:
        if key is not None:
            key = self._key(key)
        return _next_key(list(self._entries), key)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter(list(self._entries.items()))

    def clear(self) -> None:
        self._entries.clear()
        self.version += 1

    def __len__(self) -> int:
        return len(self._entries)


class PercpuHashMap(HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH: a HASH with one value per CPU.

    A program's update of a new key sets its CPU's copy and zero-fills the others (the
    kernel's pcpu_init_value); of an existing key, only its CPU's copy.
    """

    type_name = "percpu_hash"
    value_form = "percpu"
    percpu = True

    def lookup_percpu(self, key: bytes) -> list[bytearray] | None:
        """Every CPU's value (what user space reads), or None. Not a use for LRU."""
        entry = self._entries.get(self._key(key))
        return entry

    def update_percpu(self, key: bytes, values: Sequence[bytes], flags: int = BPF_ANY) -> int:
        """User-space update with one value per CPU."""
        key = self._key(key)
        return self._update(key, flags, all_cpus=percpu_values(self, values))


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: a HASH that evicts instead of failing when full.

    We implement exact LRU: program lookups and updates make an entry the most recently
    used, and inserting a new key into a full map evicts the least recently used entry.

    The kernel's LRU (kernel/bpf/bpf_lru_list.c) is approximate, so the kernel may evict a
    different entry, or evict earlier:
    - it uses per-CPU local free lists and moves nodes in batches (LOCAL_FREE_TARGET), so
      eviction can start before max_entries entries exist, and which entry goes depends
      on the CPU doing the update;
    - recency is a reference bit plus active/inactive lists (second chance), not an order;
    - LRU_HASH takes a free node before looking the key up, so even an update of an
      existing key, or one that then fails with -EEXIST / -ENOENT, can evict another entry
      when the map is full (LRU_PERCPU_HASH skips this for BPF_EXIST);
    - BPF_F_NO_COMMON_LRU gives each CPU its own list and max_entries / num_cpus share.
    Here an update never evicts unless it inserts a new key into a full map. Lookups from
    user space do not mark entries in the kernel; ``items`` and ``lookup_percpu`` do not
    either, but ``lookup`` always does (it is the program's lookup).
    """

    type_name = "lru_hash"
    lru = True


class LruPercpuHashMap(PercpuHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH: LRU_HASH eviction with PERCPU_HASH values.

    See LruHashMap for how the kernel's approximate LRU differs from our exact one.
    """

    type_name = "lru_percpu_hash"
    lru = True
