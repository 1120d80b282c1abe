"""Table and register contents, the control plane's write port, and map contents <-> tables.

``PipelineState`` holds what the data plane reads and writes across packets: every table's
entries (``TableMemory``), every stateful unit's registers, and every random extern's
generator state. The control plane changes it through the same two operations the RTL's
write port offers (docs/pipeline.md, "Control plane"): ``write_entry`` / ``delete_entry``
(one table entry: key, mask, action data, valid) and ``write_register`` (one 64-bit word).

``load_maps`` turns a map state document (``ebpf.maps.state``'s JSON: the format the VM and
the kernel bridge read and write) into table entries and registers, as the configuration's
map bindings say; ``dump_maps`` reads them back into that format, so the pipeline's map
contents compare directly with the VM's and the kernel's. A map's values may be split over
several stateful units by value word and by entry range (``MapBinding.registers``, a list
of ``RegisterSlice``): ``set_value`` / ``get_value`` disassemble and assemble them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hw.pipeline.config import PERCPU_TYPES, Entry, MapBinding, PipelineConfig, Table
from hw.pipeline.errors import PipelineError


class TableMemory:
    """One table unit's entries, addressed 0..size-1; lookups as the RTL does them.

    Only the valid entries are stored (index -> entry), so a table costs what it holds,
    not its size."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.entries: dict[int, Entry] = {}
        self._exact: dict[bytes, int] = {}
        for e in table.entries:
            self.write(e)

    @property
    def kind(self) -> str:
        return self.table.kind

    def write(self, entry: Entry) -> None:
        """Write (or overwrite) the entry at ``entry.index``."""
        t = self.table
        if not 0 <= entry.index < t.size:
            raise PipelineError(f"table '{t.name}': index {entry.index} is beyond its "
                                f"{t.size} entries")
        if t.kind != "direct" and len(entry.key) != t.key_bytes:
            raise PipelineError(f"table '{t.name}': key of {len(entry.key)} bytes, expected "
                                f"{t.key_bytes}")
        if len(entry.data) > t.data_bytes:
            raise PipelineError(f"table '{t.name}': data of {len(entry.data)} bytes exceeds "
                                f"{t.data_bytes}")
        if t.kind == "exact" and self._exact.get(entry.key, entry.index) != entry.index:
            raise PipelineError(f"table '{t.name}': key {entry.key.hex()} is already at "
                                f"index {self._exact[entry.key]}")
        self.delete(entry.index)
        entry = Entry(index=entry.index, key=entry.key, mask=entry.mask,
                      prefix_len=entry.prefix_len, data=entry.data.ljust(t.data_bytes, b"\0"))
        self.entries[entry.index] = entry
        if t.kind == "exact":
            self._exact[entry.key] = entry.index

    def get_exact_index(self, key: bytes) -> int | None:
        """The index holding ``key`` in an exact table, or None."""
        return self._exact.get(key)

    def delete(self, index: int) -> None:
        old = self.entries.pop(index, None)
        if old is not None and self.table.kind == "exact":
            self._exact.pop(old.key, None)

    def clear(self) -> None:
        self.entries.clear()
        self._exact.clear()

    def iter_entries(self) -> list[Entry]:
        """The valid entries in index order."""
        return [self.entries[i] for i in sorted(self.entries)]

    def lookup(self, key: bytes) -> tuple[int, bytes] | None:
        """(index, action data) of the matching entry, or None on a miss.

        exact: the entry whose key equals ``key``; ternary / lpm: the valid entry of lowest
        index with (key & mask) == (entry key & mask); direct: index = ``key`` as a
        little-endian integer, a hit when below the size (data zero when never written).
        """
        t = self.table
        if t.kind == "direct":
            index = int.from_bytes(key, "little")
            if index >= t.size:
                return None
            e = self.entries.get(index)
            return index, e.data if e is not None else bytes(t.data_bytes)
        if t.kind == "exact":
            index = self._exact.get(key)
            return None if index is None else (index, self.entries[index].data)  # type: ignore
        k = int.from_bytes(key, "little")
        for e in self.iter_entries():
            m = int.from_bytes(t.get_mask(e), "little")
            if k & m == int.from_bytes(e.key, "little") & m:
                return e.index, e.data
        return None


