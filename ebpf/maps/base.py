"""The common part of ebpf.maps: flags, errno values, the BpfMap base class."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

from ebpf.errors import ElfError, VmError
from ebpf.loader.program import MapDef

# bpf_map_update_elem flags (include/uapi/linux/bpf.h)
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

# map creation flags
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
BPF_F_INNER_MAP = 1 << 12

# bpf_perf_event_output flags
BPF_F_INDEX_MASK = 0xFFFFFFFF
BPF_F_CURRENT_CPU = BPF_F_INDEX_MASK
BPF_F_CTXLEN_MASK = 0xFFFFF << 32

# bpf_ringbuf_output / submit / discard flags
BPF_RB_NO_WAKEUP = 1
BPF_RB_FORCE_WAKEUP = 2
BPF_RINGBUF_HDR_SZ = 8
RINGBUF_MAX_RECORD_SZ = 0xFFFFFFFF // 4
PAGE_SIZE = 4096

CPUMAP_MAX_QSIZE = 16384  # kernel/bpf/cpumap.c sanity limit
# The kernel's size limits at map creation, checked before anything is allocated:
# KMALLOC_MAX_SIZE = 1 << (MAX_PAGE_ORDER + PAGE_SHIFT) = 4 MiB on x86-64
# (include/linux/slab.h); array_map_alloc_check (kernel/bpf/arraymap.c) refuses larger
# values with E2BIG, htab_map_alloc_check (kernel/bpf/hashtab.c) too, and keys longer
# than MAX_BPF_STACK (include/linux/filter.h), which no map type accepts.
KMALLOC_MAX_SIZE = 1 << 22
MAX_BPF_STACK = 512
U32_MAX = 0xFFFFFFFF

# Linux errno values (the host's errno module differs on other systems)
ENOENT = 2
E2BIG = 7
EAGAIN = 11
EFAULT = 14
EEXIST = 17
ENODEV = 19
EINVAL = 22
ENOSPC = 28
EOVERFLOW = 75
EOPNOTSUPP = 95
ENOTSUPP = 524  # kernel-internal, returned by bpf(2) for unsupported map operations

ERRNO_NAMES: dict[int, str] = {
    ENOENT: "ENOENT", E2BIG: "E2BIG", EAGAIN: "EAGAIN", EFAULT: "EFAULT", EEXIST: "EEXIST",
    ENODEV: "ENODEV", EINVAL: "EINVAL", ENOSPC: "ENOSPC", EOVERFLOW: "EOVERFLOW",
    EOPNOTSUPP: "EOPNOTSUPP", ENOTSUPP: "ENOTSUPP",
}


def errno_name(ret: int) -> str:
    """'-EEXIST' for -17, '0' for 0: a helper return code as the kernel headers spell it."""
    if ret >= 0:
        return str(ret)
    return "-" + ERRNO_NAMES.get(-ret, str(-ret))


def _u32(data: bytes | bytearray) -> int:
    return int.from_bytes(data[:4], "little")


def _s32(data: bytes | bytearray) -> int:
    return int.from_bytes(data[:4], "little", signed=True)


def _le32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


def _next_index(index: int | None, max_entries: int) -> bytes | None:
    """Array iteration: every index in order; a missing or out-of-range key restarts at 0."""
    if index is None or index >= max_entries:
        return _le32(0)
    if index == max_entries - 1:
        return None
    return _le32(index + 1)


def _next_key(keys: Sequence[bytes], key: bytes | None) -> bytes | None:
    """Hash-table iteration: a missing or unknown key restarts at the first key."""
    if not keys:
        return None
    if key is None or key not in keys:
        return keys[0]
    i = keys.index(key)
    return keys[i + 1] if i + 1 < len(keys) else None


@dataclass(frozen=True)
class OutputRecord:
    """One record written by bpf_perf_event_output or bpf_ringbuf_output / submit."""

    cpu: int
    data: bytes


def check_map_sizes(name: str, key_size: int, value_size: int, max_entries: int) -> None:
    """Raise ElfError when a declared size is one the kernel refuses (E2BIG) or does not
    fit bpf_attr's u32 fields: called where definitions enter, before any allocation."""
    if not 0 <= key_size <= MAX_BPF_STACK:
        raise ElfError(f"map '{name}': key_size {key_size} exceeds the kernel's limit "
                       f"{MAX_BPF_STACK} (MAX_BPF_STACK)")
    if not 0 <= value_size <= KMALLOC_MAX_SIZE:
        raise ElfError(f"map '{name}': value_size {value_size} exceeds the kernel's limit "
                       f"{KMALLOC_MAX_SIZE} (KMALLOC_MAX_SIZE)")
    if not 0 <= max_entries <= U32_MAX:
        raise ElfError(f"map '{name}': max_entries {max_entries} is not a u32")


