"""Deparser: verdicts, redirect, punt header, frames too long, head/tail adjustment."""

from __future__ import annotations

import struct

import pytest

from hw.pipeline import ConfigError, PipelineError, parse_punt
from tests.hw.pipeline.helpers import frame, model

PKT = bytes(range(256)) * 4
EINVAL = 2**64 - 22


@pytest.mark.parametrize("verdict,action", [(0, "aborted"), (1, "drop"), (2, "pass"),
                                            (3, "tx"), (7, "aborted")])
def test_verdicts(verdict, action):
    """The verdict field decides the action; unknown values abort but are reported raw."""
    r = model([{"ops": [{"slot": 51, "op": "mov", "imm": verdict}]}]).process(frame())
    assert (r.verdict, r.action, r.redirect, r.punt) == (verdict, action, None, None)
    assert r.packet_out == frame()


def test_default_verdict_is_aborted():
    """Without a write the verdict is XDP_ABORTED (or the configured default)."""
    assert model([]).process(frame()).action == "aborted"
    assert model([], deparser={"default_verdict": 2}).process(frame()).action == "pass"


def test_redirect():
    """XDP_REDIRECT reports the redirect field (low 32 bits)."""
    m = model([{"ops": [{"slot": 51, "op": "mov", "imm": 4},
                        {"slot": 52, "op": "mov", "imm": 0x1_0000_0007}]}])
    r = m.process(frame())
    assert (r.action, r.redirect) == ("redirect", 7)


def test_punt_header_layout():
    """A nonzero punt reason sends header + containers + packet to the host."""
    m = model([{"ops": [{"slot": 53, "op": "mov", "imm": 16},
                        {"slot": 51, "op": "mov", "imm": 1}]}],
              deparser={"punt_containers": [1, 0]})
    pkt = frame(0x1111, 0x2222)
    r = m.process(pkt, ingress_ifindex=9, rx_queue=3)
    assert r.action == "punt" and r.punt_reason == 16 and r.punt_metadata == (0x2222, 0x1111)
    head = b"PT" + bytes([1, 2]) + struct.pack("<IIHH", 16, 9, 3, 0)
    assert r.punt.frame == head + struct.pack("<QQ", 0x2222, 0x1111) + pkt
    assert parse_punt(r.punt.frame) == (16, False, 9, 3, (0x2222, 0x1111), pkt)


def adj(op: str, delta: int, *, then: list | None = None, length: int = 64,
        pkt: bytes | None = None):
    stages = [{"ops": [{"slot": 4, "op": op, "imm": delta}]}] + (then or [])
    return model(stages).process(pkt if pkt is not None else PKT[:length])


def test_adjust_head_shrink_moves_data():
    """adjust_head(+14) drops the Ethernet header; later loads see the new data."""
    r = adj("adjh", 14, then=[{"ops": [{"slot": 5, "op": "wld", "offset": 0, "size": 1}]}])
    assert r.containers[4] == 0 and r.packet_out == PKT[14:64] and r.containers[5] == 14
    assert (r.get_meta("head_delta"), r.get_meta("data_len")) == (14, 50)


def test_adjust_head_grow_and_write_new_head():
    """adjust_head(-20) prepends 20 bytes (zero unless written); the delta is an s32."""
    r = adj("adjh", 0xFFFFFFEC, then=[{"ops": [{"slot": 58, "op": "wst", "offset": 0,
                                                "imm": 0xAB, "size": 1}]}])
    assert r.containers[4] == 0
    assert r.packet_out == b"\xab" + bytes(19) + PKT[:64]
    assert r.get_meta("head_delta") == 2**64 - 20


def test_adjust_head_limits():
    """Kernel limits give -EINVAL; beyond the window headroom but legal for the kernel: punt."""
    r = adj("adjh", -217)
    assert (r.containers[4], r.packet_out, r.punt) == (EINVAL, PKT[:64], None)
    r = adj("adjh", 51)  # data would pass data_end - 14
    assert (r.containers[4], r.packet_out) == (EINVAL, PKT[:64])
    assert adj("adjh", 50).packet_out == PKT[50:64]
    r = adj("adjh", -65)  # kernel allows up to -216, the window holds 64
    assert r.punt is not None and (r.punt.reason, r.punt.fault) == (2, True)
    assert r.packet_out == PKT[:64]
    assert adj("adjh", -64).packet_out == bytes(64) + PKT[:64]


