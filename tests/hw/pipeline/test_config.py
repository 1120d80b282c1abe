"""The configuration document: one-line validation errors naming the key, and round trips."""

from __future__ import annotations

import json

import pytest

from hw.pipeline import ConfigError, dump_config, load_config, save_config
from tests.hw.pipeline.helpers import doc

GOOD_STAGE = {
    "gateways": [{"dst": 1, "cmp": "sgt", "a": 0, "b": 1, "width": 32, "invert": True,
                  "combine": "or", "pred_in": 2, "pred_in_neg": True}],
    "tables": [{"slot": 2, "name": "t", "kind": "ternary", "size": 4,
                "key": [{"container": 0, "offset": 1, "size": 3}], "action": [5, 6], "hit": 3,
                "enable": 1, "entries": [{"index": 1, "key": "010203", "mask": "ff00ff",
                                          "data": "aa"}]}],
    "ops": [{"slot": 7, "op": "ext", "a": 2, "offset": 3, "size": 2, "signed": True,
             "pred": 3, "pred_neg": True},
            {"slot": 58, "op": "wstv", "a": 1, "offset": 10, "imm": -1, "size": 4}],
    "stateful": [{"unit": 1, "op": "cmpxchg", "words": 16, "size": 4, "offset": 4,
                  "index": {"table": 2}, "base": 3, "stride": 2, "b": 1, "cmp": 2,
                  "fetch": 8, "pred": 3, "init": [[5, 7]]}],
    "externs": [{"unit": 0, "kind": "checksum", "dst": 9, "mode": "x86_unfolded",
                 "seed_container": 4, "x": {"window": 14, "length": 20},
                 "y": {"containers": 2, "length": 8}},
                {"unit": 2, "kind": "random", "dst": 10, "seed": 99}],
}


def test_round_trip_dict_and_file(tmp_path):
    """load(dump(c)) == c, through a dict and through a JSON file."""
    c = load_config(doc([GOOD_STAGE], deparser={"punt_containers": [0, 53]},
                        containers=[{"index": 0, "name": "r1"}],
                        predicates=[{"index": 1, "name": "p"}]))
    assert load_config(dump_config(c)) == c
    path = tmp_path / "c.json"
    save_config(c, path)
    assert load_config(path) == c
    assert c.stages[0].tables[0].entries[0].data == b"\xaa" + bytes(15)  # zero-padded


ERRORS = [
    ({"format": "other"}, r"^format: expected 'xdp-offload-pipeline', got 'other'$"),
    ({"version": 2}, r"^version: unsupported version 2 \(this reader: 1\)$"),
    ({"colour": 1}, r"^colour: unknown key \(expected one of: format, version"),
    ({"target": {"num_containers": 49}},
     r"^target\.num_containers: 49 is out of range \[1, 48\]$"),
    ({"target": {"parser_cycles": 4}}, r"^target\.parser_cycles: 4 is less than the window's"),
    ({"target": {"clock_mhz": "fast"}}, r"^target\.clock_mhz: expected a positive number"),
    ({"parser": {"extracts": [{"container": 0, "offset": 250, "size": 8}]}},
     r"^parser\.extracts\[0\]\.offset: extract \[250, 258\) ends beyond the 256-byte window$"),
    ({"stages": [{}] * 49}, r"^stages: 49 logical stages exceed num_stages x max_passes = 48$"),
    ({"deparser": {"punt_containers": [40]}}, r"^deparser\.punt_containers\[0\]: 40 is neither"),
]


@pytest.mark.parametrize("patch,message", ERRORS, ids=[m[:30] for _, m in ERRORS])
def test_document_errors(patch, message):
    """Top-level and target problems name the key."""
    d = doc([])
    d.update(patch)
    with pytest.raises(ConfigError, match=message):
        load_config(d)


def op(**kw):
    return doc([{"ops": [kw]}])


