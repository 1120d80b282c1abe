"""Stateful ALU ops, register addressing, persistence, and maps <-> tables/registers."""

from __future__ import annotations

import pytest

from hw.pipeline import PipelineError, PipelineModel, load_config
from tests.hw.pipeline.helpers import VAL_OFF, doc, frame, model

M64 = 2**64 - 1


def unit_model(op: str, *, init: int, words: int = 4, **fields):
    """Stage 0: unit 0 at the index in container 2, B = container 1, cmp = container 3."""
    spec = {"unit": 0, "op": op, "words": words, "index": {"container": 2}, "fetch": 4, "cmp": 3,
            "init": [[1, init]], **fields}
    if op != "read" and "imm" not in fields:
        spec["b"] = 1
    five = [{"container": i, "offset": VAL_OFF + 8 * i, "size": 8} for i in range(5)]
    return model([{"stateful": [spec]}], extracts=five)


@pytest.mark.parametrize("op,old,b,cmp,new", [
    ("read", 10, 3, 0, 10), ("write", 10, 3, 0, 3), ("add", 10, 3, 0, 13),
    ("add", M64, 2, 0, 1), ("or", 0b1010, 0b0101, 0, 0b1111), ("and", 0b1110, 0b0111, 0, 0b0110),
    ("xor", 0b1110, 0b0111, 0, 0b1001), ("xchg", 10, 3, 0, 3),
    ("cmpxchg", 10, 3, 10, 3), ("cmpxchg", 10, 3, 11, 10)])
def test_stateful_ops(op, old, b, cmp, new):
    """Each op: the register's new value and the fetched old value."""
    m = unit_model(op, init=old)
    r = m.process(frame(0, b, 1, cmp))
    assert m.state.read_register(0, 0, 1) == new
    assert r.containers[4] == old
    writes = [(w.addr, w.old, w.new) for w in r.register_writes]
    assert writes == ([] if new == old and op in ("read", "cmpxchg") else [(1, old, new)])


def test_sub_word_field():
    """A 4-byte field at byte offset 4: add wraps at 32 bits, the other half is kept."""
    m = unit_model("add", init=0xFFFF_FFFF_1111_1111, size=4, offset=4)
    r = m.process(frame(0, 2, 1))
    assert m.state.read_register(0, 0, 1) == 0x0000_0001_1111_1111
    assert r.containers[4] == 0xFFFF_FFFF


def test_cmpxchg_compares_field_width():
    """cmpxchg on 4 bytes compares the low 32 bits of the comparand."""
    m = unit_model("cmpxchg", init=5, size=4)
    m.process(frame(0, 9, 1, 0xAB_0000_0005))
    assert m.state.read_register(0, 0, 1) == 9


def test_state_persists_across_packets():
    """Registers keep their value from packet to packet: a counter counts."""
    m = unit_model("add", init=0, imm=1)
    for _ in range(5):
        m.process(frame(0, 0, 1))
    assert m.state.read_register(0, 0, 1) == 5


def test_out_of_range_index_is_a_noop():
    """An address beyond the unit's words does nothing, the fetch container is untouched."""
    m = unit_model("add", init=0, imm=1, words=4, base=2, stride=2)
    r = m.process(frame(0, 0, 1, 0, 77))  # addr 2 + 1*2 = 4 >= 4
    assert r.register_writes == () and r.containers[4] == 77


def test_predicate_gates_unit():
    """A unit whose predicate is false neither reads nor writes."""
    m = unit_model("add", init=3, imm=1, pred=9)
    r = m.process(frame(0, 0, 1, 0, 77))
    assert m.state.read_register(0, 0, 1) == 3 and r.containers[4] == 77