def test_adjust_tail_shrink_grow_and_limits():
    """adjust_tail trims or appends zeros; limits: 14 bytes after data, frame end 3520."""
    assert adj("adjt", -10).packet_out == PKT[:54]
    assert adj("adjt", 10).packet_out == PKT[:64] + bytes(10)
    r = adj("adjt", -51)
    assert (r.containers[4], r.packet_out) == (EINVAL, PKT[:64])
    assert adj("adjt", -50).packet_out == PKT[:14]
    r = adj("adjt", 3520 - 64 + 1)
    assert r.containers[4] == EINVAL
    assert len(adj("adjt", 3520 - 64).packet_out) == 3520


def test_adjust_tail_regrow_is_zeroed():
    """Bytes cut and grown again are zero, inside and beyond the window."""
    grow = [{"ops": [{"slot": 58, "op": "adjt", "imm": 100}]}]
    r = adj("adjt", -100, then=grow, pkt=PKT[:200])
    assert r.packet_out == PKT[:100] + bytes(100)
    r = adj("adjt", -500, then=grow, pkt=PKT)
    assert r.packet_out == PKT[:524] + bytes(100)
    assert len(r.packet_out) == 624


def test_adjust_ops_predicated_and_one_per_stage():
    """A false predicate leaves the packet alone; two adjust ops in one stage are refused."""
    m = model([{"ops": [{"slot": 58, "op": "adjh", "imm": 14, "pred": 7}]}])
    assert m.process(PKT[:64]).packet_out == PKT[:64]
    with pytest.raises(ConfigError, match="2 adjust ops exceed the limit of 1"):
        model([{"ops": [{"slot": 58, "op": "adjh", "imm": 14},
                        {"slot": 59, "op": "adjt", "imm": 1}]}])


def test_frame_too_long_is_punted_unchanged():
    """A frame beyond frame_end enters faulted: reason 3, no side effect, sent unchanged."""
    stages = [{"ops": [{"slot": 51, "op": "mov", "imm": 1},
                       {"slot": 53, "op": "mov", "imm": 16},
                       {"slot": 58, "op": "wst", "offset": 0, "imm": 0xAB, "size": 1},
                       {"slot": 59, "op": "adjh", "imm": 14},
                       {"slot": 4, "op": "mov", "imm": 7}],
               "stateful": [{"unit": 0, "op": "add", "words": 1, "index": {"container": 5},
                             "imm": 1}]}]
    m = model(stages, deparser={"default_verdict": 2, "punt_containers": [4]})
    jumbo = (PKT * 4)[:3521]
    r = m.process(jumbo, ingress_ifindex=9)
    assert r.action == "punt" and (r.punt.reason, r.punt.fault) == (3, True)
    assert r.packet_out == jumbo and r.verdict == 2 and r.register_writes == ()
    assert m.state.read_register(0, 0, 0) == 0
    assert r.containers[4] == 7 and r.get_meta("fault") == 1  # containers still compute
    assert parse_punt(r.punt.frame) == (3, True, 9, 0, (7,), jumbo)
    ok = m.process(jumbo[:3520])  # frame_end itself fits
    assert ok.punt is not None and ok.punt.reason == 16 and not ok.punt.fault
    assert m.state.read_register(0, 0, 0) == 1


def test_frame_too_long_follows_the_target():
    """The limit is the target's frame_end; frames shorter than 14 bytes are still refused."""
    m = model([], target={"frame_end": 1000}, deparser={"default_verdict": 1})
    assert m.process(PKT[:1000]).action == "drop"
    assert m.process(PKT[:1001]).punt_reason == 3
    with pytest.raises(PipelineError, match="packet of 13 bytes is shorter than "
                                            "min_packet_bytes 14"):
        m.process(PKT[:13])
