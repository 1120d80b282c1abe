"""Redirect targets: DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP (part of ebpf.maps)."""

from __future__ import annotations

from typing import Any

from ebpf.maps.base import (
    BPF_ANY,
    BPF_EXIST,
    BPF_NOEXIST,
    CPUMAP_MAX_QSIZE,
    E2BIG,
    EEXIST,
    EINVAL,
    ENODEV,
    ENOENT,
    EOVERFLOW,
    KeyedMap,
    SlotMap,
    _le32,
    _s32,
    _u32,
)


# ---------------------------------------------------------------------------------------
# redirect maps: DEVMAP, DEVMAP_HASH (kernel/bpf/devmap.c), CPUMAP (cpumap.c),
# XSKMAP (net/xdp/xskmap.c)
# ---------------------------------------------------------------------------------------
class _RedirectSlots(SlotMap):
    """A redirect map indexed by a u32 slot: 4-byte keys, values of ``value_sizes``; an
    update checks the flags and the index as every such map does, then ``_apply``."""

    value_sizes: tuple[int, ...] = (4, 8)

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(4, self.value_sizes)

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        index = self._index(key)
        data = self._value(value)
        return self._update_bounds(index, flags) or self._apply(index, data, flags)

    def _apply(self, index: int, data: bytes, flags: int) -> int:
        """Store ``data`` at ``index`` (flags and index already checked): 0 or -errno."""
        raise NotImplementedError


class DevMap(_RedirectSlots):
    """BPF_MAP_TYPE_DEVMAP: index -> u32 ifindex, or struct bpf_devmap_val (value_size 8:
    ifindex, then a program fd).

    Update: flags above BPF_EXIST -> -EINVAL, index beyond -> -E2BIG, BPF_NOEXIST ->
    -EEXIST; ifindex 0 empties the slot (-EINVAL if it also names a program). Any nonzero
    ifindex is accepted (the kernel requires an existing netdev) and the value is stored as
    given (the kernel stores the program's id where the fd was).
    """

    type_name = "devmap"

    def _apply(self, index: int, data: bytes, flags: int) -> int:
        if flags == BPF_NOEXIST:
            return -EEXIST
        if _u32(data) == 0:
            if self.value_size == 8 and _s32(data[4:]) > 0:
                return -EINVAL
            self._slots.pop(index, None)
            return 0
        self._set(index, data)
        return 0

    def redirect_target(self, key: int) -> int | None:
        """The ifindex at index ``key`` (truncated to u32, as the helper does), or None."""
        slot = self._slots.get(key & 0xFFFFFFFF)
        return _u32(slot) if slot is not None else None


class DevMapHash(KeyedMap):
    """BPF_MAP_TYPE_DEVMAP_HASH: any u32 key -> ifindex (or struct bpf_devmap_val).

    Update: flags above BPF_EXIST or ifindex 0 -> -EINVAL; BPF_NOEXIST on an existing key
    -> -EEXIST; a new key when full -> -E2BIG. The kernel does not check BPF_EXIST here:
    it inserts. Delete of a missing key -> -ENOENT.
    """

    type_name = "devmap_hash"

    def _validate(self) -> None:
        super()._validate()
        self._require_sizes(4, (4, 8))

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY,
               cpu: int | None = None) -> int:
        key = self._key(key)
        data = self._value(value)
        if flags > BPF_EXIST or _u32(data) == 0:
            return -EINVAL
        entry = self._entries.get(key)
        if entry is not None and flags & BPF_NOEXIST:
            return -EEXIST
        if entry is not None:
            entry[:] = data
            return 0
        if len(self._entries) >= self.max_entries:
            return -E2BIG
        self._entries[key] = bytearray(data)
        return 0

    def redirect_target(self, key: int) -> int | None:
        """The ifindex stored under ``key`` (truncated to u32), or None."""
        entry = self._entries.get(_le32(key))
        return _u32(entry) if entry is not None else None


class CpuMap(_RedirectSlots):
    """BPF_MAP_TYPE_CPUMAP: cpu index -> u32 qsize, or struct bpf_cpumap_val (value_size 8:
    qsize, then a program fd).

    Update: flags above BPF_EXIST -> -EINVAL, index beyond -> -E2BIG, BPF_NOEXIST ->
    -EEXIST, qsize above 16384 -> -EOVERFLOW, a CPU that does not exist (index >=
    num_cpus) -> -ENODEV; qsize 0 empties the slot.
    """

    type_name = "cpumap"

    def _apply(self, index: int, data: bytes, flags: int) -> int:
        if flags == BPF_NOEXIST:
            return -EEXIST
        qsize = _u32(data)
        if qsize > CPUMAP_MAX_QSIZE:
            return -EOVERFLOW
        if index >= self.num_cpus:
            return -ENODEV
        if qsize == 0:
            self._slots.pop(index, None)
        else:
            self._set(index, data)
        return 0

    def redirect_target(self, key: int) -> int | None:
        """The destination CPU (the key, truncated to u32) when its slot is set, else None."""
        index = key & 0xFFFFFFFF
        return index if index in self._slots else None


class XskMap(_RedirectSlots):
    """BPF_MAP_TYPE_XSKMAP: index -> AF_XDP socket, a u32 placeholder for its fd.

    We read the placeholder as the socket's identity (by convention the queue id it is
    bound to); ``redirect_target`` returns it. Update: flags above BPF_EXIST -> -EINVAL,
    index beyond -> -E2BIG; setting the socket already there succeeds whatever the flags;
    otherwise BPF_NOEXIST on a set slot -> -EEXIST, BPF_EXIST on an empty one -> -ENOENT.
    """

    type_name = "xskmap"

    value_sizes = (4,)

    def _apply(self, index: int, data: bytes, flags: int) -> int:
        old = self._slots.get(index)
        if old is not None and bytes(old) == data:
            return 0
        if old is not None and flags == BPF_NOEXIST:
            return -EEXIST
        if old is None and flags == BPF_EXIST:
            return -ENOENT
        self._set(index, data)
        return 0

    def redirect_target(self, key: int) -> int | None:
        """The socket placeholder at index ``key`` (truncated to u32), or None."""
        slot = self._slots.get(key & 0xFFFFFFFF)
        return _u32(slot) if slot is not None else None