class BpfMap:
    """A map instance. Subclasses model one kernel map type each.

    Keys and values are bytes of exactly ``key_size`` / ``value_size``; anything else is a
    VM bug and raises ``VmError``. Operations return 0 or a negative Linux errno.
    """

    type_name: ClassVar[str] = ""
    value_form: ClassVar[str] = "bytes"  # JSON state: bytes | percpu | inner | prog | none
    indexed: ClassVar[bool] = False  # keys are u32 indices below max_entries

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        if num_cpus < 1:
            raise VmError(f"map '{defn.name}': num_cpus must be at least 1, got {num_cpus}")
        self.defn = defn
        self.name = defn.name
        self.key_size = defn.key_size
        self.value_size = defn.value_size
        self.max_entries = defn.max_entries
        self.flags = defn.flags
        self.num_cpus = num_cpus
        self._validate()

    # -- definition checks (the kernel's map_alloc_check) -------------------------------
    def _validate(self) -> None:
        check_map_sizes(self.name, self.key_size, self.value_size, self.max_entries)
        if self.max_entries <= 0:
            self._bad_def(f"max_entries {self.max_entries} must be positive")

    def _bad_def(self, what: str) -> NoReturn:
        raise ElfError(f"map '{self.name}' ({self.type_name}): {what}")

    def _require_sizes(self, key: int | None, values: tuple[int, ...] | None) -> None:
        if key is not None and self.key_size != key:
            self._bad_def(f"key_size {self.key_size}, expected {key}")
        if values is not None and self.value_size not in values:
            want = " or ".join(str(v) for v in values)
            self._bad_def(f"value_size {self.value_size}, expected {want}")

    # -- argument checks -----------------------------------------------------------------
    def _key(self, key: bytes | bytearray | memoryview) -> bytes:
        key = bytes(key)
        if len(key) != self.key_size:
            raise VmError(f"map '{self.name}': key is {len(key)} bytes, "
                          f"expected key_size {self.key_size}")
        return key

    def _value(self, value: bytes | bytearray | memoryview) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise VmError(f"map '{self.name}': value must be bytes, "
                          f"got {type(value).__name__}")
        value = bytes(value)
        if len(value) != self.value_size:
            raise VmError(f"map '{self.name}': value is {len(value)} bytes, "
                          f"expected value_size {self.value_size}")
        return value

    def _check_cpu(self, cpu: int) -> None:
        if not 0 <= cpu < self.num_cpus:
            raise VmError(f"map '{self.name}': cpu {cpu} out of range "
                          f"(num_cpus {self.num_cpus})")

    def _update_args(self, key: Any, value: Any, cpu: int | None) -> tuple[bytes, bytes]:
        """The key and value of a keyed update, sizes checked, and the cpu when given."""
        key, data = self._key(key), self._value(value)
        if cpu is not None:
            self._check_cpu(cpu)
        return key, data

    # -- the operations ------------------------------------------------------------------
    def lookup(self, key: bytes, cpu: int = 0) -> Any:
        """The entry's value (a live bytearray, or the object an fd map holds), or None."""
        raise NotImplementedError

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        """bpf_map_update_elem: 0 or a negative errno. ``cpu=None`` means from user space."""
        raise NotImplementedError

    def delete(self, key: bytes) -> int:
        """bpf_map_delete_elem: 0 or a negative errno."""
        raise NotImplementedError

    def get_next_key(self, key: bytes | None) -> bytes | None:
        """BPF_MAP_GET_NEXT_KEY: the key after ``key`` (the first for None), None at the end."""
        raise NotImplementedError

    def items(self) -> Iterator[tuple[bytes, Any]]:
        """Existing entries as (key, value); per-CPU values are lists with one per CPU.

        Does not count as a use for LRU maps.
        """
        raise NotImplementedError

    def clear(self) -> None:
        """Remove every entry (arrays: zero every value in place)."""
        raise NotImplementedError

    def iter_state(self) -> Iterator[tuple[bytes, Any]]:
        """The entries a state document lists: ``items`` without the all-zero values of
        maps whose every index always exists (arrays), so the cost follows the entries
        in use, not max_entries."""
        return self.items()

    def redirect_target(self, key: int) -> int | None:
        """For bpf_redirect_map: the target (ifindex / cpu / queue), None when the slot is empty."""
        raise VmError(f"map '{self.name}' ({self.type_name}) cannot be used with "
                      f"bpf_redirect_map")

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} '{self.name}' key_size={self.key_size} "
                f"value_size={self.value_size} max_entries={self.max_entries}>")


