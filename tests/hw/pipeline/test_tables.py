"""Table units: exact, ternary priority, LPM longest match, direct index, miss, enable."""

from __future__ import annotations

import ipaddress

import pytest

from hw.pipeline import Entry, PipelineError
from tests.hw.pipeline.helpers import frame, model


def ip(text: str) -> int:
    """An IPv4 address as the u32 an eBPF ldxw of the packet bytes gives (little-endian)."""
    return int.from_bytes(ipaddress.IPv4Address(text).packed, "little")


def table_model(kind: str, entries: list[dict], *, size: int = 8, key=None, action=(3,),
                enable: int = 0, extra_gw=None):
    tbl = {"slot": 1, "name": "t", "kind": kind, "size": size,
           "key": key or [{"container": 0, "offset": 0, "size": 4}], "action": list(action),
           "hit": 1, "enable": enable, "entries": entries}
    stage = {"tables": [tbl], "ops": [{"slot": 6, "op": "mov", "imm": 1, "pred": 1}]}
    if extra_gw:
        stage = [{"gateways": extra_gw}, stage]
        return model(stage)
    return model([stage])


def look(m, *values):
    """(hit address or None, container 3, container 6 = hit seen by a same-stage op)."""
    r = m.process(frame(*values))
    return r.table_hits[-1][2], r.containers[3], r.containers[6]


def test_exact_hit_and_miss():
    """An exact hit writes the action data and the hit predicate; a miss changes nothing."""
    m = table_model("exact", [{"index": 0, "key": "0a000001", "data": "1122334455667788"},
                              {"index": 5, "key": "0a000002", "data": "33"}])
    assert look(m, ip("10.0.0.1"), 0, 0, 99) == (0, 0x8877665544332211, 1)
    assert look(m, ip("10.0.0.2"), 0, 0, 99) == (5, 0x33, 1)
    assert look(m, ip("10.0.0.3"), 0, 0, 99) == (None, 99, 0)


def test_exact_key_ignores_bytes_outside_the_slice():
    """Only the slice's bytes form the key: container bytes 4-7 do not matter."""
    m = table_model("exact", [{"index": 0, "key": "0a000001", "data": "01"}])
    assert look(m, ip("10.0.0.1") | 0xFFFF_0000_0000_0000)[0] == 0


def test_multi_slice_key_order():
    """Key bytes are the slices' bytes in slice order, little-endian within a container."""
    key = [{"container": 1, "offset": 4, "size": 1}, {"container": 0, "offset": 0, "size": 2}]
    m = table_model("exact", [{"index": 2, "key": "aa3412", "data": "07"}], key=key)
    assert look(m, 0x1234, 0xAA_0000_0000, 0, 0) == (2, 7, 1)
    assert look(m, 0x3412, 0xAA_0000_0000, 0, 0)[0] is None


def test_ternary_lowest_address_wins():
    """Ternary: the matching entry of lowest address wins, whatever its specificity."""
    m = table_model("ternary", [
        {"index": 0, "key": "0a000000", "mask": "ff000000", "data": "01"},
        {"index": 1, "key": "0a000001", "mask": "ffffffff", "data": "02"},
        {"index": 4, "key": "00000000", "mask": "00000000", "data": "03"}])
    assert look(m, ip("10.0.0.1"))[:2] == (0, 1)
    assert look(m, ip("11.0.0.1"))[:2] == (4, 3)


def test_lpm_longest_prefix():
    """LPM: the longest matching prefix wins; prefix bits are network order (MSB first)."""
    m = table_model("lpm", [
        {"index": 0, "key": "0a000100", "prefix_len": 24, "data": "aa"},
        {"index": 1, "key": "0a000000", "prefix_len": 16, "data": "bb"},
        {"index": 2, "key": "0a800000", "prefix_len": 9, "data": "cc"},
        {"index": 3, "key": "00000000", "prefix_len": 0, "data": "dd"}])
    assert look(m, ip("10.0.1.5"))[:2] == (0, 0xAA)
    assert look(m, ip("10.0.2.5"))[:2] == (1, 0xBB)
    assert look(m, ip("10.128.0.1"))[:2] == (2, 0xCC)
    assert look(m, ip("10.127.0.1"))[:2] == (3, 0xDD)


def test_lpm_miss_without_default():
    """LPM without a /0 entry misses outside every prefix."""
    m = table_model("lpm", [{"index": 0, "key": "c0a80000", "prefix_len": 16, "data": "01"}])
    assert look(m, ip("192.168.9.9"), 0, 0, 5) == (0, 1, 1)
    assert look(m, ip("192.169.0.1"), 0, 0, 5) == (None, 5, 0)


def test_direct_index():
    """Direct: the key is an index; unwritten addresses hit with zero data; >= size misses."""
    m = table_model("direct", [{"index": 2, "data": "0102"}], size=4)
    assert look(m, 2, 0, 0, 9) == (2, 0x0201, 1)
    assert look(m, 1, 0, 0, 9) == (1, 0, 1)
    assert look(m, 4, 0, 0, 9) == (None, 9, 0)
    assert look(m, 0x1_0000_0002, 0, 0, 9)[0] == 2  # the 4-byte slice is the index


def test_action_data_spans_containers():
    """16 bytes of action data go to two containers, 8 bytes each, little-endian."""
    m = table_model("exact", [{"index": 0, "key": "01000000",
                               "data": "0102030405060708090a0b0c0d0e0f10"}], action=(3, 2))
    r = m.process(frame(1))
    assert r.containers[3] == 0x0807060504030201
    assert r.containers[2] == 0x100F0E0D0C0B0A09


def test_disabled_table_misses():
    """A table whose enable predicate is false misses: no data, hit predicate cleared."""
    entries = [{"index": 0, "key": "01000000", "data": "05"}]
    gw = [{"dst": 2, "cmp": "eq", "a": 1, "imm": 1}]
    m = table_model("exact", entries, enable=2, extra_gw=gw)
    assert look(m, 1, 1, 0, 9) == (0, 5, 1)
    assert look(m, 1, 0, 0, 9) == (None, 9, 0)


def test_write_port_between_packets():
    """Control-plane writes and deletes take effect for the next packet."""
    m = table_model("exact", [])
    assert look(m, 7)[0] is None
    m.state.write_entry(0, 1, Entry(index=3, key=(7).to_bytes(4, "little"), data=b"\x2a"))
    assert look(m, 7)[:2] == (3, 42)
    m.state.delete_entry(0, 1, 3)
    assert look(m, 7)[0] is None


def test_write_port_rejects_duplicate_exact_key():
    """The write port refuses a second address for an exact key."""
    m = table_model("exact", [{"index": 0, "key": "07000000", "data": "01"}])
    with pytest.raises(PipelineError, match="already at index 0"):
        m.state.write_entry(0, 1, Entry(index=1, key=(7).to_bytes(4, "little"), data=b"\1"))
