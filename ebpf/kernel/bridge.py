"""The kernel bridge: an ELF object loaded into the running kernel, the oracle the VM is
compared against.

``KernelObject(path)`` opens and loads the object through libbpf (ctypes over libbpf.so.1,
see ``ebpf.kernel.load``) and keeps it loaded until ``close()`` (or the end of a ``with``
block): programs run through BPF_PROG_TEST_RUN, maps are read and written from user space,
``prog_info`` reads what the verifier and the JIT made of each program. Nothing is attached
and nothing is pinned; every fd belongs to the libbpf object and is closed with it.

Map state uses the VM's JSON format (``ebpf.maps.state``): ``{"maps": {name: [entry, ...]}}``
with ``{"key", "value"}`` entries, ``"values"`` (one per possible CPU) for per-CPU maps,
``"prog"`` (a program name) for prog_array slots and ``"inner"`` (a map name) for map-in-map
slots. What the kernel cannot give back:

- perf_event_array, xskmap, sockmap / sockhash, cgroup_array: user space cannot read their
  slots (ENOTSUPP / EOPNOTSUPP), so they dump as ``[]`` and only ``[]`` loads into them;
  ringbuf, queue, stack and bloom_filter have no keys: ``[]`` as well.
- devmap / cpumap values that name a program hold its id when read back, not the fd written.
- prog_array and map-in-map slots read back as ids; they dump as the names of this object's
  programs and maps (an id from outside the object dumps as ``"#<id>"``).

Global data (.data, .rodata, .bss) are one-entry arrays libbpf names "<obj>.<section>", e.g.
"globals.rodata". ``.rodata`` is frozen after load (user space can read but not write it), so
its contents can only be chosen before load: ``KernelObject(path, state=doc)`` writes every
global-data map the document names as the map's initial value before loading, and the other
maps after loading.

XDP test runs and their results: ``ebpf.kernel.results``.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ebpf.errors import KernelError
from ebpf.kernel.batch import BatchUnsupported, iter_nonzero
from ebpf.kernel.load import (
    DEFAULT_LOG_SIZE,
    MapInfoStruct,
    ProgInfoStruct,
    TestRunOpts,
    bpf_permitted,
    collect_log,
    iter_objects,
    libbpf,
    libbpf_log_capture,
    open_unpinned,
    set_log_bufs,
)
from ebpf.kernel.results import (
    DATA_OUT_SLACK,
    KernelCallError,
    KernelLoadError,
    ProgInfo,
    RunResult,
    XdpMd,
    errno_text,
    test_run_hint,
)
from ebpf.loader.program import MapDef
from ebpf.maps.state import MapStateError, parse_entry_list, parse_hex, read_state

_GENERIC_LOAD_FAILURE = re.compile(r"failed to load object|Error loading|failed to load BPF")

__all__ = [
    "KernelCallError", "KernelLoadError", "KernelObject", "ProgInfo", "RunResult", "XdpMd",
]

# bpf_map_update_elem flags (include/uapi/linux/bpf.h)
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

_INSN_SIZE = 8

# How the JSON state holds a map type's values (the VM's BpfMap.value_form).
_PERCPU = {"percpu_hash", "percpu_array", "lru_percpu_hash", "percpu_cgroup_storage"}
_PROG = {"prog_array"}
_INNER = {"array_of_maps", "hash_of_maps"}
# Nothing user space can read back: no keys, or slots whose lookup the kernel refuses.
_OPAQUE = {
    "perf_event_array", "xskmap", "sockmap", "sockhash", "cgroup_array", "ringbuf",
    "user_ringbuf", "queue", "stack", "bloom_filter", "struct_ops", "sk_storage",
    "inode_storage", "task_storage", "cgrp_storage", "reuseport_sockarray",
}
# u32 index keys below max_entries; get_next_key visits every index.
_INDEXED = {
    "array", "percpu_array", "prog_array", "perf_event_array", "cgroup_array",
    "array_of_maps", "devmap", "cpumap", "xskmap",
}
_ZERO_FILLED = {"array", "percpu_array"}  # every index exists; clearing writes zeros

_STATS_LINE = re.compile(
    r"^(processed \d+ insns|verification time|stack depth|mark_read|-- END PROG LOAD LOG)"
)

StatePath = str | os.PathLike[str]
MapValue = bytes | list[bytes] | str


@dataclass
class _Map:
    """One map of the object: libbpf's handle and its definition."""

    ptr: int
    defn: MapDef
    internal: bool

    @property
    def name(self) -> str:
        return self.defn.name

    @property
    def kind(self) -> str:
        return self.defn.type_name

    @property
    def form(self) -> str:
        """How state entries hold values: bytes | percpu | prog | inner | none."""
        kind = self.kind
        if kind in _OPAQUE:
            return "none"
        if kind in _PERCPU:
            return "percpu"
        if kind in _PROG:
            return "prog"
        if kind in _INNER:
            return "inner"
        return "bytes"