def table_counter_doc() -> dict:
    """A hash map 'flows' (key u32, value u64 counter) in table 0 and unit 0's registers."""
    stage = {"tables": [{"slot": 0, "name": "flows", "kind": "exact", "size": 4,
                         "key": [{"container": 0, "size": 4}], "hit": 1}],
             "stateful": [{"unit": 0, "op": "add", "words": 8, "index": {"table": 0},
                           "base": 2, "stride": 1, "imm": 1, "fetch": 5}]}
    return doc([stage], maps={"flows": {"type": "hash", "key_size": 4, "value_size": 8,
                                        "max_entries": 4, "tables": [[0, 0]],
                                        "registers": {"stage": 0, "unit": 0, "base": 2,
                                                      "stride": 1}}})


def test_table_indexed_counter_and_map_dump():
    """Hits count in the register at base + hit address; the dump shows the map's values."""
    m = PipelineModel(load_config(table_counter_doc()))
    m.state.load_maps({"maps": {"flows": [
        {"key": "07000000", "value": "0a00000000000000"},
        {"key": "05000000", "value": "0000000000000000"}]}})
    assert m.state.registers[(0, 0)] == [0, 0, 10, 0, 0, 0, 0, 0]
    r = m.process(frame(7))
    assert r.containers[5] == 10
    m.process(frame(5))
    m.process(frame(6))  # miss: no update
    m.process(frame(7))
    assert m.state.dump_maps() == {"maps": {"flows": [
        {"key": "05000000", "value": "0100000000000000"},
        {"key": "07000000", "value": "0c00000000000000"}]}}


def test_map_state_errors():
    """Unknown maps and wrong sizes are refused with the map named."""
    m = PipelineModel(load_config(table_counter_doc()))
    with pytest.raises(PipelineError, match="map 'nope' is not bound"):
        m.state.load_maps({"maps": {"nope": []}})
    with pytest.raises(PipelineError, match="map 'flows', entry 0: key/value of 2/8"):
        m.state.load_maps({"maps": {"flows": [{"key": "0700", "value": "00" * 8}]}})


def test_array_and_lpm_maps():
    """Arrays dump their non-zero indices; LPM keys are prefixlen + data; per-CPU lists
    every CPU."""
    stage = {"tables": [
        {"slot": 0, "name": "arr", "kind": "direct", "size": 3,
         "key": [{"container": 0, "size": 4}], "action": [4]},
        {"slot": 1, "name": "routes", "kind": "lpm", "size": 4,
         "key": [{"container": 1, "size": 4}], "action": [5]},
        {"slot": 2, "name": "pc", "kind": "direct", "size": 2,
         "key": [{"container": 0, "size": 4}], "action": [6]}]}
    d = doc([stage], maps={
        "arr": {"type": "array", "key_size": 4, "value_size": 4, "max_entries": 3,
                "tables": [[0, 0]]},
        "routes": {"type": "lpm_trie", "key_size": 8, "value_size": 2, "max_entries": 4,
                   "tables": [[0, 1]]},
        "pc": {"type": "percpu_array", "key_size": 4, "value_size": 8, "max_entries": 2,
               "tables": [[0, 2]], "cpu": 1, "num_cpus": 2}})
    m = PipelineModel(load_config(d))
    m.state.load_maps({"maps": {
        "arr": [{"key": "01000000", "value": "2a000000"}],
        "routes": [{"key": "100000000a000000", "value": "0100"},
                   {"key": "180000000a000100", "value": "0200"}],
        "pc": [{"key": "01000000", "values": ["1100000000000000", "2200000000000000"]}]}})
    r = m.process(frame(1, int.from_bytes(bytes([10, 0, 1, 9]), "little")))
    assert (r.containers[4], r.containers[5], r.containers[6]) == (42, 2, 0x22)
    entries = m.state.tables[(0, 1)].iter_entries()
    assert [(e.index, e.prefix_len) for e in entries] == [(0, 24), (1, 16)]
    dumped = m.state.dump_maps()["maps"]
    assert dumped["arr"] == [{"key": "01000000", "value": "2a000000"}]
    assert dumped["routes"] == [{"key": "100000000a000000", "value": "0100"},
                                {"key": "180000000a000100", "value": "0200"}]
    assert dumped["pc"][0] == {"key": "01000000",
                               "values": ["0000000000000000", "2200000000000000"]}