STAGE_ERRORS = [
    (op(slot=4, op="fma", imm=1), r"^stages\[0\]\.ops\[0\]\.op: unknown op 'fma' \(expected "
                                  r"one of: nop, mov, add"),
    (op(slot=40, op="mov", imm=1), r"^stages\[0\]\.ops\[0\]\.slot: 40 is not a writable slot"),
    (op(slot=48, op="mov", imm=1), r"^stages\[0\]\.ops\[0\]\.slot: 48 is not a writable slot"),
    (op(slot=4, op="be", a=0, width=32, size=2), r"\.width: be takes width 64, got 32$"),
    (op(slot=4, op="sext", a=0, width=32, size=4), r"\.size: size 4 not allowed \(expected "
                                                   r"one of: 1, 2\)$"),
    (op(slot=4, op="add", a=0, b=1, imm=3), r"\.ops\[0\]\.b: give either \"b\""),
    (op(slot=4, op="add", a=0), r"^stages\[0\]\.ops\[0\]\.imm: missing"),
    (op(slot=4, op="add", a=47, imm=1), r"\.ops\[0\]\.a: 47 is neither a container"),
    (op(slot=4, op="add", a="x", imm=1), r"\.ops\[0\]\.a: expected an integer, got 'x'$"),
    (op(slot=4, op="add", a=0, imm=2**64), r"\.ops\[0\]\.imm: 18446744073709551616 is out of "
                                           r"range"),
    (op(slot=4, op="ext", a=0, offset=6, size=4), r"\.offset: bytes \[6, 10\) pass"),
    (doc([{"ops": [{"slot": 4, "op": "mov", "imm": 1, "pred": 40}]}],
         target={"predicate_bits": 32}), r"\.pred: 40 is not a predicate \(0-31\)$"),
    (op(slot=4, op="mov", imm=1, pred=64), r"\.pred: 64 is out of range \[0, 63\]$"),
    (op(slot=4, op="mov", imm=1, signed=True), r"\.signed: mov has no signed form$"),
    (doc([{"ops": [{"slot": 4, "op": "mul", "a": 0, "b": 1}]}], target={"mul_max_bits": 32}),
     r"\.op: 64-bit mul exceeds the target's 32-bit multiplier$"),
    (doc([{"ops": [{"slot": 4, "op": "div", "a": 0, "b": 1}]}], target={"div": "none"}),
     r"\.op: div: the target's divider is 'none'$"),
    (doc([{"ops": [{"slot": 4, "op": "mod", "a": 0, "b": 1}]}], target={"div": "constant"}),
     r"\.op: mod: the target's divider is 'constant'$"),
    (doc([{"ops": [{"slot": 4, "op": "mov", "imm": 1}, {"slot": 4, "op": "mov", "imm": 2}]}]),
     r"\.ops\[0\]\.slot: slot 4 holds more than one op$"),
    (doc([{"gateways": [{"dst": 0, "cmp": "eq", "a": 0, "imm": 1}]}]),
     r"gateways\[0\]\.dst: 0 is not a writable predicate \(predicate 0 is the constant 1\)$"),
    (doc([{"gateways": [{"dst": 1, "cmp": "eq", "a": 0, "imm": 1},
                        {"dst": 1, "cmp": "ne", "a": 0, "imm": 1}]}]),
     r"gateways\[1\]\.dst: predicate 1 is also written by gateways\[0\]$"),
    (doc([{"gateways": [{"dst": 1, "cmp": "less", "a": 0, "imm": 1}]}]),
     r"gateways\[0\]\.cmp: unknown comparison 'less'"),
    (doc([{"gateways": [{"dst": 1, "cmp": "eq", "a": 0, "a_offset": 6, "a_size": 4,
                         "imm": 1}]}]), r"gateways\[0\]\.a_offset: slice \[6, 10\) passes"),
    (doc([{"tables": [{"slot": 0, "kind": "exact", "size": 2, "key": [{"container": 0}],
                       "action": [3]}], "ops": [{"slot": 3, "op": "mov", "imm": 1}]}]),
     r"^stages\[0\]: container 3 is written by tables\[0\]\.action\[0\] and ops\[0\] "
     r"\(one writer per container per stage\)$"),
    (doc([{"tables": [{"slot": 0, "kind": "exact", "size": 2, "key": [{"container": 0}],
                       "entries": [{"index": 2, "key": "00" * 8}]}]}]),
     r"entries\[0\]\.index: 2 is beyond the table's 2 entries"),
    (doc([{"tables": [{"slot": 0, "kind": "exact", "size": 2, "key": [{"container": 0}],
                       "entries": [{"index": 0, "key": "00"}]}]}]),
     r"entries\[0\]\.key: 1 bytes, the key has 8$"),
    (doc([{"tables": [{"slot": 0, "kind": "exact", "size": 2, "key": [{"container": 0}],
                       "entries": [{"index": 0, "key": "00" * 8},
                                   {"index": 1, "key": "00" * 8}]}]}]),
     r"entries\[1\]\.key: duplicate key 0000000000000000 \(also at index 0\)$"),
    (doc([{"tables": [{"slot": 0, "kind": "lpm", "size": 2, "key": [{"container": 0}],
                       "entries": [{"index": 0, "key": "00" * 8, "prefix_len": 8},
                                   {"index": 1, "key": "00" * 8, "prefix_len": 16}]}]}]),
     r"entries\[1\]\.prefix_len: 16 after a shorter prefix at a lower index"),
    (doc([{"tables": [{"slot": 0, "kind": "direct", "size": 2, "key": [{"container": 0}]}]}]),
     r"tables\[0\]\.key: a direct table's index is 1-4 bytes, got 8$"),
    (doc([{"tables": [{"slot": 4, "kind": "exact", "size": 2, "key": [{"container": 0}]}]}]),
     r"tables\[0\]\.slot: slot 4 is out of range"),
    (doc([{"tables": [{"slot": 0, "kind": "exact", "size": 40000,
                       "key": [{"container": 0}], "action": [4, 5, 6, 7]}]}]),
     r"^stages\[0\]: physical stage 0 needs 120000 SRAM rows for tables and registers, it "
     r"has 16384$"),
    (doc([{"stateful": [{"unit": 0, "op": "add", "words": 4, "index": {"table": 0},
                         "imm": 1}]}]),
     r"stateful\[0\]\.index\.table: no table in slot 0 in this stage$"),
    (doc([{"tables": [{"slot": 0, "kind": "exact", "size": 8, "key": [{"container": 0}]}],
           "stateful": [{"unit": 0, "op": "add", "words": 4, "index": {"table": 0},
                         "imm": 1}]}]),
     r"stateful\[0\]\.words: 4 words, but table '' entry 7 addresses word 7$"),
    (doc([{"stateful": [{"unit": 0, "op": "add", "words": 4, "size": 4, "offset": 2,
                         "index": {"container": 0}, "imm": 1}]}]),
     r"stateful\[0\]\.offset: field \[2, 6\) is not aligned"),
    (doc([{"externs": [{"unit": 0, "kind": "random", "dst": 4}]}]),
     r"externs\[0\]\.seed: a random extern needs a nonzero immediate seed$"),
    (doc([{"externs": [{"unit": 1, "kind": "hash", "dst": 4,
                        "x": {"containers": 0, "length": 6}}]}]),
     r"externs\[0\]\.x\.length: 6 is not a multiple of 4$"),
    (doc([{"externs": [{"unit": 0, "kind": "checksum", "dst": 4},
                       {"unit": 1, "kind": "checksum", "dst": 5}]}]),
     r"externs: 2 checksum externs exceed the target's 1$"),
    (doc([{"externs": [{"unit": 0, "kind": "timestamp", "dst": 4,
                        "x": {"window": 0, "length": 4}}]}]),
     r"externs\[0\]\.x: a timestamp extern takes no x buffer$"),
]


