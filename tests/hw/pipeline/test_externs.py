"""Extern units: checksum (bpf_csum_diff), hash (jhash2), random (xorshift32), timestamp."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from ebpf.helpers.packet import csum_diff as vm_csum_diff
from hw.pipeline import PipelineModel, load_config
from tests.hw.pipeline.helpers import doc, frame, model


def ext_model(ext: dict, stages_before: int = 0):
    return model([{} for _ in range(stages_before)] + [{"externs": [ext]}])


def test_checksum_of_ipv4_header_matches_scapy():
    """fold16 csum_diff over an IPv4 header with a zero checksum field gives ~checksum."""
    pkt = bytes(Ether() / IP(src="10.1.2.3", dst="192.168.0.9", ttl=17) / UDP() / b"hello")
    want = int.from_bytes(pkt[24:26], "little")
    zeroed = pkt[:24] + b"\0\0" + pkt[26:]
    m = ext_model({"unit": 0, "kind": "checksum", "dst": 5, "y": {"window": 14, "length": 20}})
    assert (~m.process(zeroed).containers[5]) & 0xFFFF == want
    assert m.process(pkt).containers[5] == 0xFFFF  # a valid header sums to all ones


@pytest.mark.parametrize("mode", ["fold16", "x86_unfolded"])
def test_checksum_matches_vm_helper(mode):
    """Both kernel behaviours agree with the VM's bpf_csum_diff for random buffers and seeds."""
    rng = random.Random(7)
    for _ in range(40):
        values = [rng.getrandbits(64) for _ in range(4)]
        seed = rng.getrandbits(32)
        xlen, ylen = rng.choice([0, 4, 8, 12, 16]), rng.choice([0, 4, 8, 16])
        ext = {"unit": 0, "kind": "checksum", "dst": 5, "mode": mode, "seed": seed}
        if xlen:
            ext["x"] = {"containers": 0, "length": xlen}
        if ylen:
            ext["y"] = {"containers": 2, "length": ylen}
        got = ext_model(ext).process(frame(*values)).containers[5]
        raw = b"".join(v.to_bytes(8, "little") for v in values)
        assert got == vm_csum_diff(raw[:xlen], raw[16:16 + ylen], seed, mode)


def test_checksum_seed_from_container_and_incremental_update():
    """Replacing a 4-byte field: csum_diff(old, new, ~old_check) updates a checksum."""
    pkt = bytearray(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP()))
    old_check = int.from_bytes(pkt[24:26], "little")
    new_src = bytes([172, 16, 0, 7])
    new = bytes(pkt[:26]) + new_src + bytes(pkt[30:])
    expected = bytes(Ether() / IP(src="172.16.0.7", dst="10.0.0.2") / UDP())[24:26]
    # container 0 = old src, container 1 = new src (as ldxw gives them), seed = ~old check
    probe = bytearray(new)
    probe[26:30] = pkt[26:30]  # container 0 reads the old address
    probe[40:44] = (~old_check & 0xFFFF).to_bytes(4, "little")
    pipe = PipelineModel(load_config(doc(
        [{"ops": [{"slot": 1, "op": "mov", "imm": int.from_bytes(new_src, "little")}]},
         {"externs": [{"unit": 0, "kind": "checksum", "dst": 5, "seed_container": 2,
                       "x": {"containers": 0, "length": 4},
                       "y": {"containers": 1, "length": 4}}]}],
        extracts=[{"container": 0, "offset": 26, "size": 4},
                  {"container": 2, "offset": 40, "size": 4}])))
    csum = pipe.process(bytes(probe)).containers[5]
    assert ((~csum) & 0xFFFF).to_bytes(2, "little") == expected