_FIELD = {"bytes": "value", "percpu": "values", "prog": "prog", "inner": "inner"}


def _last_meaningful_line(log: str) -> str:
    """The verifier's last word: the last line that is not a statistic or blank."""
    for line in reversed(log.splitlines()):
        text = line.strip()
        if text and not _STATS_LINE.match(text):
            return text
    return ""


class KernelObject:
    """An ELF object loaded into the kernel through libbpf, until ``close()``.

    ``state`` (a state document or the path of one) is loaded as ``load_state`` would, except
    that global-data maps get it as their initial value before the load, which is the only
    way to choose ``.rodata``. ``log_level`` / ``log_size`` as for ``load_object``: with a
    level, ``log`` keeps every program's verifier log.

    Raises KernelError when bpf(2) is not usable here (with ``bpf_permitted``'s reason),
    KernelLoadError when the object does not load (a verifier rejection names the program
    and the verifier's last line; ``.log`` holds the whole verifier log).

    Everything but getting the fds goes through fds only, so another loader subclasses this
    (``ebpf.kernel.raw.RawKernelObject``) by overriding the libbpf-specific hooks:
    ``_open_and_load`` (fill ``_progs`` with name -> handle, ``_maps`` with name -> _Map,
    load, return the state still to apply), ``_program_fd``, ``_map_fd``, ``closed`` and
    ``close``.
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 state: Mapping[str, Any] | StatePath | None = None,
                 log_level: int = 0, log_size: int = DEFAULT_LOG_SIZE) -> None:
        self.path = os.fspath(path)
        self.log = ""
        self._obj: int | None = None
        self._progs: dict[str, int] = {}
        self._maps: dict[str, _Map] = {}
        self._ids: tuple[dict[int, str], dict[int, str]] | None = None
        # Keys written since load while no program has run: an array's other entries are
        # still the zeros it was created with (None once a program ran: ask the kernel).
        self._written: dict[str, set[bytes]] | None = {}
        permitted, reason = bpf_permitted()
        if not permitted:
            raise KernelError(f"{self.path}: bpf(2) not usable: {reason}")
        self._lib = libbpf()
        self.num_possible_cpus = self._lib.libbpf_num_possible_cpus()
        if self.num_possible_cpus <= 0:
            raise KernelError(f"libbpf_num_possible_cpus failed: "
                              f"{errno_text(-self.num_possible_cpus)}")
        try:
            after_load = self._open_and_load(state, log_level, log_size)
            if after_load is not None:
                self._apply(*after_load)
        except BaseException:
            self.close()
            raise

    # -- life cycle -----------------------------------------------------------------------
    def _open_and_load(self, state: Mapping[str, Any] | StatePath | None, log_level: int,
                       log_size: int) -> tuple[str, list[tuple[_Map, list[Any]]]] | None:
        """Open, apply global-data state, load; returns the state still to apply."""
        lib = self._lib
        with libbpf_log_capture() as sink:
            obj = open_unpinned(lib, self.path)
            if not obj:
                err = ctypes.get_errno() or errno_mod.EINVAL
                detail = _last_meaningful_line(sink.text()).removeprefix("libbpf: ")
                raise KernelError(f"{self.path}: cannot open: {os.strerror(err)}"
                                  + (f" ({detail})" if detail else ""))
            self._obj = obj
            prog_ptrs = list(iter_objects(lib.bpf_object__next_program, obj))
            self._progs = {lib.bpf_program__name(p).decode(): p for p in prog_ptrs}
            for ptr in iter_objects(lib.bpf_object__next_map, obj):
                m = self._map_from_libbpf(ptr)
                self._maps[m.name] = m
            pending = None
            if state is not None:
                source, doc = read_state(state)
                plans = self._plan(source, doc)
                for m, entries in plans:
                    if m.internal:
                        self._set_initial_value(source, m, entries)
                pending = (source, [(m, e) for m, e in plans if not m.internal])
            log_bufs = set_log_bufs(lib, prog_ptrs, log_level, log_size)
            err = lib.bpf_object__load(obj)
            self.log = collect_log(sink, log_bufs)
            if err:
                raise self._load_error(-err, self.log)
        return pending

    def _map_from_libbpf(self, ptr: int) -> _Map:
        lib = self._lib
        name = (lib.bpf_map__name(ptr) or b"").decode()
        internal = bool(lib.bpf_map__is_internal(ptr))
        section = "." + name.split(".", 1)[1] if internal and "." in name else ".maps"
        defn = MapDef(name, lib.bpf_map__type(ptr), lib.bpf_map__key_size(ptr),
                      lib.bpf_map__value_size(ptr), lib.bpf_map__max_entries(ptr),
                      lib.bpf_map__map_flags(ptr), section)
        return _Map(ptr, defn, internal)

    def _load_error(self, err: int, log: str) -> KernelLoadError:
        failed = re.search(r"prog '([^']+)': BPF program load failed", log)
        if failed:
            name = failed.group(1)
            block = re.search(rf"prog '{re.escape(name)}': -- BEGIN PROG LOAD LOG --\n"
                              r"(.*?)-- END PROG LOAD LOG --", log, re.S)
            own = re.search(rf"prog '{re.escape(name)}': verifier log\n(.*?)(?=^prog '|\Z)",
                            log, re.S | re.M)
            verifier_log = block.group(1) if block else own.group(1) if own else log
            last = _last_meaningful_line(verifier_log) or os.strerror(err)
            return KernelLoadError(
                f"{self.path}: program '{name}' rejected by the verifier: {last}",
                verifier_log, name)
        # libbpf ends with "failed to load object 'x'": the cause is the line before it.
        warnings = [line for line in log.splitlines() if line.startswith("libbpf:")
                    and not _GENERIC_LOAD_FAILURE.search(line)]
        detail = warnings[-1].removeprefix("libbpf: ") if warnings else os.strerror(err)
        return KernelLoadError(f"{self.path}: load failed: {detail}", log)

    def close(self) -> None:
        """Unload: close every program and map fd of the object. Safe to call twice."""
        obj, self._obj = getattr(self, "_obj", None), None
        if obj:
            self._lib.bpf_object__close(obj)
        self._progs = {}
        self._maps = {}

    @property
    def closed(self) -> bool:
        return self._obj is None

    def __enter__(self) -> KernelObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: libbpf may be gone already
            pass

    def __repr__(self) -> str:
        status = "closed" if self.closed else f"{len(self._progs)} programs"
        return f"{type(self).__name__}({self.path!r}, {status})"

    def _check_open(self) -> None:
        if self.closed:
            raise KernelError(f"{self.path}: the kernel object is closed")

    # -- programs and maps by name ------------------------------------------------------
    @property
    def program_names(self) -> list[str]:
        """The object's programs, in ELF order."""
        return list(self._progs)

    @property
    def map_names(self) -> list[str]:
        """The object's maps as libbpf names them, in libbpf's order."""
        return list(self._maps)

    def prog_fd(self, name: str | None = None) -> int:
        """The fd of program ``name`` (the first program when None); owned by the object."""
        self._check_open()
        if name is None:
            if not self._progs:
                raise KernelError(f"{self.path}: no programs")
            name = next(iter(self._progs))
        if name not in self._progs:
            known = ", ".join(self._progs) or "none"
            raise KernelError(f"{self.path}: no program named '{name}' (have: {known})")
        return self._program_fd(name)

    def _program_fd(self, name: str) -> int:
        """Hook: the fd of the loaded program ``name`` (a key of ``_progs``)."""
        return int(self._lib.bpf_program__fd(self._progs[name]))

    def map_fd(self, name: str) -> int:
        """The fd of map ``name``; owned by the object."""
        self._check_open()
        return self._map_fd(self._map(name))

    def _map_fd(self, m: _Map) -> int:
        """Hook: the fd of map ``m`` (a value of ``_maps``)."""
        return int(self._lib.bpf_map__fd(m.ptr))

    def _map(self, name: str) -> _Map:
        m = self._maps.get(name)
        if m is None:
            if self.closed:
                self._check_open()
            known = ", ".join(self._maps) or "none"
            raise KernelError(f"{self.path}: no map named '{name}' (have: {known})")
        return m

    def _id_names(self) -> tuple[dict[int, str], dict[int, str]]:
        """(program id -> name, map id -> name) of this object, for fd slots read back."""
        if self._ids is None:
            progs = {self._prog_info(name).id: name for name in self._progs}
            maps = {}
            for name in self._maps:
                info = MapInfoStruct()
                length = ctypes.c_uint32(ctypes.sizeof(info))
                err = self._lib.bpf_obj_get_info_by_fd(self.map_fd(name), ctypes.byref(info),
                                                       ctypes.byref(length))
                if err == 0:
                    maps[info.id] = name
            self._ids = (progs, maps)
        return self._ids

    # -- map operations -----------------------------------------------------------------
    def _stride(self, m: _Map) -> int:
        return (m.defn.value_size + 7) & ~7

    def _value_buffer(self, m: _Map) -> ctypes.Array[ctypes.c_char]:
        size = m.defn.value_size
        if m.form == "percpu":
            size = self._stride(m) * self.num_possible_cpus
        return ctypes.create_string_buffer(max(size, 1))

    def _key_buffer(self, m: _Map, key: bytes) -> ctypes.Array[ctypes.c_char]:
        key = bytes(key)
        if len(key) != m.defn.key_size:
            raise KernelError(f"map '{m.name}': key is {len(key)} bytes, expected key_size "
                              f"{m.defn.key_size}")
        return ctypes.create_string_buffer(key, max(len(key), 1))

    def _encode_value(self, m: _Map, value: MapValue) -> bytes:
        """The bytes bpf_map_update_elem takes for ``value``."""
        size = m.defn.value_size
        if m.form in ("prog", "inner"):
            if not isinstance(value, str):
                what = "a program" if m.form == "prog" else "a map"
                raise KernelError(f"map '{m.name}' ({m.kind}): value must be {what} name, "
                                  f"got {type(value).__name__}")
            fd = self.prog_fd(value) if m.form == "prog" else self.map_fd(value)
            return fd.to_bytes(4, "little")
        if m.form == "percpu":
            values = [value] * self.num_possible_cpus if isinstance(value, bytes) else value
            if not isinstance(values, list | tuple) or len(values) != self.num_possible_cpus:
                got = len(values) if isinstance(values, list | tuple) else type(values).__name__
                raise KernelError(f"map '{m.name}': per-CPU value needs one entry per "
                                  f"possible CPU: got {got}, expected "
                                  f"{self.num_possible_cpus}")
            stride = self._stride(m)
            return b"".join(self._check_size(m, v).ljust(stride, b"\0") for v in values)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise KernelError(f"map '{m.name}': value must be bytes, "
                              f"got {type(value).__name__}")
        if len(value) != size:
            raise KernelError(f"map '{m.name}': value is {len(value)} bytes, expected "
                              f"value_size {size}")
        return bytes(value)

    @staticmethod
    def _check_size(m: _Map, value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise KernelError(f"map '{m.name}': value must be bytes, "
                              f"got {type(value).__name__}")
        if len(value) != m.defn.value_size:
            raise KernelError(f"map '{m.name}': value is {len(value)} bytes, expected "
                              f"value_size {m.defn.value_size}")
        return bytes(value)

    def _decode_value(self, m: _Map, raw: bytes) -> MapValue:
        if m.form == "percpu":
            stride, size = self._stride(m), m.defn.value_size
            return [raw[i * stride: i * stride + size] for i in range(self.num_possible_cpus)]
        if m.form in ("prog", "inner"):
            ident = int.from_bytes(raw[:4], "little")
            progs, maps = self._id_names()
            return (progs if m.form == "prog" else maps).get(ident, f"#{ident}")
        return raw[: m.defn.value_size]

    def _fail(self, m: _Map, op: str, key: bytes, err: int) -> KernelCallError:
        return KernelCallError(f"map '{m.name}': {op} key {key.hex()}: {errno_text(err)}",
                               err)

    def update(self, map_name: str, key: bytes, value: MapValue, flags: int = BPF_ANY) -> None:
        """bpf_map_update_elem from user space.

        ``value``: bytes of value_size; for per-CPU maps a list with one value per possible
        CPU (or one bytes value, written to every CPU); for prog_array a program name; for
        array_of_maps / hash_of_maps an inner map name. Raises KernelCallError with the
        errno the kernel gave.
        """
        self._check_open()
        m = self._map(map_name)
        kbuf = self._key_buffer(m, key)
        data = self._encode_value(m, value)
        vbuf = ctypes.create_string_buffer(data, max(len(data), 1))
        if self._written is not None:
            self._written.setdefault(map_name, set()).add(bytes(key))
        err = self._lib.bpf_map_update_elem(self.map_fd(map_name), kbuf, vbuf, flags)
        if err < 0:
            raise self._fail(m, "update", bytes(key), -err)

    def lookup(self, map_name: str, key: bytes) -> MapValue | None:
        """The value at ``key`` (per-CPU: a list, one per CPU; prog_array: the program name;
        map-in-map: the inner map name), or None when there is no entry."""
        self._check_open()
        m = self._map(map_name)
        kbuf = self._key_buffer(m, key)
        vbuf = self._value_buffer(m)
        err = self._lib.bpf_map_lookup_elem(self.map_fd(map_name), kbuf, vbuf)
        if err == -errno_mod.ENOENT:
            return None
        if err < 0:
            raise self._fail(m, "lookup", bytes(key), -err)
        return self._decode_value(m, vbuf.raw)

    def delete(self, map_name: str, key: bytes) -> bool:
        """bpf_map_delete_elem: True when an entry went, False when there was none (ENOENT).
        Arrays refuse (EINVAL), which raises KernelCallError."""
        self._check_open()
        m = self._map(map_name)
        kbuf = self._key_buffer(m, key)
        err = self._lib.bpf_map_delete_elem(self.map_fd(map_name), kbuf)
        if err == -errno_mod.ENOENT:
            return False
        if err < 0:
            raise self._fail(m, "delete", bytes(key), -err)
        return True

    def iter_keys(self, map_name: str) -> Iterator[bytes]:
        """Every key, by BPF_MAP_GET_NEXT_KEY (indexed maps: every index, empty or not)."""
        self._check_open()
        m = self._map(map_name)
        size = m.defn.key_size
        if size == 0:
            return
        fd = self.map_fd(map_name)
        cur = ctypes.create_string_buffer(size)
        nxt = ctypes.create_string_buffer(size)
        err = self._lib.bpf_map_get_next_key(fd, None, nxt)
        while err == 0:
            key = nxt.raw
            yield key
            ctypes.memmove(cur, nxt, size)
            err = self._lib.bpf_map_get_next_key(fd, cur, nxt)
        if err != -errno_mod.ENOENT:
            raise KernelCallError(f"map '{map_name}': get_next_key: {errno_text(-err)}",
                                  -err)

    def items(self, map_name: str) -> list[tuple[bytes, MapValue]]:
        """Every entry that exists, as (key, value) in get_next_key order (values as
        ``lookup`` gives them); empty slots of fd arrays, devmaps and cpumaps are left out.
        Maps user space cannot read (perf_event_array, xskmap, ringbuf, ...) give []."""
        m = self._map(map_name)
        if m.form == "none":
            return []
        out = []
        for key in self.iter_keys(map_name):
            value = self.lookup(map_name, key)
            if value is not None:
                out.append((key, value))
        return out

    def _state_items(self, m: _Map) -> list[tuple[bytes, MapValue]]:
        """``items`` as a state document lists them: arrays without their all-zero entries,
        read in batches (``ebpf.kernel.batch``), so the cost follows the entries in use."""
        if m.kind not in _ZERO_FILLED:
            return self.items(m.name)
        zero = bytes(m.defn.value_size)
        if self._written is not None and not m.internal:
            found = [(k, self.lookup(m.name, k)) for k in sorted(
                self._written.get(m.name, ()), key=lambda k: int.from_bytes(k, "little"))]
            return [(k, v) for k, v in found if v is not None and _nonzero(v, zero)]
        row = m.defn.value_size
        if m.form == "percpu":
            row = self._stride(m) * self.num_possible_cpus
        try:
            return [(key, self._decode_value(m, raw)) for key, raw in iter_nonzero(
                self._lib, self.map_fd(m.name), m.defn.key_size, row, m.defn.max_entries)]
        except BatchUnsupported:
            pass
        except OSError as exc:
            raise KernelCallError(f"map '{m.name}': lookup_batch: {errno_text(exc.errno)}",
                                  exc.errno) from exc
        return [(k, v) for k, v in self.items(m.name) if _nonzero(v, zero)]

    def mark_programs_run(self) -> None:
        """A program has run (or will, through a caller's own BPF_PROG_TEST_RUN): it may
        have written any entry, so a dump asks the kernel instead of the written keys."""
        self._written = None

    # -- JSON state ----------------------------------------------------------------------
    def dump_state(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        """The maps (all, or those in ``names``) as a state document in the VM's format.

        Index-keyed maps list entries in index order (arrays: their non-zero entries, an
        index not listed is zero), the others sorted by key bytes.
        """
        self._check_open()
        selected = [self._map(n) for n in (self.map_names if names is None else names)]
        out: dict[str, list[dict[str, Any]]] = {}
        for m in selected:
            entries = self._state_items(m)
            if m.kind in _INDEXED:
                entries.sort(key=lambda kv: int.from_bytes(kv[0], "little"))
            else:
                entries.sort(key=lambda kv: kv[0])
            out[m.name] = [self._entry(m, key, value) for key, value in entries]
        return {"maps": out}

    @staticmethod
    def _entry(m: _Map, key: bytes, value: MapValue) -> dict[str, Any]:
        entry: dict[str, Any] = {"key": key.hex()}
        if m.form == "percpu":
            entry["values"] = [bytes(v).hex() for v in value]
        elif m.form in ("prog", "inner"):
            entry[_FIELD[m.form]] = value
        else:
            assert isinstance(value, bytes)
            entry["value"] = value.hex()
        return entry

    def load_state(self, doc: Mapping[str, Any] | StatePath) -> None:
        """Replace the contents of every map the document names (arrays are zeroed first,
        other maps emptied); maps it does not name keep theirs.

        The whole document is checked first; then maps are written in document order. A
        frozen ``.rodata`` map refuses writes after load: give it through ``state=`` at
        construction instead. Raises KernelError / KernelCallError (with the errno).
        """
        self._check_open()
        source, parsed = read_state(doc)
        self._apply(source, self._plan(source, parsed))

    def _plan(self, source: str, doc: Mapping[str, Any]) -> list[tuple[_Map, list[Any]]]:
        """Check a document against the maps; returns (map, [(key, value), ...]) to write."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("maps"), Mapping):
            raise MapStateError(f'{source}: expected an object with a "maps" object')
        plans = []
        for name, entries in doc["maps"].items():
            m = self._maps.get(name)
            if m is None:
                known = ", ".join(self._maps) or "none"
                raise MapStateError(f"{source}: map '{name}': no such map (have: {known})")
            plans.append((m, self._parse_entries(source, m, entries)))
        return plans

    def _parse_entries(self, source: str, m: _Map, entries: Any) -> list[tuple[bytes, Any]]:
        where = f"{source}: map '{m.name}'"
        if not isinstance(entries, list):
            raise MapStateError(f"{where}: expected a list of entries, "
                              f"got {type(entries).__name__}")
        if m.form == "none":
            if entries:
                raise MapStateError(f"{where}: a {m.kind} map takes no entries from a state "
                                  f"document, got {len(entries)}")
            return []
        if len(entries) > m.defn.max_entries:
            raise MapStateError(f"{where}: {len(entries)} entries exceed max_entries "
                              f"{m.defn.max_entries}")
        return parse_entry_list(where, entries, m.defn.key_size, _FIELD[m.form], m.kind,
                                lambda at, raw: self._parse_value(at, m, raw))

    def _parse_value(self, at: str, m: _Map, raw: Any) -> MapValue:
        size = m.defn.value_size
        if m.form == "percpu":
            if not isinstance(raw, list) or len(raw) != self.num_possible_cpus:
                got = len(raw) if isinstance(raw, list) else type(raw).__name__
                raise MapStateError(f'{at}: "values" must list one value per possible CPU: '
                                  f"got {got}, expected {self.num_possible_cpus}")
            return [parse_hex(f"{at}, cpu {cpu}", "value", v, size)
                    for cpu, v in enumerate(raw)]
        if m.form == "prog":
            if not isinstance(raw, str) or raw not in self._progs:
                raise MapStateError(f"{at}: no program named {raw!r} in this object")
            return raw
        if m.form == "inner":
            if not isinstance(raw, str) or raw not in self._maps:
                raise MapStateError(f"{at}: inner map {raw!r} does not exist")
            return raw
        return parse_hex(at, "value", raw, size)

    def _set_initial_value(self, source: str, m: _Map, entries: list[Any]) -> None:
        """Global data before load: the one entry (key 0) becomes the map's contents."""
        size = m.defn.value_size
        data = self._initial_value(source, m, entries)
        buf = ctypes.create_string_buffer(data, max(size, 1))
        err = self._lib.bpf_map__set_initial_value(m.ptr, buf, size)
        if err < 0:
            raise KernelCallError(f"{source}: map '{m.name}': set_initial_value: "
                                  f"{errno_text(-err)}", -err)

    @staticmethod
    def _initial_value(source: str, m: _Map, entries: list[Any]) -> bytes:
        """The contents of global-data map ``m`` that state ``entries`` give (zeros if none)."""
        data = bytes(m.defn.value_size)
        for key, value in entries:
            if int.from_bytes(key, "little") != 0:
                raise MapStateError(f"{source}: map '{m.name}', key {key.hex()}: a global-data "
                                  f"map has only key 00000000")
            data = value
        return data

    def _apply(self, source: str, plans: list[tuple[_Map, list[Any]]]) -> None:
        for m, entries in plans:
            if m.form == "none":
                continue
            if m.internal and m.defn.section.startswith(".rodata"):
                raise MapStateError(f"{source}: map '{m.name}' is frozen after load: give its "
                                  f"state to {type(self).__name__}({self.path!r}, state=...)")
            wanted = dict(entries)
            if m.kind in _ZERO_FILLED:
                zero: MapValue = bytes(m.defn.value_size)
                if m.form == "percpu":
                    zero = [bytes(m.defn.value_size)] * self.num_possible_cpus
                for key, _value in self._state_items(m):  # only non-zero entries to clear
                    if key not in wanted:
                        self._state_update(source, m, key, zero)
                for key, value in entries:  # indices beyond max_entries: E2BIG
                    self._state_update(source, m, key, value)
                continue
            for key in list(self.iter_keys(m.name)):
                self.delete(m.name, key)
            for key, value in entries:
                self._state_update(source, m, key, value)

    def _state_update(self, source: str, m: _Map, key: bytes, value: MapValue) -> None:
        try:
            self.update(m.name, key, value)
        except KernelCallError as exc:
            raise KernelCallError(f"{source}: map '{m.name}', key {key.hex()}: update failed "
                                  f"with {errno_text(exc.errno)}", exc.errno) from exc

    # -- running programs ----------------------------------------------------------------
    def test_run(self, packet: bytes, prog: str | None = None, repeat: int = 1,
                 ctx: bytes | XdpMd | None = None, *, ingress_ifindex: int = 0,
                 rx_queue_index: int = 0, meta: bytes = b"") -> RunResult:
        """Run program ``prog`` (the first when None) on ``packet`` with BPF_PROG_TEST_RUN.

        Without ``ctx`` the struct xdp_md is built from ``meta`` (metadata in front of the
        packet), ``ingress_ifindex`` and ``rx_queue_index``. With ``ctx`` (raw bytes or an
        XdpMd) ``packet`` is data_in as it stands (metadata included) and the ctx goes to
        the kernel unchanged. ``repeat`` runs re-use one buffer (see the module docstring).
        Raises KernelCallError with the errno and, for EINVAL / ENODEV, the rule broken.
        """
        self._check_open()
        self.mark_programs_run()
        if repeat < 1:
            raise KernelError(f"repeat must be at least 1, got {repeat}")
        fd = self.prog_fd(prog)
        if ctx is None:
            md = XdpMd(data=len(meta), data_end=len(meta) + len(packet),
                       ingress_ifindex=ingress_ifindex, rx_queue_index=rx_queue_index)
            data_in, ctx_in = bytes(meta) + bytes(packet), md.pack()
        else:
            if meta or ingress_ifindex or rx_queue_index:
                raise KernelError("test_run: give either ctx or meta / ingress_ifindex / "
                                  "rx_queue_index, not both")
            data_in = bytes(packet)
            ctx_in = ctx.pack() if isinstance(ctx, XdpMd) else bytes(ctx)
        in_buf = ctypes.create_string_buffer(data_in, max(len(data_in), 1))
        out_buf = ctypes.create_string_buffer(len(data_in) + DATA_OUT_SLACK)
        ctx_in_buf = ctypes.create_string_buffer(ctx_in, max(len(ctx_in), 1))
        ctx_out_buf = ctypes.create_string_buffer(XdpMd.SIZE)
        opts = TestRunOpts(
            sz=ctypes.sizeof(TestRunOpts),
            data_in=ctypes.addressof(in_buf), data_size_in=len(data_in),
            data_out=ctypes.addressof(out_buf), data_size_out=len(out_buf),
            ctx_in=ctypes.addressof(ctx_in_buf), ctx_size_in=len(ctx_in),
            ctx_out=ctypes.addressof(ctx_out_buf), ctx_size_out=XdpMd.SIZE,
            repeat=repeat,
        )
        err = self._lib.bpf_prog_test_run_opts(fd, ctypes.byref(opts))
        if err < 0:
            name = prog or self.program_names[0]
            hint = test_run_hint(-err, data_in, ctx_in)
            raise KernelCallError(f"{self.path}: program '{name}': BPF_PROG_TEST_RUN failed: "
                                  f"{errno_text(-err)}" + (f": {hint}" if hint else ""), -err)
        out = out_buf.raw[: opts.data_size_out]
        md_out = XdpMd.unpack(ctx_out_buf.raw[: opts.ctx_size_out])
        return RunResult(retval=opts.retval, data_out=out[md_out.data:],
                         duration_ns=opts.duration, meta_out=out[: md_out.data],
                         ctx_out=md_out, repeat=repeat)

    def time_ns_per_packet(self, packet: bytes, repeat: int = 1000,
                           prog: str | None = None) -> int:
        """The kernel's average ns per run of ``prog`` over ``repeat`` runs on ``packet``
        (one buffer re-used: packet rewrites accumulate; ``time_fresh`` avoids that)."""
        return self.test_run(packet, prog, repeat=repeat).duration_ns

    def time_fresh(self, packet: bytes, runs: int = 1000, prog: str | None = None,
                   **kw: Any) -> tuple[RunResult, float]:
        """``runs`` BPF_PROG_TEST_RUNs of one run each, every one on a fresh copy of
        ``packet`` (a program that rewrites its packet is timed on the packet, never on its
        own output): (the first run's result, the mean of the kernel's durations in ns).
        ``kw`` goes to ``test_run`` (ctx, meta, ...). Map updates still accumulate."""
        if runs < 1:
            raise KernelError(f"runs must be at least 1, got {runs}")
        first = self.test_run(packet, prog, **kw)
        total = first.duration_ns
        for _ in range(runs - 1):
            total += self.test_run(packet, prog, **kw).duration_ns
        return first, total / runs

    # -- what the kernel made of a program ------------------------------------------------
    def _prog_info(self, name: str | None, xlated: ctypes.Array[ctypes.c_char] | None = None,
                   ) -> ProgInfoStruct:
        info = ProgInfoStruct()
        if xlated is not None:
            info.xlated_prog_len = len(xlated)
            info.xlated_prog_insns = ctypes.addressof(xlated)
        length = ctypes.c_uint32(ctypes.sizeof(info))
        err = self._lib.bpf_obj_get_info_by_fd(self.prog_fd(name), ctypes.byref(info),
                                               ctypes.byref(length))
        if err < 0:
            raise KernelCallError(f"{self.path}: program '{name}': bpf_obj_get_info_by_fd: "
                                  f"{errno_text(-err)}", -err)
        return info

    def prog_info(self, name: str | None = None) -> ProgInfo:
        """Lengths, counts and identity of program ``name`` (the first when None)."""
        self._check_open()
        info = self._prog_info(name)
        return ProgInfo(
            name=name or self.program_names[0],
            id=info.id,
            tag=bytes(info.tag).hex(),
            xlated_prog_len=info.xlated_prog_len,
            jited_prog_len=info.jited_prog_len,
            insn_cnt=info.xlated_prog_len // _INSN_SIZE,
            verified_insns=info.verified_insns,
            nr_map_ids=info.nr_map_ids,
        )

    def xlated_insns(self, name: str | None = None) -> bytes:
        """The program as the kernel holds it after verification (8 bytes per slot; map
        fds replaced by map addresses or ids as the kernel's dump sanitises them)."""
        self._check_open()
        size = self._prog_info(name).xlated_prog_len
        buf = ctypes.create_string_buffer(max(size, 1))
        info = self._prog_info(name, buf)
        return buf.raw[: min(size, info.xlated_prog_len)]


def _nonzero(value: MapValue, zero: bytes) -> bool:
    """A value (or any CPU's value) that is not all zeros."""
    return value != zero if isinstance(value, bytes) else any(v != zero for v in value)
