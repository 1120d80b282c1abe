"""Map contents as JSON: the format the VM and the kernel bridge both read and write.

    {"maps": {"<map name>": [<entry>, ...], ...}}

Entries, by map type (hex is lowercase, no separators, key_size / value_size bytes):

- most maps: ``{"key": "<hex>", "value": "<hex>"}``
- per-CPU maps (percpu_array, percpu_hash, lru_percpu_hash):
  ``{"key": "<hex>", "values": ["<hex>", ...]}`` with one value per CPU
- array_of_maps, hash_of_maps: ``{"key": "<hex>", "inner": "<inner map name>"}``
- prog_array: ``{"key": "<hex>", "prog": "<program name>"}``
- ringbuf: always ``[]`` (it has no entries; its records are not state)

``dump_state`` lists every entry that exists, except the all-zero entries of arrays and
percpu_arrays (every index of an array exists; an index not listed is zero), so that a
dump from the kernel and one from the VM compare equal and cost what the entries in use
cost, not what max_entries declares. Entries are in
index order for index-keyed maps (arrays, fd arrays, devmap, cpumap, xskmap) and sorted by
key bytes for the others (the kernel's hash order is arbitrary). LRU recency is not part
of the state: loading inserts in document order.

``load_state`` replaces the contents of every map the document names (arrays are zeroed
first) and leaves the others alone, so ``dump_state`` after ``load_state(doc)`` gives
``doc`` back for a document in that order. It is an update from user space: per-CPU
entries set every CPU. The whole document is checked before any map changes; an update
the map then refuses (e.g. cpumap qsize above 16384) raises with the errno, and maps
earlier in the document keep their new contents.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ebpf.errors import EbpfError
from ebpf.jsonfile import read_json
from ebpf.maps.array import PercpuArrayMap
from ebpf.maps.base import BPF_ANY, BpfMap, errno_name
from ebpf.maps.hash import PercpuHashMap


class MapStateError(EbpfError):
    """A map state document that cannot be loaded; the message names file, map and key."""


_FIELDS = {"bytes": "value", "percpu": "values", "inner": "inner", "prog": "prog"}


def dump_state(maps: Mapping[str, BpfMap]) -> dict[str, Any]:
    """The contents of ``maps`` (name -> map) as a JSON-ready state document."""
    names = {id(m): name for name, m in maps.items()}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, m in maps.items():
        entries = list(m.iter_state())
        if not m.indexed:
            entries.sort(key=lambda kv: kv[0])
        out[name] = [_dump_entry(m, key, value, names) for key, value in entries]
    return {"maps": out}


def _dump_entry(m: BpfMap, key: bytes, value: Any, names: dict[int, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": key.hex()}
    if m.value_form == "percpu":
        entry["values"] = [bytes(v).hex() for v in value]
    elif m.value_form == "inner":
        entry["inner"] = names.get(id(value), value.name)
    elif m.value_form == "prog":
        entry["prog"] = value if isinstance(value, str) else str(getattr(value, "name", value))
    else:
        entry["value"] = bytes(value).hex()
    return entry


def load_state(maps: Mapping[str, BpfMap], doc: Mapping[str, Any] | str | os.PathLike[str],
               *, programs: Mapping[str, Any] | None = None) -> None:
    """Load a state document (a dict, or the path of a JSON file) into ``maps``.

    prog_array entries store the program name, or ``programs[name]`` when ``programs`` is
    given (an unknown name is then an error). Raises MapStateError for anything malformed:
    not JSON, bad hex, wrong sizes, unknown maps / inner maps / programs / fields,
    duplicate keys, more entries than max_entries, an update the map refuses.
    """
    source, doc = read_state(doc)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("maps"), Mapping):
        raise MapStateError(f"{source}: expected an object with a \"maps\" object")
    plans = []
    for name, entries in doc["maps"].items():
        m = maps.get(name)
        if m is None:
            known = ", ".join(sorted(maps)) or "none"
            raise MapStateError(f"{source}: map '{name}': no such map (have: {known})")
        plans.append((name, m, _parse_entries(source, name, m, entries, maps, programs)))
    for name, m, parsed in plans:
        m.clear()
        for key, value in parsed:
            if isinstance(m, (PercpuArrayMap, PercpuHashMap)):
                err = m.update_percpu(key, value, BPF_ANY)
            else:
                err = m.update(key, value, BPF_ANY)
            if err:
                raise MapStateError(f"{source}: map '{name}', key {key.hex()}: update "
                                    f"failed with {errno_name(err)}")


def read_state(doc: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[str, Any]:
    """(the source name for messages, the document) from a dict or the path of a JSON file;
    MapStateError for a file that cannot be read or is not JSON."""
    if isinstance(doc, Mapping):
        return "<state>", doc
    return os.fspath(doc), read_json(doc, MapStateError)


def _parse_entries(source: str, name: str, m: BpfMap, entries: Any,
                   maps: Mapping[str, BpfMap],
                   programs: Mapping[str, Any] | None) -> list[tuple[bytes, Any]]:
    where = f"{source}: map '{name}'"
    if not isinstance(entries, list):
        raise MapStateError(f"{where}: expected a list of entries, "
                            f"got {type(entries).__name__}")
    if m.value_form == "none" and entries:
        raise MapStateError(f"{where}: a {m.type_name} map has no entries, got "
                            f"{len(entries)}")
    if not m.indexed and len(entries) > m.max_entries:
        raise MapStateError(f"{where}: {len(entries)} entries exceed max_entries "
                            f"{m.max_entries}")
    return parse_entry_list(
        where, entries, m.key_size, _FIELDS.get(m.value_form, "value"), m.type_name,
        lambda at, raw: _parse_value(at, m, raw, maps, programs))


def parse_entry_list(where: str, entries: list[Any], key_size: int, field: str, kind: str,
                     value: Callable[[str, Any], Any]) -> list[tuple[bytes, Any]]:
    """(key bytes, ``value(at, raw)``) of each entry object of a state document's map:
    ``{"key": hex, field: ...}``, keys of ``key_size`` bytes, no key twice, no other field.
    The VM's maps and the kernel bridge read the document through this one loop."""
    parsed: list[tuple[bytes, Any]] = []
    seen: set[bytes] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "key" not in entry:
            raise MapStateError(f"{where}, entry {i}: expected an object with \"key\"")
        raw_key = entry["key"]
        at = f"{where}, key {raw_key}"
        key = parse_hex(at, "key", raw_key, key_size)
        if key in seen:
            raise MapStateError(f"{at}: duplicate key")
        seen.add(key)
        extra = set(entry) - {"key", field}
        if extra:
            raise MapStateError(f"{at}: unexpected field '{sorted(extra)[0]}' "
                                f"(a {kind} entry has \"key\" and \"{field}\")")
        if field not in entry:
            raise MapStateError(f"{at}: missing \"{field}\"")
        parsed.append((key, value(at, entry[field])))
    return parsed