@pytest.mark.parametrize("d,message", STAGE_ERRORS, ids=[str(i) for i in range(len(STAGE_ERRORS))])
def test_stage_errors(d, message):
    """Stage-level problems name the stage, the unit and the key."""
    with pytest.raises(ConfigError, match=message):
        load_config(d)


def map_doc(**binding):
    stage = {"tables": [{"slot": 0, "kind": "exact", "size": 4,
                         "key": [{"container": 0, "size": 4}], "action": [4]}]}
    m = {"type": "hash", "key_size": 4, "value_size": 8, "max_entries": 4, "tables": [[0, 0]]}
    m.update(binding)
    return doc([stage], maps={"m": m})


@pytest.mark.parametrize("binding,message", [
    ({"type": "array"}, r"^maps\.m\.tables\[0\]: a array map needs a direct table, table '' "
                        r"is exact$"),
    ({"key_size": 8}, r"^maps\.m\.key_size: 8 does not fit table '' \(4 expected\)$"),
    ({"max_entries": 5}, r"^maps\.m\.tables\[0\]: table size 4 is below max_entries 5$"),
    ({"value_size": 9}, r"action data of 8 bytes cannot hold the 9-byte value$"),
    ({"tables": [[3, 0]]}, r"^maps\.m\.tables\[0\]: no table in stage 3 slot 0$"),
    ({"registers": {"stage": 0, "unit": 0}}, r"^maps\.m\.registers\[0\]: no stateful unit 0 "
                                             r"in stage 0$"),
    ({"registers": [{"stage": 0, "unit": 0, "colour": 1}]},
     r"^maps\.m\.registers\[0\]\.colour: unknown key"),
    ({"type": "queue"}, r"^maps\.m\.type: unknown map type 'queue'"),
])
def test_map_binding_errors(binding, message):
    """Map bindings must match their tables and registers."""
    with pytest.raises(ConfigError, match=message):
        load_config(map_doc(**binding))


def slice_doc(*slices: dict, value_size: int = 16, max_entries: int = 4, tables=None,
              words: tuple[int, int] = (16, 16)) -> dict:
    """An array map (u32 key, ``value_size`` bytes) in registers of stage 0 units 0 and 1."""
    stage = {"stateful": [{"unit": u, "op": "add", "words": n, "index": {"container": 0},
                           "imm": 1} for u, n in enumerate(words)]}
    m = {"type": "array", "key_size": 4, "value_size": value_size,
         "max_entries": max_entries, "tables": tables or [], "registers": list(slices)}
    return doc([stage], maps={"m": m})