def split_counter_doc() -> dict:
    """'stats' (array of 4 x {packets, bytes}) split over 2 stages x 2 units.

    Stage 0 holds entries [0, 2), stage 1 entries [2, 4); unit 0 the packets word, unit 1
    the bytes word, at REG[5 + 2 * i] (base 5, stride 2). Container 0 indexes stage 0's
    units and container 1 stage 1's: one packet can count in both ranges.
    """
    def units(index: int) -> list[dict]:
        return [{"unit": 0, "op": "add", "words": 13, "index": {"container": index},
                 "base": 5, "stride": 2, "imm": 1},
                {"unit": 1, "op": "add", "words": 13, "index": {"container": index},
                 "base": 5, "stride": 2, "b": 48}]

    def slices(stage: int, first: int) -> list[dict]:
        return [{"stage": stage, "unit": w, "base": 5, "stride": 2, "word_offset": w,
                 "words": 1, "first_entry": first, "entries": 2} for w in (0, 1)]

    return doc([{"stateful": units(0)}, {"stateful": units(1)}],
               maps={"stats": {"type": "percpu_array", "key_size": 4, "value_size": 16,
                               "max_entries": 4, "registers": slices(0, 0) + slices(1, 2)}})


def stats(*rows: tuple[int, int]) -> list[dict]:
    return [{"key": f"{i:02x}000000",
             "values": [(p.to_bytes(8, "little") + b.to_bytes(8, "little")).hex()]}
            for i, (p, b) in enumerate(rows)]


def test_split_value_load_and_dump():
    """load_maps disassembles each value into its slices' registers; dump_maps reassembles."""
    m = PipelineModel(load_config(split_counter_doc()))
    m.state.load_maps({"maps": {"stats": stats((1, 10), (2, 20), (3, 30), (4, 40))}})
    assert m.state.registers[(0, 0)][5:9] == [1, 0, 2, 0]
    assert m.state.registers[(0, 1)][5:9] == [10, 0, 20, 0]
    assert m.state.registers[(1, 0)][9:13] == [3, 0, 4, 0]
    assert m.state.registers[(1, 1)][9:13] == [30, 0, 40, 0]
    assert m.state.dump_maps() == {"maps": {"stats": stats((1, 10), (2, 20), (3, 30),
                                                           (4, 40))}}
    binding = m.config.get_map("stats")
    m.state.set_value(binding, 2, (7).to_bytes(8, "little") + (70).to_bytes(8, "little"))
    assert (m.state.read_register(1, 0, 9), m.state.read_register(1, 1, 9)) == (7, 70)
    assert m.state.get_value(binding, 2, None) == bytes.fromhex(stats((0, 0), (0, 0),
                                                                      (7, 70))[2]["values"][0])
    with pytest.raises(PipelineError, match="map 'stats': word 2 of entry 0 is in no register"):
        binding.get_register(0, 2)


def test_split_value_several_entries_and_fields_per_packet():
    """One packet bumps both fields of two entries of one map, in four units."""
    m = PipelineModel(load_config(split_counter_doc()))
    r = m.process(frame(1, 3, length=100))  # entries 1 and 3, 100 bytes
    assert sorted((w.stage, w.unit, w.addr, w.new) for w in r.register_writes) == [
        (0, 0, 7, 1), (0, 1, 7, 100), (1, 0, 11, 1), (1, 1, 11, 100)]
    m.process(frame(0, 3, length=64))
    m.process(frame(9, 2, length=80))  # index 9: beyond stage 0's registers, a no-op
    assert m.state.dump_maps()["maps"]["stats"] == stats((1, 64), (1, 100), (1, 80),
                                                         (2, 164))
