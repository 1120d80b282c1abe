"""Memory images: words computed by hand from the documented bit fields, and round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hw.pipeline import (
    ConfigError,
    Op,
    canonical,
    load_config,
    read_memory_images,
    write_memory_images,
)
from hw.pipeline import ops as O
from hw.pipeline.images import decode_op, encode_op, read_hexfile
from tests.hw.pipeline.helpers import doc
from tests.hw.pipeline.test_config import GOOD_STAGE

EXTRA_STAGE = {
    "tables": [
        {"slot": 0, "name": "routes", "kind": "lpm", "size": 3,
         "key": [{"container": 0, "size": 4}], "action": [4],
         "entries": [{"index": 0, "key": "0a000100", "prefix_len": 24, "data": "01"},
                     {"index": 2, "key": "0a000000", "prefix_len": 8, "data": "02"}]},
        {"slot": 1, "name": "arr", "kind": "direct", "size": 4,
         "key": [{"container": 1, "size": 4}], "action": [5],
         "entries": [{"index": 1, "data": "07"}, {"index": 2, "data": "00"}]},
        {"slot": 3, "name": "flows", "kind": "exact", "size": 2,
         "key": [{"container": 1, "size": 2}, {"container": 2, "offset": 7, "size": 1}],
         "entries": [{"index": 1, "key": "aabbcc"}]}],
    "ops": [{"slot": 51, "op": "mov", "imm": 2}, {"slot": 0, "op": "nop"},
            {"slot": 6, "op": "wldv", "a": 1, "offset": -2, "size": 2, "signed": True}],
    "stateful": [{"unit": 0, "op": "add", "words": 8, "index": {"container": 3}, "imm": 1,
                  "init": [[2, 0], [3, 2**64 - 1]]}],
}


def config():
    return load_config(doc([GOOD_STAGE, {}, EXTRA_STAGE], deparser={
        "default_verdict": 2, "punt_containers": [0, 53]},
        containers=[{"index": 0, "name": "r1"}],
        maps={"routes": {"type": "lpm_trie", "key_size": 8, "value_size": 1,
                         "max_entries": 3, "tables": [[2, 0]]},
              "pairs": {"type": "array", "key_size": 4, "value_size": 16, "max_entries": 2,
                        "registers": [{"stage": 2, "unit": 0, "base": 4, "stride": 2}]}}))


def hx(digits: int, value: int) -> str:
    """``value`` as a zero-padded lowercase hex word of ``digits`` digits."""
    return format(value, f"0{digits}x")


def lines(path):
    return path.read_text().splitlines()


def test_round_trip(tmp_path):
    """Reading the images back gives the canonical configuration, names and maps included."""
    c = config()
    write_memory_images(c, tmp_path)
    back = read_memory_images(tmp_path)
    assert back == canonical(c)
    assert back.stages[2].tables[1].entries[0].index == 1  # zero direct entry dropped
    assert [o.slot for o in back.stages[2].ops] == [6, 51]  # nop dropped
    assert back.stages[2].ops[0].offset == -2  # window offsets are two's complement
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["maps"]["pairs"]["registers"] == [
        {"stage": 2, "unit": 0, "base": 4, "stride": 2, "word_offset": 0, "words": 2,
         "first_entry": 0, "entries": 2}]


def test_file_format(tmp_path):
    """One comment line, then one zero-padded lowercase word per line, depth as documented."""
    write_memory_images(config(), tmp_path)
    gw = lines(tmp_path / "st00_gw.hex")
    assert gw[0].startswith("// ") and len(gw) == 1 + 8
    assert all(len(w) == 32 for w in gw[1:])
    assert len(lines(tmp_path / "st00_vliw.hex")) == 1 + 64
    assert len(lines(tmp_path / "st00_tbl.hex")) == 1 + 4
    assert len(lines(tmp_path / "st02_t3_key.hex")) == 1 + 2
    assert not (tmp_path / "st02_t3_data.hex").exists()  # no action containers
    assert not (tmp_path / "st02_t1_key.hex").exists()  # direct: data only
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert {"name": "st00_sfu.hex", "width": 192, "depth": 2, "what": "st00 stateful units"} \
        in manifest["files"]
    vh = (tmp_path / "params.vh").read_text()
    assert "`define PIPE_NUM_CONTAINERS 32\n" in vh and "`define PIPE_CLOCK_KHZ 250000\n" in vh
    assert "`define PIPE_ST02_T0_SIZE 3\n" in vh and "`define PIPE_NUM_LOGICAL_STAGES 3\n" in vh


def test_words_by_hand(tmp_path):
    """Control words equal the documented fields assembled by hand."""
    write_memory_images(config(), tmp_path)
    vliw = lines(tmp_path / "st00_vliw.hex")[1:]
    # ext: opcode 19, signed, pred 3, pred_neg, a 2, b_imm, size code 1, offset 3
    assert vliw[7] == hx(32, 19 | 1 << 7 | 3 << 8 | 1 << 14 | 2 << 15 | 1 << 27
                                 | 1 << 28 | 3 << 30)
    # wstv: opcode 25, a 1, b_imm, size code 2, offset 10, imm -1
    assert vliw[58] == "ffffffffffffffff" + hx(16, 25 | 1 << 15 | 1 << 27 | 2 << 28
                                                        | 10 << 30)
    assert vliw[0] == "0" * 32
    gw = lines(tmp_path / "st00_gw.hex")[1:]
    # valid, sgt (6), w32, invert, or, a_size code 3, b 1, pred_in 2, pred_in_neg, dst 1
    assert gw[0] == hx(32, 1 | 6 << 1 | 1 << 5 | 1 << 6 | 1 << 7 | 3 << 17 | 1 << 19
                               | 2 << 26 | 1 << 32 | 1 << 33)
    tbl = lines(tmp_path / "st00_tbl.hex")[1:]
    slice0 = 0 | 1 << 6 | 2 << 9 | 1 << 15  # container 0, offset 1, 3 bytes
    assert tbl[2] == hx(64, 1 | 1 << 1 | 1 << 3 | 3 << 10 | 4 << 16 | 3 << 32
                                | slice0 << 40 | (0x80 | 5) << 168 | (0x80 | 6) << 176)
    assert tbl[0] == "0" * 64
    key = lines(tmp_path / "st00_t2_key.hex")[1:]
    assert key[1] == hx(129, 1 << 512 | 0x030201) and key[0] == "0" * 129
    assert lines(tmp_path / "st00_t2_mask.hex")[2] == hx(128, 0xFF00FF)
    assert lines(tmp_path / "st00_t2_data.hex")[2] == hx(64, 0xAA)
    sfu = lines(tmp_path / "st00_sfu.hex")[1:]
    assert sfu[1] == hx(48, 1 | 7 << 1 | 2 << 4 | 4 << 6 | 2 << 10 | 3 << 19 | 2 << 35
                                | 1 << 43 | 2 << 50 | 8 << 56 | 1 << 62 | 3 << 64 | 16 << 70)
    assert lines(tmp_path / "st00_r1.hex")[1 + 5] == hx(16, 7)
    ext = lines(tmp_path / "st00_ext.hex")[1:]
    assert ext[0] == hx(32, 1 | 1 << 3 | 9 << 4 | 1 << 17 | 4 << 18 | 1 << 24 | 14 << 26
                                | 20 << 48 | 2 << 55 | 2 << 73 | 8 << 79)
    assert ext[2] == hx(32, 1 | 2 << 1 | 10 << 4 | 99 << 96)
    # wldv: opcode 23, signed, a 1, b_imm, size code 1, offset -2 = 0xfffe
    assert lines(tmp_path / "st02_vliw.hex")[1 + 6] == hx(32, 23 | 1 << 7 | 1 << 15 | 1 << 27
                                                           | 1 << 28 | 0xFFFE << 30)
    lpm_mask = lines(tmp_path / "st02_t0_mask.hex")[1:]
    assert lpm_mask[0] == hx(128, 0x00FFFFFF) and lpm_mask[2] == hx(128, 0xFF)
    assert lines(tmp_path / "st02_t1_data.hex")[1:] == [hx(64, v) for v in (0, 7, 0, 0)]
    assert lines(tmp_path / "st02_r0.hex")[1 + 3] == "f" * 16
    dep = lines(tmp_path / "deparser.hex")[1:]
    assert dep[:3] == ["00000002", hx(8, 0x80), hx(8, 0x80 | 53)] and len(dep) == 9
    parser = lines(tmp_path / "parser.hex")[1:]
    assert parser[1] == hx(8, 1 | 3 << 1 | 24 << 3) and parser[4] == "0" * 8


def test_reader_errors(tmp_path):
    """A bad word or a word wider than the memory names the file and line."""
    write_memory_images(config(), tmp_path)
    path = tmp_path / "st00_gw.hex"
    path.write_text("// x\n00\nzz\n")
    with pytest.raises(ConfigError, match=r"st00_gw\.hex:3: not a hex word: 'zz'"):
        read_hexfile(path, 128)
    path.write_text("1" + "0" * 32 + "\n")
    with pytest.raises(ConfigError, match=r"st00_gw\.hex:1: word 0x1000.* is wider than 128"):
        read_hexfile(path, 128)
    with pytest.raises(ConfigError, match="manifest.json: cannot read"):
        read_memory_images(tmp_path / "nowhere")


ops_strategy = st.builds(
    lambda name, width, a, b, imm, size, offset, signed, sel, pred, neg, slot: Op(
        slot=slot, op=name, width=width, a=a, b=b, imm=0 if b is not None else imm, size=size,
        offset=O.signed(offset, 16) if O.VLIW_BY_NAME[name].window else offset,
        signed=signed, sel=sel, pred=pred, pred_neg=neg),
    st.sampled_from([o.name for o in O.VLIW_OPS]), st.sampled_from([32, 64]),
    st.integers(0, 63), st.none() | st.integers(0, 63), st.integers(0, 2**64 - 1),
    st.sampled_from([1, 2, 4, 8]), st.integers(0, 65535), st.booleans(), st.integers(0, 63),
    st.integers(0, 63), st.booleans(), st.integers(0, 63))


@given(ops_strategy)
def test_vliw_encoding_round_trip(op):
    """Every field of a VLIW word survives encode / decode (window offsets signed), 128 bits."""
    word = encode_op(op)
    assert word >> 128 == 0
    if op.op == "nop":
        assert word == 0
    else:
        assert decode_op(op.slot, word) == op
