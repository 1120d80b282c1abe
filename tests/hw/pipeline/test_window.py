"""Window access: constant and signed variable offsets, stores, out-of-window faults."""

from __future__ import annotations

import pytest

from hw.pipeline import ConfigError, load_config
from tests.hw.pipeline.helpers import doc, frame, model

PKT = bytes(range(256)) * 4  # 1024 bytes, byte p = p % 256


@pytest.mark.parametrize("offset,size,signed,expected", [
    (12, 2, False, 0x0D0C), (14, 1, False, 0x0E), (16, 4, False, 0x13121110),
    (248, 8, False, 0xFFFEFDFCFBFAF9F8), (128, 1, True, 0xFFFF_FFFF_FFFF_FF80),
    (254, 2, True, 0xFFFF_FFFF_FFFF_FFFE), (126, 2, True, 0x7F7E)])
def test_constant_offset_load(offset, size, signed, expected):
    """wld is eBPF's little-endian LDX (LDXSX when signed) at a constant packet offset."""
    m = model([{"ops": [{"slot": 4, "op": "wld", "offset": offset, "size": size,
                         "signed": signed}]}])
    assert m.process(PKT).containers[4] == expected


def test_variable_offset_load():
    """wldv reads at C[a] + offset."""
    m = model([{"ops": [{"slot": 4, "op": "wldv", "a": 5, "offset": 2, "size": 4}]}],
              extracts=[{"container": 5, "offset": 0, "size": 1}])
    assert m.process(bytes([40]) + PKT[1:]).containers[4] == 0x2D2C2B2A


def vmodel(op: str, offset: int, **fields):
    """One wldv / wstv at C[5] + offset; C[5] = the packet's u64 at offset 0."""
    spec = {"slot": 4 if op == "wldv" else 58, "op": op, "a": 5, "offset": offset, "size": 4,
            **fields}
    return model([{"ops": [spec]}], extracts=[{"container": 5, "offset": 0, "size": 8}])


def with_c5(value: int, pkt: bytes = PKT) -> bytes:
    return value.to_bytes(8, "little") + pkt[8:]


def test_negative_variable_offset():
    """wldv / wstv offsets are signed 16 bits: C[a] + (-2) addresses two bytes earlier."""
    r = vmodel("wldv", -2).process(with_c5(40))
    assert r.punt is None and r.containers[4] == 0x29282726
    r = vmodel("wstv", -32768, imm=0xAABBCCDD).process(with_c5(32768 + 100))
    assert r.punt is None and r.packet_out[100:104] == bytes([0xDD, 0xCC, 0xBB, 0xAA])
    assert r.packet_out[:100] == with_c5(32868)[:100] and r.packet_out[104:] == PKT[104:]


def test_negative_sum_below_headroom_faults():
    """C[a] + offset < 0 beyond the headroom (i = H + head + x < 0): window fault, punt 1."""
    m = vmodel("wldv", -100)
    r = m.process(with_c5(10))  # x = -90, i = 64 - 90 < 0
    assert r.punt is not None and (r.punt.reason, r.punt.fault) == (1, True)
    assert r.containers[4] == 0
    r = vmodel("wstv", -100, imm=1).process(with_c5(10))
    assert r.punt is not None and r.punt.reason == 1 and r.packet_out == with_c5(10)
    edge = m.process(with_c5(36))  # x = -64: the first headroom byte, in window
    assert edge.punt is None and edge.containers[4] == 0


def test_negative_sum_in_headroom_reads_headroom():
    """A negative x inside the headroom reads what the headroom holds (zero unless written)."""
    stages = [{"ops": [{"slot": 58, "op": "adjh", "imm": -8}]},
              {"ops": [{"slot": 58, "op": "wst", "offset": 0, "imm": 0x1122334455667788,
                        "size": 8}]},
              {"ops": [{"slot": 58, "op": "adjh", "imm": 8}]},
              {"ops": [{"slot": 4, "op": "wldv", "a": 5, "offset": -8, "size": 8},
                       {"slot": 6, "op": "wld", "offset": -12, "size": 4}]}]
    m = model(stages, extracts=[{"container": 5, "offset": 1, "size": 1}])
    r = m.process(PKT)  # C[5] = 1: x = -7
    assert r.punt is None and r.containers[4] == 0x0011223344556677
    assert r.containers[6] == 0 and r.packet_out == PKT


def test_variable_offset_sum_does_not_wrap():
    """C[a] is unsigned and the sum exact: 2**64 - 4 plus 8 is far out, not offset 4."""
    r = vmodel("wldv", 8).process(with_c5(2**64 - 4))
    assert r.punt is not None and r.punt.reason == 1


@pytest.mark.parametrize("offset", [-32769, 32768, 65535])
def test_window_offset_range(offset):
    """Window op offsets are 16-bit two's complement: -32768..32767."""
    with pytest.raises(ConfigError, match=rf"stages\[0\]\.ops\[0\]\.offset: window offset "
                                          rf"{offset} is out of range \[-32768, 32767\]"):
        load_config(doc([{"ops": [{"slot": 4, "op": "wldv", "a": 0, "offset": offset,
                                   "size": 1}]}]))


def test_byte_offset_ops_stay_unsigned():
    """ext / ins offsets are bytes 0-7 of a container; a negative one is refused."""
    with pytest.raises(ConfigError, match=r"\.offset: bytes \[-1, 1\) pass"):
        load_config(doc([{"ops": [{"slot": 4, "op": "ext", "a": 0, "offset": -1,
                                   "size": 2}]}]))
    with pytest.raises(ConfigError, match=r"\.offset: mov has no offset, got -4"):
        load_config(doc([{"ops": [{"slot": 4, "op": "mov", "imm": 0, "offset": -4}]}]))