def _parse_value(at: str, m: BpfMap, raw: Any, maps: Mapping[str, BpfMap],
                 programs: Mapping[str, Any] | None) -> Any:
    if m.value_form == "percpu":
        if not isinstance(raw, list) or len(raw) != m.num_cpus:
            got = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise MapStateError(f"{at}: \"values\" must list one value per CPU: got {got}, "
                                f"expected {m.num_cpus}")
        return [parse_hex(f"{at}, cpu {cpu}", "value", v, m.value_size)
                for cpu, v in enumerate(raw)]
    if m.value_form == "inner":
        inner = maps.get(raw) if isinstance(raw, str) else None
        if inner is None:
            raise MapStateError(f"{at}: inner map {raw!r} does not exist")
        return inner
    if m.value_form == "prog":
        if not isinstance(raw, str) or not raw:
            raise MapStateError(f"{at}: \"prog\" must be a program name, got {raw!r}")
        if programs is None:
            return raw
        if raw not in programs:
            raise MapStateError(f"{at}: no program named '{raw}'")
        return programs[raw]
    return parse_hex(at, "value", raw, m.value_size)


def parse_hex(at: str, what: str, raw: Any, size: int) -> bytes:
    """A state document's hex field of exactly ``size`` bytes, or MapStateError at ``at``."""
    if not isinstance(raw, str):
        raise MapStateError(f"{at}: {what} must be a hex string, got {raw!r}")
    try:
        data = bytes.fromhex(raw)
    except ValueError as exc:
        raise MapStateError(f"{at}: {what} {raw!r} is not hex") from exc
    if len(data) != size:
        raise MapStateError(f"{at}: {what} is {len(data)} bytes, expected {size}")
    return data