WORD0 = {"stage": 0, "unit": 0, "words": 1}
WORD1 = {"stage": 0, "unit": 1, "word_offset": 1, "words": 1}


def test_register_slices_parse_and_round_trip():
    """Slices get their defaults; the one-object shorthand is one slice for the whole value."""
    c = load_config(slice_doc(WORD0, WORD1))
    m = c.get_map("m")
    assert [(r.stage, r.unit, r.base, r.stride, r.word_offset, r.words, r.first_entry,
             r.entries) for r in m.registers] == [(0, 0, 0, 1, 0, 1, 0, 4), (0, 1, 0, 1, 1, 1, 0, 4)]
    assert load_config(dump_config(c)) == c
    assert dump_config(c)["maps"]["m"]["registers"][1] == {
        "stage": 0, "unit": 1, "base": 0, "stride": 1, "word_offset": 1, "words": 1,
        "first_entry": 0, "entries": 4}
    whole = load_config(slice_doc({"stage": 0, "unit": 0, "base": 2, "stride": 3}))
    r, = whole.get_map("m").registers
    assert (r.word_offset, r.words, r.first_entry, r.entries) == (0, 2, 0, 4)
    assert whole.get_map("m").get_register(3, 1) == (0, 0, 2 + 3 * 3 + 1)


SLICE_ERRORS = [
    (slice_doc(WORD0), r"^maps\.m\.registers: word 1 of entry 0 is in no slice"),
    (slice_doc(WORD0, {**WORD1, "entries": 3}), r"^maps\.m\.registers: word 1 of entry 3 is in "
                                                r"no slice"),
    (slice_doc(WORD0, {**WORD1, "word_offset": 0}),
     r"^maps\.m\.registers\[1\]: entries \[0, 4\) words \[0, 1\) overlap registers\[0\]$"),
    (slice_doc(WORD0, {**WORD1, "words": 2}),
     r"^maps\.m\.registers\[1\]\.words: value words \[1, 3\) pass the value's 2$"),
    (slice_doc(WORD0, {**WORD1, "first_entry": 2, "entries": 3}),
     r"^maps\.m\.registers\[1\]\.entries: entries \[2, 5\) pass max_entries 4$"),
    (slice_doc({"stage": 0, "unit": 0, "stride": 1}),
     r"^maps\.m\.registers\[0\]\.stride: 1 words cannot hold the slice's 2 value words$"),
    (slice_doc(WORD0, {**WORD1, "base": 13}),
     r"^maps\.m\.registers\[1\]: entries \[0, 4\) need 17 words, unit 1 of stage 0 has 16$"),
    (slice_doc(WORD0, {**WORD1, "unit": 0, "base": 2}),
     r"^maps\.m\.registers\[1\]: register 2 of stage 0 unit 0 also holds a word of "
     r"maps\.m\.registers\[0\]$"),
    (slice_doc(WORD0, {**WORD1, "stage": 1}), r"^maps\.m\.registers\[1\]: no stateful unit 1 in "
                                              r"stage 1$"),
    (slice_doc(value_size=8), r"^maps\.m\.tables: a map needs at least one table"),
]


@pytest.mark.parametrize("d,message", SLICE_ERRORS, ids=[str(i) for i in range(len(SLICE_ERRORS))])
def test_register_slice_errors(d, message):
    """Slices must fit their units and cover every value word of every entry exactly once."""
    with pytest.raises(ConfigError, match=message):
        load_config(d)


def test_table_less_maps():
    """An array held in registers needs no table; a hash map does."""
    load_config(slice_doc(WORD0, WORD1))
    d = slice_doc(WORD0, WORD1)
    d["maps"]["m"]["type"] = "hash"
    with pytest.raises(ConfigError, match=r"^maps\.m\.tables: a map needs at least one table"):
        load_config(d)


def test_two_maps_cannot_share_a_register():
    """Slices of two maps on one unit must use different addresses."""
    d = slice_doc({"stage": 0, "unit": 0, "words": 2, "stride": 2})
    d["maps"]["n"] = dict(d["maps"]["m"], registers=[{"stage": 0, "unit": 0, "stride": 2,
                                                      "base": 8}])
    load_config(d)
    d["maps"]["n"]["registers"][0]["base"] = 7
    with pytest.raises(ConfigError, match=r"^maps\.n\.registers\[0\]: register 7 of stage 0 "
                                          r"unit 0 also holds a word of maps\.m\.registers\[0\]$"):
        load_config(d)


def test_file_errors(tmp_path):
    """A file that is not JSON, or has a bad key, is named in the message."""
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match=r"bad\.json: not JSON: .* at line 1"):
        load_config(bad)
    bad.write_text(json.dumps(op(slot=4, op="fma", imm=1)))
    with pytest.raises(ConfigError, match=r"bad\.json: stages\[0\]\.ops\[0\]\.op: unknown op"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