def lookup3_hashlittle(data: bytes, initval: int) -> int:
    """Bob Jenkins' lookup3 hashlittle for lengths that are multiples of 4 (test reference)."""
    m = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & m

    a = b = c = (0xDEADBEEF + len(data) + initval) & m
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    if not words:
        return c
    while len(words) > 3:
        a, b, c = (a + words[0]) & m, (b + words[1]) & m, (c + words[2]) & m
        a = ((a - c) & m) ^ rot(c, 4); c = (c + b) & m  # noqa: E702
        b = ((b - a) & m) ^ rot(a, 6); a = (a + c) & m  # noqa: E702
        c = ((c - b) & m) ^ rot(b, 8); b = (b + a) & m  # noqa: E702
        a = ((a - c) & m) ^ rot(c, 16); c = (c + b) & m  # noqa: E702
        b = ((b - a) & m) ^ rot(a, 19); a = (a + c) & m  # noqa: E702
        c = ((c - b) & m) ^ rot(b, 4); b = (b + a) & m  # noqa: E702
        words = words[3:]
    words += [0] * (3 - len(words))
    a, b, c = (a + words[0]) & m, (b + words[1]) & m, (c + words[2]) & m
    c = (c ^ b) - rot(b, 14) & m
    a = (a ^ c) - rot(c, 11) & m
    b = (b ^ a) - rot(a, 25) & m
    c = (c ^ b) - rot(b, 16) & m
    a = (a ^ c) - rot(c, 4) & m
    b = (b ^ a) - rot(a, 14) & m
    c = (c ^ b) - rot(b, 24) & m
    return c


def test_hash_known_values():
    """jhash2 of no words is 0xdeadbeef + seed (lookup3's published vectors)."""
    from hw.pipeline.ops import jhash2
    assert jhash2([], 0) == 0xDEADBEEF
    assert jhash2([], 0xDEADBEEF) == 0xBD5B7DDE


@pytest.mark.parametrize("length", [4, 8, 12, 16, 20, 24, 32])
def test_hash_matches_lookup3(length):
    """The hash extern over container bytes equals lookup3 hashlittle of the same bytes."""
    rng = random.Random(length)
    values = [rng.getrandbits(64) for _ in range(4)]
    seed = rng.getrandbits(32)
    m = ext_model({"unit": 1, "kind": "hash", "dst": 6, "seed": seed,
                   "x": {"containers": 0, "length": length}})
    raw = b"".join(v.to_bytes(8, "little") for v in values)
    assert m.process(frame(*values)).containers[6] == lookup3_hashlittle(raw[:length], seed)


def test_random_sequence_and_persistence():
    """xorshift32 from seed 1 gives 270369, 67634689, ...; the state persists; predicated."""
    m = model([{"gateways": [{"dst": 1, "cmp": "eq", "a": 0, "imm": 1}]},
               {"externs": [{"unit": 2, "kind": "random", "dst": 7, "seed": 1, "pred": 1}]}])
    out = [m.process(frame(1)).containers[7]]
    assert m.process(frame(0)).containers[7] == 0  # predicate false: no draw
    out.append(m.process(frame(1)).containers[7])
    assert out == [270369, 67634689]

    x, seq = 1, []  # an independent xorshift32 (13, 17, 5)
    for _ in range(20):
        x ^= (x << 13) % 2**32
        x ^= x >> 17
        x ^= (x << 5) % 2**32
        seq.append(x)
    got = out + [m.process(frame(1)).containers[7] for _ in range(18)]
    assert got == seq


def test_timestamp_from_admission_cycle():
    """timestamp = admission cycle in ns: 4 ns per cycle at 250 MHz; batches use the timing."""
    m = ext_model({"unit": 3, "kind": "timestamp", "dst": 8})
    assert m.process(frame(), cycle=1000).containers[8] == 4000
    # back-to-back 64-byte packets are admitted at cycles 5, 6, 7 (parser_cycles = 5)
    assert [r.containers[8] for r in m.process_many([frame()] * 3)] == [20, 24, 28]


def test_extern_window_buffer_fault_punts():
    """A window buffer beyond the window at run time faults: punt reason 1."""
    m = model([{"ops": [{"slot": 58, "op": "adjh", "imm": 20}]},
               {"externs": [{"unit": 0, "kind": "checksum", "dst": 5,
                             "y": {"window": 240, "length": 64}}]}])
    r = m.process(frame(length=300))
    assert r.punt is not None and r.punt.reason == 1 and r.punt.fault
