"""Creating maps from their definitions: one class per ``enum bpf_map_type`` name, global data
sections as one-entry arrays, map-in-map slots resolved by name."""


from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ebpf.errors import ElfError
from ebpf.kernel_enums import MAP_TYPE_IDS, map_type_name
from ebpf.loader.program import MapDef
from ebpf.maps.array import ArrayMap, PercpuArrayMap
from ebpf.maps.base import (
    BpfMap,
    _le32,
    errno_name,
)
from ebpf.maps.fd import ArrayOfMaps, HashOfMaps, PerfEventArray, ProgArray
from ebpf.maps.hash import HashMap, LruHashMap, LruPercpuHashMap, PercpuHashMap
from ebpf.maps.lpm import LpmTrieMap
from ebpf.maps.redirect import CpuMap, DevMap, DevMapHash, XskMap
from ebpf.maps.ringbuf import RingBuf

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
