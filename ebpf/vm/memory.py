"""The VM's memory: tagged regions at synthetic addresses, every access bounds-checked.

A pointer is a plain 64-bit integer, as in the kernel. Each region (the packet frame, the
XDP context, one stack per call frame, each map value the program has looked up, global
data, a caller-provided buffer) gets its own base address, ``REGION_STRIDE`` (4 GiB) apart,
so pointer arithmetic and comparisons (``data + 14 > data_end``) behave as they do on real
memory, and any address that is not inside a region is caught. Every load and store finds
its region by bisecting the sorted bases and checks ``[lo, hi)``, the part of the region the
program may touch (for the packet: ``data_meta .. data_end``, which the XDP adjust helpers
move). A failed check raises ``VmError`` describing the access; the VM adds the slot index
and C source line. Memory never returns bytes it does not own.

Map values are mapped on demand: the first time a lookup returns a given ``bytearray`` (the
map's own storage for that entry) it becomes a region, and later lookups of the same entry
return the same address, so writes through the pointer update the map.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Callable
from enum import Enum

from ebpf.errors import VmError

REGION_STRIDE = 1 << 32
FIRST_BASE = 0x1000_0000_0000  # well away from 0, so small integers are never pointers
NULL_GUARD = 0x10000  # addresses below this are reported as NULL dereferences

_UNSIGNED = {1: struct.Struct("<B"), 2: struct.Struct("<H"), 4: struct.Struct("<I"),
             8: struct.Struct("<Q")}
_MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}


class RegionKind(Enum):
    PACKET = "packet"
    CTX = "ctx"
    STACK = "stack"
    MAP_VALUE = "map value"
    MEM = "memory"  # a caller-provided buffer (Vm.run)


class Region:
    """One addressable object. ``lo``/``hi`` bound the accessible part of ``buf``.

    ``origin`` is the offset that error messages call 0 (the packet's ``data``, the top of a
    stack frame), so a fault reads ``packet data+60`` or ``stack fp-520``. ``load_hook``
    replaces plain loads (the XDP context converts 32-bit fields into pointers);
    ``store_error`` makes every store fail with that text (the context is read-only).
    """

    __slots__ = ("kind", "name", "base", "buf", "lo", "hi", "readonly", "origin", "map_name",
                 "key", "load_hook", "store_error", "atomic_ok")

    def __init__(self, kind: RegionKind, name: str, base: int, buf: bytearray, *, lo: int = 0,
                 hi: int | None = None, readonly: bool = False, origin: int = 0,
                 map_name: str | None = None, key: bytes | None = None,
                 load_hook: Callable[[int, int], int] | None = None,
                 store_error: str | None = None, atomic_ok: bool = True) -> None:
        self.kind = kind
        self.name = name
        self.base = base
        self.buf = buf
        self.lo = lo
        self.hi = len(buf) if hi is None else hi
        self.readonly = readonly
        self.origin = origin
        self.map_name = map_name
        self.key = key
        self.load_hook = load_hook
        self.store_error = store_error
        self.atomic_ok = atomic_ok

    def describe(self, off: int) -> str:
        """A human position: ``packet data+14``, ``stack fp-8``, ``map 'm' value+4``."""
        rel = off - self.origin
        if self.kind is RegionKind.PACKET:
            return f"packet data{rel:+d}"
        if self.kind is RegionKind.STACK:
            return f"stack fp{rel:+d}"
        if self.kind is RegionKind.MAP_VALUE:
            return f"map '{self.map_name}' value+{rel}"
        return f"{self.name}+{rel}"

    @property
    def end(self) -> int:
        return self.base + len(self.buf)


class Memory:
    """All regions of one VM, addressed by synthetic base addresses."""

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._regions: list[Region] = []
        self._by_buffer: dict[int, Region] = {}
        self._next_base = FIRST_BASE
        # Called as on_map_write(region, offset, size, op) after a write into a map value.
        self.on_map_write: Callable[[Region, int, int, str], None] | None = None

    # -- regions ---------------------------------------------------------------------------

    def add(self, kind: RegionKind, name: str, buf: bytearray, **options) -> Region:
        """Map ``buf`` at a fresh base address (above every existing region)."""
        base = self._next_base
        self._next_base += REGION_STRIDE * (1 + len(buf) // REGION_STRIDE)
        region = Region(kind, name, base, buf, **options)
        self._bases.append(base)
        self._regions.append(region)
        return region

    def map_value(self, buf: bytearray, map_name: str, key: bytes | None,
                  readonly: bool = False) -> Region:
        """The region of a map value object, created on first use; the address is stable."""
        region = self._by_buffer.get(id(buf))
        if region is None or region.buf is not buf:
            region = self.add(RegionKind.MAP_VALUE, map_name, buf, readonly=readonly,
                              map_name=map_name, key=key)
            self._by_buffer[id(buf)] = region
        return region

    def find_map_value(self, buf: bytearray) -> Region | None:
        """The region ``map_value`` created for this value object, or None (none yet)."""
        region = self._by_buffer.get(id(buf))
        return region if region is not None and region.buf is buf else None

    @property
    def regions(self) -> list[Region]:
        """Every region, in the order (and base address order) they were added."""
        return self._regions

    def find(self, addr: int) -> Region | None:
        """The region whose address range contains ``addr`` (ignoring lo/hi), or None."""
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            region = self._regions[i]
            if addr < region.base + len(region.buf):
                return region
        return None

    # -- checked access --------------------------------------------------------------------

    def _locate(self, addr: int, size: int, access: str) -> tuple[Region, int]:
        """Region and offset of an access, or VmError saying why it is not allowed.

        An address within half a stride of a region (before or after it) is reported as an
        out-of-bounds access of that region, anything else as a wild pointer.
        """
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            region = self._regions[i]
            off = addr - region.base
            if region.lo <= off and off + size <= region.hi:
                return region, off
        near = None
        for j in (i, i + 1):
            if 0 <= j < len(self._regions):
                region = self._regions[j]
                off = addr - region.base
                if -REGION_STRIDE // 2 < off < len(region.buf) + REGION_STRIDE // 2:
                    near = (region, off)
                    break
        if near is None:
            raise self._wild(addr, size, access)
        region, off = near
        raise VmError(
            f"out of bounds {region.kind.value} {access} of {size} bytes at "
            f"{region.describe(off)} (valid: {region.describe(region.lo)} .. "
            f"{region.describe(region.hi)})")

    @staticmethod
    def _wild(addr: int, size: int, access: str) -> VmError:
        if addr < NULL_GUARD:
            return VmError(f"null pointer dereference: {access} of {size} bytes at 0x{addr:x}")
        return VmError(f"invalid {access} of {size} bytes at 0x{addr:x}: not a pointer into "
                       f"any memory region")

    def load(self, addr: int, size: int) -> int:
        """Unsigned little-endian load of ``size`` (1, 2, 4, 8) bytes."""
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            region = self._regions[i]
            off = addr - region.base
            if region.lo <= off and off + size <= region.hi:
                if region.load_hook is not None:
                    return region.load_hook(off, size)
                return _UNSIGNED[size].unpack_from(region.buf, off)[0]
        region, off = self._locate(addr, size, "read")  # raises with the reason
        raise AssertionError("unreachable")  # pragma: no cover

    def store(self, addr: int, size: int, value: int) -> None:
        """Little-endian store of the low ``size`` bytes of ``value``."""
        i = bisect_right(self._bases, addr) - 1
        if i >= 0:
            region = self._regions[i]
            off = addr - region.base
            if region.lo <= off and off + size <= region.hi and not region.readonly \
                    and region.store_error is None:
                _UNSIGNED[size].pack_into(region.buf, off, value & _MASKS[size])
                if region.map_name is not None and self.on_map_write is not None:
                    self.on_map_write(region, off, size, "store")
                return
        region, off = self._locate(addr, size, "write")
        self._check_writable(region, off)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _check_writable(region: Region, off: int) -> None:
        if region.store_error is not None:
            raise VmError(region.store_error)
        if region.readonly:
            raise VmError(f"write to read-only {region.describe(off)}")

    def atomic_region(self, addr: int, size: int) -> tuple[Region, int]:
        """Region and offset for an atomic read-modify-write (stack and map values only)."""
        region, off = self._locate(addr, size, "atomic access")
        self._check_writable(region, off)
        if not region.atomic_ok:
            raise VmError(f"atomic operation on {region.kind.value} memory is not allowed "
                          f"(the verifier rejects it): {region.describe(off)}")
        return region, off

    def atomic_done(self, region: Region, off: int, size: int) -> None:
        if region.map_name is not None and self.on_map_write is not None:
            self.on_map_write(region, off, size, "atomic")

    def read(self, addr: int, size: int) -> bytes:
        """``size`` bytes at ``addr`` (a helper's memory argument); size 0 reads nothing."""
        if size == 0:
            return b""
        region, off = self._locate(addr, size, "read")
        if region.load_hook is not None:
            raise VmError(f"helper cannot read {region.kind.value} memory directly")
        return bytes(region.buf[off:off + size])

    def write(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr`` (a helper's output argument)."""
        if not data:
            return
        region, off = self._locate(addr, len(data), "write")
        self._check_writable(region, off)
        region.buf[off:off + len(data)] = data
        if region.map_name is not None and self.on_map_write is not None:
            self.on_map_write(region, off, len(data), "store")

    def read_cstring(self, addr: int, limit: int) -> bytes:
        """Bytes from ``addr`` up to a NUL or ``limit`` bytes or the end of the region."""
        region, off = self._locate(addr, 1, "read")
        end = min(region.hi, off + limit)
        chunk = bytes(region.buf[off:end])
        nul = chunk.find(b"\0")
        return chunk if nul < 0 else chunk[:nul]