class SlotMap(BpfMap):
    """u32 index -> value slots that may be empty; get_next_key visits every index (the
    redirect maps and the fd arrays)."""

    indexed = True

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self._slots: dict[int, Any] = {}

    def _index(self, key: bytes) -> int:
        return _u32(self._key(key))

    def _set(self, index: int, data: bytes) -> None:
        slot = self._slots.get(index)
        if slot is None:
            self._slots[index] = bytearray(data)
        else:
            slot[:] = data

    def lookup(self, key: bytes, cpu: int = 0) -> Any:
        return self._slots.get(self._index(key))

    def _update_bounds(self, index: int, flags: int) -> int:
        """The redirect maps' first update checks: flags above BPF_EXIST -> -EINVAL, an
        index beyond max_entries -> -E2BIG; else 0."""
        if flags > BPF_EXIST:
            return -EINVAL
        if index >= self.max_entries:
            return -E2BIG
        return 0

    def delete(self, key: bytes) -> int:
        """Empty the slot: -EINVAL beyond max_entries, else 0 (even if already empty)."""
        index = self._index(key)
        if index >= self.max_entries:
            return -EINVAL
        self._slots.pop(index, None)
        return 0

    def get_next_key(self, key: bytes | None) -> bytes | None:
        return _next_index(None if key is None else self._index(key), self.max_entries)

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter([(_le32(i), self._slots[i]) for i in sorted(self._slots)])

    def clear(self) -> None:
        self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)


class KeyedMap(BpfMap):
    """key -> value entries in insertion order; iteration, delete (-ENOENT when absent) and
    clear of a hash (the hash of maps and the devmap hash; their update rules differ)."""

    def __init__(self, defn: MapDef, num_cpus: int = 1) -> None:
        super().__init__(defn, num_cpus)
        self._entries: OrderedDict[bytes, Any] = OrderedDict()

    def lookup(self, key: bytes, cpu: int = 0) -> Any:
        return self._entries.get(self._key(key))

    def delete(self, key: bytes) -> int:
        return 0 if self._entries.pop(self._key(key), None) is not None else -ENOENT

    def get_next_key(self, key: bytes | None) -> bytes | None:
        return _next_key(list(self._entries), None if key is None else self._key(key))

    def items(self) -> Iterator[tuple[bytes, Any]]:
        return iter(list(self._entries.items()))

    def clear(self) -> None:
        self._entries.clear()
