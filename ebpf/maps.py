"""BPF maps with the Linux kernel's semantics (kernel 6.x), for the reference VM.

Each class models one ``enum bpf_map_type`` the way ``kernel/bpf/*.c`` implements it: the
same return codes (0 or a negative Linux errno, exactly what ``bpf_map_update_elem`` and
``bpf_map_delete_elem`` return to a program), checked in the same order.

Storage contract for the VM: ``lookup`` returns a ``bytearray`` that stays the same object
for as long as the entry exists, so the VM can hand the program a pointer into it and
writes through the pointer land in the map. Updates of an existing entry copy into that
bytearray (the kernel replaces hash elements with a fresh allocation; a program still
holding the old pointer would race with the free there, so in-place is the defined
behaviour we pick). Per-CPU maps keep one bytearray per CPU; ``cpu`` selects it.

Program versus user space: ``update(..., cpu=c)`` is the helper called by a program on CPU
``c``; ``update(..., cpu=None)`` is ``bpf(BPF_MAP_UPDATE_ELEM)`` from user space. They only
differ for per-CPU maps: a program writes its own CPU's copy (a new entry starts zeroed on
the other CPUs), user space writes every CPU (``update_percpu`` takes one value per CPU).

No map value here carries a ``bpf_spin_lock`` (we do not read BTF records), so
``BPF_F_LOCK`` always fails with -EINVAL where the kernel checks for the lock.

The JSON state format (``load_state`` / ``dump_state``) lives in ``ebpf.map_state``.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from ebpf.errors import ElfError, VmError
from ebpf.kernel_enums import MAP_TYPE_IDS, map_type_name
from ebpf.map_base import (  # noqa: F401  (re-exported through ebpf.maps)
    BPF_ANY,
    BPF_EXIST,
    BPF_F_CTXLEN_MASK,
    BPF_F_CURRENT_CPU,
    BPF_F_INDEX_MASK,
    BPF_F_INNER_MAP,
    BPF_F_LOCK,
    BPF_F_NO_COMMON_LRU,
    BPF_F_NO_PREALLOC,
    BPF_NOEXIST,
    BPF_RB_FORCE_WAKEUP,
    BPF_RB_NO_WAKEUP,
    BPF_RINGBUF_HDR_SZ,
    CPUMAP_MAX_QSIZE,
    E2BIG,
    EAGAIN,
    EEXIST,
    EFAULT,
    EINVAL,
    ENODEV,
    ENOENT,
    ENOSPC,
    ENOTSUPP,
    EOPNOTSUPP,
    EOVERFLOW,
    PAGE_SIZE,
    RINGBUF_MAX_RECORD_SZ,
    BpfMap,
    OutputRecord,
    _le32,
    _next_index,
    _next_key,
    _s32,
    _u32,
    errno_name,
)
from ebpf.map_redirect import CpuMap, DevMap, DevMapHash, XskMap  # noqa: F401
from ebpf.map_ringbuf import RingBuf, RingbufSample  # noqa: F401
from ebpf.program import MapDef


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
        datas = _percpu_values(self, values)
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


def _percpu_values(m: BpfMap, values: Sequence[bytes]) -> list[bytes]:
    if isinstance(values, (bytes, bytearray, memoryview)):
        raise VmError(f"map '{m.name}': per-CPU values must be a list, one per CPU")
    if len(values) != m.num_cpus:
        raise VmError(f"map '{m.name}': {len(values)} per-CPU values, "
                      f"expected {m.num_cpus} (num_cpus)")
    return [m._value(v) for v in values]


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

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        key = self._key(key)
        data = self._value(value)
        if cpu is not None:
            self._check_cpu(cpu)
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
        return 0

    def get_next_key(self, key: bytes | None) -> bytes | None:
        if key is not None:
            key = self._key(key)
        return _next_key(list(self._entries), key)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter(list(self._entries.items()))

    def clear(self) -> None:
        self._entries.clear()

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
        return self._update(key, flags, all_cpus=_percpu_values(self, values))


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


# ---------------------------------------------------------------------------------------
# LPM_TRIE (kernel/bpf/lpm_trie.c)
# ---------------------------------------------------------------------------------------
class LpmTrieMap(BpfMap):
    """BPF_MAP_TYPE_LPM_TRIE: key = u32 prefixlen (host order, little-endian) + data
    (network order, most significant bit first).

    An entry is identified by (prefixlen, the first prefixlen bits of data): bits beyond the
    prefix are ignored when matching but kept, as given by the latest update, in the stored
    key (get_next_key and dumps show them, like the kernel). Lookup returns the entry with
    the longest prefix, no longer than the lookup key's prefixlen, matching the key's data;
    a lookup prefixlen above 8 * data size matches nothing. Update: flags above BPF_EXIST
    or prefixlen above 8 * data size -> -EINVAL; BPF_NOEXIST on an existing prefix ->
    -EEXIST; BPF_EXIST on a missing one -> -ENOENT; a new prefix when full -> -ENOSPC.
    get_next_key walks the trie in postorder: more specific prefixes before the prefixes
    containing them, bit 0 subtrees before bit 1 subtrees. The kernel requires
    BPF_F_NO_PREALLOC at creation; we accept definitions without it.
    """

    type_name = "lpm_trie"

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self.data_size = self.key_size - 4
        self.max_prefixlen = 8 * self.data_size
        # (prefixlen, prefix bits as int) -> [stored key, value]
        self._entries: dict[tuple[int, int], tuple[bytes, bytearray]] = {}

    def _validate(self) -> None:
        super()._validate()
        if not 5 <= self.key_size <= 4 + 256:
            self._bad_def(f"key_size {self.key_size}, expected 4 + 1..256 data bytes")
        if self.value_size <= 0:
            self._bad_def(f"value_size {self.value_size} must be positive")

    def _split(self, key: bytes) -> tuple[int, int]:
        """(prefixlen, data as a big-endian integer)."""
        return _u32(key), int.from_bytes(key[4:], "big")

    def _ident(self, prefixlen: int, data: int) -> tuple[int, int]:
        return prefixlen, data >> (self.max_prefixlen - prefixlen)

    def lookup(self, key: bytes, cpu: int = 0) -> bytearray | None:
        prefixlen, data = self._split(self._key(key))
        if prefixlen > self.max_prefixlen:
            return None
        for plen in range(prefixlen, -1, -1):
            found = self._entries.get(self._ident(plen, data))
            if found is not None:
                return found[1]
        return None

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        key = self._key(key)
        data = self._value(value)
        if cpu is not None:
            self._check_cpu(cpu)
        if flags > BPF_EXIST:
            return -EINVAL
        prefixlen, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -EINVAL
        ident = self._ident(prefixlen, bits)
        found = self._entries.get(ident)
        if found is not None:
            if flags == BPF_NOEXIST:
                return -EEXIST
            found[1][:] = data
            self._entries[ident] = (key, found[1])
            return 0
        if flags == BPF_EXIST:
            return -ENOENT
        if len(self._entries) >= self.max_entries:
            return -ENOSPC
        self._entries[ident] = (key, bytearray(data))
        return 0

    def delete(self, key: bytes) -> int:
        prefixlen, bits = self._split(self._key(key))
        if prefixlen > self.max_prefixlen:
            return -EINVAL
        if self._entries.pop(self._ident(prefixlen, bits), None) is None:
            return -ENOENT
        return 0

    def _postorder(self) -> list[tuple[int, int]]:
        def order(ident: tuple[int, int]) -> str:
            plen, prefix = ident
            return (format(prefix, f"0{plen}b") if plen else "") + "2"

        return sorted(self._entries, key=order)

    def get_next_key(self, key: bytes | None) -> bytes | None:
        idents = self._postorder()
        if not idents:
            return None
        first = self._entries[idents[0]][0]
        if key is None:
            return first
        prefixlen, bits = self._split(self._key(key))
        if prefixlen > self.max_prefixlen:
            return first
        ident = self._ident(prefixlen, bits)
        if ident not in self._entries:
            return first
        i = idents.index(ident)
        return self._entries[idents[i + 1]][0] if i + 1 < len(idents) else None

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter([self._entries[ident] for ident in self._postorder()])

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


# ---------------------------------------------------------------------------------------
# fd arrays: PROG_ARRAY, PERF_EVENT_ARRAY, ARRAY_OF_MAPS (kernel/bpf/arraymap.c)
# ---------------------------------------------------------------------------------------
class _FdArray(BpfMap):
    """An array of references (programs, maps, perf events), updated from user space only.

    bpf_fd_array_map_update_elem: flags other than BPF_ANY -> -EINVAL, index beyond
    max_entries -> -E2BIG, then the object is checked. Delete: beyond -> -E2BIG, empty
    slot -> -ENOENT. Iteration (get_next_key) visits every index, empty or not.
    """

    indexed = True

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self._slots: dict[int, Any] = {}

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(4, (4,))

    def _accept(self, value: Any) -> tuple[int, Any]:
        """(0, what to store) or (-errno, None) for a value offered to update."""
        raise NotImplementedError

    def _index(self, key: bytes) -> int:
        return _u32(self._key(key))

    def lookup(self, key: bytes, cpu: int = 0) -> Any:
        return self._slots.get(self._index(key))

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

    def get_next_key(self, key: bytes | None) -> bytes | None:
        return _next_index(None if key is None else self._index(key), self.max_entries)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter([(_le32(i), self._slots[i]) for i in sorted(self._slots)])

    def clear(self) -> None:
        self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)


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


class HashOfMaps(_MapInMap, BpfMap):
    """BPF_MAP_TYPE_HASH_OF_MAPS: key -> inner BpfMap, with HASH update and delete rules.

    The inner map is checked first (-EINVAL), then flags above BPF_EXIST (-EINVAL),
    BPF_NOEXIST / BPF_EXIST (-EEXIST / -ENOENT) and capacity (-E2BIG).
    """

    type_name = "hash_of_maps"
    value_form = "inner"

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self._entries: OrderedDict[bytes, BpfMap] = OrderedDict()

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(None, (4,))
        if self.key_size <= 0:
            self._bad_def(f"key_size {self.key_size} must be positive")

    def lookup(self, key: bytes, cpu: int = 0) -> BpfMap | None:
        return self._entries.get(self._key(key))

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

    def delete(self, key: bytes) -> int:
        return 0 if self._entries.pop(self._key(key), None) is not None else -ENOENT

    def get_next_key(self, key: bytes | None) -> bytes | None:
        return _next_key(list(self._entries), None if key is None else self._key(key))

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter(list(self._entries.items()))

    def clear(self) -> None:
        self._entries.clear()



# ---------------------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------------------
MAP_CLASSES: dict[str, type[BpfMap]] = {
    cls.type_name: cls
    for cls in (ArrayMap, PercpuArrayMap, HashMap, PercpuHashMap, LruHashMap,
                LruPercpuHashMap, LpmTrieMap, ArrayOfMaps, HashOfMaps, ProgArray, DevMap,
                DevMapHash, CpuMap, XskMap, PerfEventArray, RingBuf)
}
assert all(name in MAP_TYPE_IDS for name in MAP_CLASSES)


def create_map(defn: MapDef, num_cpus: int = 1) -> BpfMap:
    """A new map for ``defn`` on a machine with ``num_cpus`` CPUs.

    Global data (``defn.is_global_data``: .data, .rodata, .bss) becomes a one-entry ARRAY
    whose value is ``defn.initial`` padded with zeros to value_size (the section size;
    len(initial) when value_size is 0), all zeros for .bss. PROG_ARRAY slots named in
    ``defn.values`` are filled with the program names. A definition the kernel would
    refuse, or a type we do not model, raises ElfError naming the map and the type.
    """
    if defn.is_global_data:
        return _global_data(defn, num_cpus)
    type_name = map_type_name(defn.type)
    cls = MAP_CLASSES.get(type_name or "")
    if cls is None:
        shown = type_name if type_name is not None else f"type id {defn.type}"
        raise ElfError(f"map '{defn.name}': map type '{shown}' is not supported "
                       f"(supported: {', '.join(sorted(MAP_CLASSES))})")
    m = cls(defn, num_cpus)
    if isinstance(m, ProgArray):
        for index, prog in sorted(defn.values.items()):
            if m.update(_le32(index), prog) != 0:
                raise ElfError(f"map '{defn.name}': initial slot {index} is beyond "
                               f"max_entries {defn.max_entries}")
    return m


def _global_data(defn: MapDef, num_cpus: int) -> ArrayMap:
    initial = defn.initial or b""
    size = defn.value_size or len(initial)
    if size <= 0:
        raise ElfError(f"map '{defn.name}': global data section {defn.section} is empty")
    if len(initial) > size:
        raise ElfError(f"map '{defn.name}': initial contents are {len(initial)} bytes, "
                       f"value_size is {size}")
    array_def = dataclasses.replace(defn, type=MAP_TYPE_IDS["array"], key_size=4,
                                    value_size=size, max_entries=1)
    m = ArrayMap(array_def, num_cpus)
    if initial:
        m.update(_le32(0), initial.ljust(size, b"\0"))
    return m


def create_maps(defns: Iterable[MapDef], num_cpus: int = 1) -> dict[str, BpfMap]:
    """Every map of an object by name, with map-in-map slots from ``defn.values`` (index ->
    inner map name) pointing at the inner maps created here."""
    maps: dict[str, BpfMap] = {}
    defns = list(defns)
    for defn in defns:
        if defn.name in maps:
            raise ElfError(f"map '{defn.name}' is defined twice")
        maps[defn.name] = create_map(defn, num_cpus)
    for defn in defns:
        outer = maps[defn.name]
        if not isinstance(outer, (ArrayOfMaps, HashOfMaps)):
            continue
        for index, inner_name in sorted(defn.values.items()):
            inner = maps.get(inner_name)
            if inner is None:
                raise ElfError(f"map '{defn.name}': slot {index} names unknown map "
                               f"'{inner_name}'")
            err = outer.update(_le32(index), inner)
            if err:
                raise ElfError(f"map '{defn.name}': slot {index} = '{inner_name}' failed "
                               f"with {errno_name(err)}")
    return maps