class PipelineState:
    """Tables, registers and random-generator states of one configuration."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.tables: dict[tuple[int, int], TableMemory] = {}
        self.registers: dict[tuple[int, int], list[int]] = {}
        self.rng: dict[tuple[int, int], int] = {}
        for s, st in enumerate(config.stages):
            for t in st.tables:
                self.tables[(s, t.slot)] = TableMemory(t)
            for u in st.stateful:
                regs = [0] * u.words
                for addr, value in u.init:
                    regs[addr] = value
                self.registers[(s, u.unit)] = regs
            for e in st.externs:
                if e.kind == "random":
                    self.rng[(s, e.unit)] = e.seed

    def copy(self) -> PipelineState:
        return copy.deepcopy(self)

    def to_config(self) -> PipelineConfig:
        """The configuration with this state as its initial contents: every table's entries
        and every stateful unit's non-zero registers (``init``), so that its memory images
        (``hw.pipeline.write_memory_images``) hold exactly these contents. Random generator
        states are not part of the images (an extern restarts from its seed)."""
        stages = []
        for s, st in enumerate(self.config.stages):
            tables = tuple(dataclasses.replace(t, entries=tuple(
                self.tables[(s, t.slot)].iter_entries())) for t in st.tables)
            units = tuple(dataclasses.replace(u, init=tuple(
                (a, v) for a, v in enumerate(self.registers[(s, u.unit)]) if v))
                for u in st.stateful)
            stages.append(dataclasses.replace(st, tables=tables, stateful=units))
        return dataclasses.replace(self.config, stages=tuple(stages))

    # -- the write port ----------------------------------------------------------------------

    def _table(self, stage: int, slot: int) -> TableMemory:
        mem = self.tables.get((stage, slot))
        if mem is None:
            raise PipelineError(f"no table in stage {stage} slot {slot}")
        return mem

    def write_entry(self, stage: int, slot: int, entry: Entry) -> None:
        self._table(stage, slot).write(entry)

    def delete_entry(self, stage: int, slot: int, index: int) -> None:
        self._table(stage, slot).delete(index)

    def lookup(self, stage: int, slot: int, key: bytes) -> tuple[int, bytes] | None:
        return self._table(stage, slot).lookup(key)

    def write_register(self, stage: int, unit: int, addr: int, value: int) -> None:
        regs = self.registers.get((stage, unit))
        if regs is None or not 0 <= addr < len(regs):
            raise PipelineError(f"no register {addr} in stage {stage} stateful unit {unit}")
        regs[addr] = value & 0xFFFFFFFFFFFFFFFF

    def read_register(self, stage: int, unit: int, addr: int) -> int:
        return self.registers[(stage, unit)][addr]

    # -- map contents ------------------------------------------------------------------------

    def load_maps(self, doc: Mapping[str, Any] | str | os.PathLike[str]) -> None:
        """Load a map state document into the bound tables and registers (user-space update).

        Every map named must be bound by the configuration. Hash maps fill entries 0, 1, ...
        in document order; arrays use the key as index (unnamed indices are zero); LPM
        entries are ordered longest prefix first. Bound registers get each value word at the
        address of its register slice (base + index * stride + word - word_offset); a map's
        whole register range is zeroed first.
        """
        if not isinstance(doc, Mapping):
            path = os.fspath(doc)
            try:
                doc = json.loads(Path(path).read_text())
            except (OSError, json.JSONDecodeError, RecursionError) as exc:
                raise PipelineError(f"{path}: cannot read map state: "
                                    f"{exc if str(exc) else 'nested too deeply'}") from exc
        if not isinstance(doc, Mapping) or not isinstance(doc.get("maps"), Mapping):
            raise PipelineError("map state: expected an object with a \"maps\" object")
        for name, entries in doc["maps"].items():
            m = self.config.get_map(name)
            if m is None:
                raise PipelineError(f"map state: map '{name}' is not bound by the "
                                    f"configuration")
            self._load_map(m, self._parse(m, entries))

    def _parse(self, m: MapBinding, entries: Any) -> list[tuple[bytes, bytes]]:
        if not isinstance(entries, list):
            raise PipelineError(f"map '{m.name}': expected a list of entries")
        out = []
        for i, e in enumerate(entries):
            field = "values" if m.type in PERCPU_TYPES else "value"
            try:
                key = bytes.fromhex(e["key"])
                raw = e[field][m.cpu] if field == "values" else e[field]
                value = bytes.fromhex(raw)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise PipelineError(f"map '{m.name}', entry {i}: expected \"key\" and "
                                    f"\"{field}\" hex ({exc})") from exc
            if len(key) != m.key_size or len(value) != m.value_size:
                raise PipelineError(f"map '{m.name}', entry {i}: key/value of {len(key)}/"
                                    f"{len(value)} bytes, expected {m.key_size}/"
                                    f"{m.value_size}")
            out.append((key, value))
        if len(out) > m.max_entries:
            raise PipelineError(f"map '{m.name}': {len(out)} entries exceed max_entries "
                                f"{m.max_entries}")
        return out

    def _load_map(self, m: MapBinding, items: list[tuple[bytes, bytes]]) -> None:
        if m.type in ("array", "percpu_array"):
            placed = []
            for key, value in items:
                index = int.from_bytes(key, "little")
                if index >= m.max_entries:
                    raise PipelineError(f"map '{m.name}': index {index} is beyond "
                                        f"max_entries {m.max_entries}")
                placed.append((index, key, value))
        elif m.type == "lpm_trie":
            ordered = sorted(items, key=lambda kv: -int.from_bytes(kv[0][:4], "little"))
            placed = [(i, k, v) for i, (k, v) in enumerate(ordered)]
        else:
            placed = [(i, k, v) for i, (k, v) in enumerate(items)]
        for stage, slot in m.tables:
            mem = self._table(stage, slot)
            mem.clear()
            for index, key, value in placed:
                data = value[:mem.table.data_bytes]
                if m.type == "lpm_trie":
                    prefix = int.from_bytes(key[:4], "little")
                    if prefix > 8 * (m.key_size - 4):
                        raise PipelineError(f"map '{m.name}': prefix length {prefix} exceeds "
                                            f"{8 * (m.key_size - 4)} bits")
                    mem.write(Entry(index=index, key=key[4:], prefix_len=prefix, data=data))
                elif m.type in ("array", "percpu_array"):
                    mem.write(Entry(index=index, data=data))
                else:
                    mem.write(Entry(index=index, key=key, data=data))
        if m.registers:
            for r in m.registers:  # the map's whole register range is zeroed first
                regs = self.registers[(r.stage, r.unit)]
                for i in range(r.first_entry, r.first_entry + r.entries):
                    for w in range(r.word_offset, r.word_offset + r.words):
                        regs[r.get_address(i, w)] = 0
            for index, _key, value in placed:
                self.set_value(m, index, value)

    def set_value(self, m: MapBinding, index: int, value: bytes) -> None:
        """Write the register-held value of entry ``index``: one register per value word.

        The words are the value's little-endian u64 chunks (the last zero-padded); each goes
        to the (stage, unit, address) of its register slice, as the control plane's register
        writes do (docs/pipeline.md, section 9).
        """
        padded = value.ljust(8 * m.value_words, b"\0")
        for w in range(m.value_words):
            stage, unit, addr = m.get_register(index, w)
            self.write_register(stage, unit, addr,
                                int.from_bytes(padded[8 * w:8 * w + 8], "little"))

    def get_value(self, m: MapBinding, index: int, entry: Entry | None) -> bytes:
        """The value of the map entry at table index ``index``: registers first, else data.

        A register-held value is assembled word by word from its register slices.
        """
        if m.registers:
            raw = b"".join(self.read_register(*m.get_register(index, w)).to_bytes(8, "little")
                           for w in range(m.value_words))
            return raw[:m.value_size]
        data = entry.data if entry is not None else b""
        return data[:m.value_size].ljust(m.value_size, b"\0")

    def _array_indices(self, m: MapBinding, mem: TableMemory | None) -> list[int]:
        """The indices of array ``m`` that may be non-zero: its table's entries and the
        entries whose register words are not zero."""
        found = set(mem.entries) if mem is not None else set()
        for r in m.registers:
            regs = self.registers[(r.stage, r.unit)]
            for i in range(r.first_entry, r.first_entry + r.entries):
                if any(regs[r.get_address(i, w)]
                       for w in range(r.word_offset, r.word_offset + r.words)):
                    found.add(i)
        return sorted(i for i in found if i < m.max_entries)

    def dump_maps(self) -> dict[str, Any]:
        """The bound maps' contents in ebpf.maps.state's format: keys sorted, arrays without
        their all-zero entries (as ``ebpf.maps.state.dump_state`` lists them)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for m in self.config.maps:
            mem = self._table(*m.tables[0]) if m.tables else None
            rows: list[tuple[bytes, bytes]] = []
            if m.type in ("array", "percpu_array"):
                zero = bytes(m.value_size)
                for i in self._array_indices(m, mem):
                    value = self.get_value(m, i, mem.entries.get(i) if mem else None)
                    if value != zero:
                        rows.append((i.to_bytes(4, "little"), value))
            else:
                assert mem is not None  # validation: hash and LPM maps have a table
                for e in mem.iter_entries():
                    key = e.key
                    if m.type == "lpm_trie":
                        key = (e.prefix_len or 0).to_bytes(4, "little") + e.key
                    rows.append((key, self.get_value(m, e.index, e)))
                rows.sort()
            if m.type in PERCPU_TYPES:
                zero = bytes(m.value_size).hex()
                out[m.name] = [{"key": k.hex(), "values": [v.hex() if c == m.cpu else zero
                                                           for c in range(m.num_cpus)]}
                               for k, v in rows]
            else:
                out[m.name] = [{"key": k.hex(), "value": v.hex()} for k, v in rows]
        return {"maps": out}