def test_load_past_short_packet_reads_zero():
    """Window bytes past the end of a short packet are zero."""
    m = model([{"ops": [{"slot": 4, "op": "wld", "offset": 62, "size": 4}]}])
    assert m.process(PKT[:64]).containers[4] == 0x3F3E


def test_out_of_window_variable_load_punts():
    """A variable-offset load beyond the window faults: punt reason 1, dst unchanged."""
    m = model([{"ops": [{"slot": 4, "op": "wldv", "a": 5, "offset": 248, "size": 8}]}],
              extracts=[{"container": 4, "offset": 16, "size": 1},
                        {"container": 5, "offset": 0, "size": 1}])
    ok = m.process(bytes([0]) + PKT[1:])
    assert ok.punt is None and ok.containers[4] == 0xFFFEFDFCFBFAF9F8
    r = m.process(bytes([7]) + PKT[1:])  # 255 + 8 > 256
    assert r.punt is not None and (r.punt.reason, r.punt.fault) == (1, True)
    assert r.containers[4] == 16 and r.get_meta("fault") == 1 and r.action == "punt"


def test_fault_suppresses_later_side_effects():
    """After a fault: no stores, register writes or verdict writes; containers still update."""
    stages = [
        {"ops": [{"slot": 4, "op": "wldv", "a": 5, "size": 8, "offset": 252},
                 {"slot": 6, "op": "mov", "imm": 9}]},
        {"ops": [{"slot": 58, "op": "wst", "offset": 0, "imm": 0xAA, "size": 1},
                 {"slot": 51, "op": "mov", "imm": 3}, {"slot": 7, "op": "mov", "imm": 5}],
         "stateful": [{"unit": 0, "op": "write", "words": 1, "index": {"container": 8},
                       "imm": 1}]}]
    m = model(stages, extracts=[{"container": 5, "offset": 0, "size": 1}])
    r = m.process(PKT)  # offset 0 + 252 + 8 > 256
    assert r.punt is not None and r.punt.reason == 1
    assert r.packet_out == PKT and r.verdict == 0 and r.register_writes == ()
    assert (r.containers[6], r.containers[7]) == (9, 5)
    assert m.state.read_register(1, 0, 0) == 0


def test_stores_and_stage_entry_reads():
    """Stores land at the stage's end in slot order; same-stage loads see the old bytes."""
    stages = [{"ops": [{"slot": 58, "op": "wst", "offset": 20, "imm": 0x1122334455667788,
                        "size": 4},
                       {"slot": 59, "op": "wst", "offset": 22, "b": 1, "size": 2},
                       {"slot": 4, "op": "wld", "offset": 20, "size": 4}]},
              {"ops": [{"slot": 5, "op": "wld", "offset": 20, "size": 4}]}]
    m = model(stages, extracts=[{"container": 1, "offset": 0, "size": 8}])
    r = m.process(PKT)
    assert r.containers[4] == 0x17161514
    assert r.containers[5] == 0x01007788  # slot 59 (B = bytes 0, 1) overwrote bytes 22-23
    assert r.packet_out[20:24] == bytes([0x88, 0x77, 0x00, 0x01])
    assert r.packet_out[:20] == PKT[:20] and r.packet_out[24:] == PKT[24:]


def test_variable_store_and_payload_beyond_window():
    """wstv stores at C[a] + offset; bytes beyond the window pass unchanged."""
    m = model([{"ops": [{"slot": 58, "op": "wstv", "a": 5, "offset": 1, "imm": 0xEE,
                         "size": 1}]}], extracts=[{"container": 5, "offset": 0, "size": 1}])
    r = m.process(bytes([254]) + PKT[1:])
    assert r.packet_out[255] == 0xEE
    assert r.packet_out[256:] == PKT[256:] and len(r.packet_out) == 1024


def test_constant_offset_beyond_window_rejected():
    """A constant access that can never be in the window is a configuration error."""
    bad = doc([{"ops": [{"slot": 4, "op": "wld", "offset": 317, "size": 4}]}])
    with pytest.raises(ConfigError, match=r"stages\[0\]\.ops\[0\]\.offset: window access "
                                          r"\[317, 321\) ends beyond the window"):
        load_config(bad)


def test_variable_offset_needs_capability():
    """wldv on a target without variable-offset access is rejected."""
    bad = doc([{"ops": [{"slot": 4, "op": "wldv", "a": 0, "size": 4}]}],
              target={"variable_offset": False})
    with pytest.raises(ConfigError, match="no variable-offset window access"):
        load_config(bad)


def test_window_limits_per_stage():
    """More window stores than the target's ports in one stage are rejected."""
    ops = [{"slot": 58 + i, "op": "wst", "offset": i, "imm": 0, "size": 1} for i in range(5)]
    with pytest.raises(ConfigError, match="5 window stores exceed the limit of 4"):
        load_config(doc([{"ops": ops}]))


def test_parser_extract_matches_wld():
    """A parser extract and a wld of the same bytes agree (frame carries value 0x55)."""
    m = model([{"ops": [{"slot": 4, "op": "wld", "offset": 16, "size": 8}]}])
    r = m.process(frame(0x55))
    assert r.containers[0] == r.containers[4] == 0x55
