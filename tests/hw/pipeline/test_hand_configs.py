"""Hand-written configurations of corpus programs (examples/pipeline/) against the reference VM.

Each configuration runs the seeded random packet mix of sim/packets.py; for every packet the
pipeline's verdict and output bytes must equal the VM's, and the final map contents must be
the VM's. A packet the pipeline punts (a mapper cut before any side effect, or a frame longer
than the target's frame_end, 3520 bytes, which the parser punts with reason 3: docs/
pipeline.md, section 3) is finished by the host: a second VM, which re-runs the program from
the start on the punted packet; the combined result is compared. The host works on the
pipeline's contents of the maps whose values live in its registers (read before and written
back after, as through the control plane), so that the combined map state compares exactly
with the single-CPU VM's.
"""

from __future__ import annotations

import itertools
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_RR
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether

from ebpf.loader.elf import load
from ebpf.maps.state import dump_state, load_state
from ebpf.vm.machine import Vm
from hw.pipeline import (
    PipelineModel,
    PipelineResult,
    TimingModel,
    canonical,
    load_config,
    parse_punt,
    read_memory_images,
    write_memory_images,
)
from hw.pipeline import ops as O
from sim.packets import POOL_PORTS, POOL_V4, random_packets
from tests.conftest import ROOT, corpus_object

CONFIGS = ROOT / "examples" / "pipeline"
NAMES = ("xdp_drop", "parser_counters", "firewall")
STAGES = {"xdp_drop": 0, "parser_counters": 10, "firewall": 10}
NUM_PACKETS = 2000  # random_packets(2000, seed=1), jumbo frames (~3.7 %) included
FRAME_END = 3520  # the default target's frame_end: longer frames are punted
XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3
PROTO_MAX = 16  # proto_stats entries; parser_counters.json: index 16 = "no count() call"
# parser_counters.json: the stages holding the proto_stats units, and their entry ranges
COUNTER_STAGES = {3: (0, 1), 4: (1, 3), 7: (3, 4), 8: (4, 6), 9: (6, 16)}


def config_path(name: str) -> Path:
    return CONFIGS / f"{name}.json"


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    """The seeded packet mix: random_packets(2000, seed=1)."""
    return random_packets(NUM_PACKETS, seed=1)


def num_too_long(packets: list[bytes]) -> int:
    return sum(len(p) > FRAME_END for p in packets)


def new_vm(name: str, state: dict[str, Any] | None) -> tuple[Vm, dict[str, Any]]:
    """A VM (CPU 0 of 1) on the built corpus object, maps loaded with ``state``."""
    obj = load(corpus_object(name))
    vm = Vm(obj, obj.get_program(None))
    maps = {m.name: m for m in vm.maps}
    if state:
        load_state(maps, state)
    return vm, maps


@dataclass
class Comparison:
    """What one run of a packet stream through VM and pipeline (+ host) gave."""

    compared: int = 0
    punted: int = 0
    too_long: int = 0  # punted by the parser: longer than frame_end
    verdicts: Counter[int] = field(default_factory=Counter)
    results: list[PipelineResult] = field(default_factory=list)
    vm_state: dict[str, Any] = field(default_factory=dict)
    combined_state: dict[str, Any] = field(default_factory=dict)


def compare(name: str, packets: list[bytes], state: dict[str, Any] | None = None
            ) -> Comparison:
    """Run ``packets`` through the VM and through pipeline + host; assert per-packet equality."""
    config = load_config(config_path(name))
    vm, maps = new_vm(name, state)
    host, host_maps = new_vm(name, state)
    model = PipelineModel(config)
    bound = {m.name for m in config.maps}
    written = {m.name for m in config.maps if m.registers}
    if state:
        model.state.load_maps({"maps": {k: v for k, v in state["maps"].items() if k in bound}})
    out = Comparison()
    t = config.target
    for i, pkt in enumerate(packets):
        ref = vm.run_xdp(pkt)
        r = model.process(pkt)
        out.results.append(r)
        if r.punted:
            reason, fault, _, _, _, frame = parse_punt(r.punt.frame)
            if len(pkt) > t.frame_end:
                assert (reason, fault) == (O.PUNT_FRAME_TOO_LONG, True), f"packet {i}"
                out.too_long += 1
            else:  # a mapper cut before any side effect: the host re-runs from the start
                assert reason >= O.PUNT_FIRST_CUT and not fault, f"packet {i}: reason {reason}"
            assert not r.register_writes and frame == pkt, f"packet {i}: side effect"
            done = run_on_host(host, host_maps, model, written, frame)
            verdict, packet_out = done.verdict, done.packet_out
            out.punted += 1
        else:
            verdict, packet_out = r.verdict, r.packet_out
        assert verdict == ref.verdict, f"packet {i}: verdict {verdict} (expected {ref.verdict})"
        assert packet_out == ref.packet_out, f"packet {i}: output bytes differ"
        out.verdicts[verdict] += 1
        out.compared += 1
    combined = dump_state({k: m for k, m in host_maps.items() if k not in written})["maps"]
    combined.update(model.state.dump_maps()["maps"])
    out.vm_state = dump_state(maps)
    out.combined_state = {"maps": combined}
    assert out.combined_state == out.vm_state
    assert out.compared == len(packets)
    return out


def run_on_host(host: Vm, host_maps: dict[str, Any], model: PipelineModel, written: set[str],
                frame: bytes) -> Any:
    """The host finishes a punted packet on the pipeline's values of the maps it writes."""
    if written:
        pipeline = model.state.dump_maps()["maps"]
        load_state(host_maps, {"maps": {k: pipeline[k] for k in written}})
    done = host.run_xdp(frame)
    if written:
        model.state.load_maps(dump_state({k: host_maps[k] for k in written}))
    return done


# -- map states -------------------------------------------------------------------------------

def ip(addr: str) -> str:
    return socket.inet_aton(addr).hex()


def u32(v: int) -> str:
    return v.to_bytes(4, "little").hex()


def u64(v: int) -> str:
    return v.to_bytes(8, "little").hex()


BLOCKED = [("10.1.0.0", 16), ("172.16.0.0", 12), ("203.0.113.7", 32), ("10.10.0.0", 16),
           ("10.10.10.10", 32)]
# 7 and 0 (ABORTED) pass; an odd period gives TCP and UDP rules every action
RULE_ACTIONS = (XDP_DROP, XDP_TX, XDP_PASS, XDP_TX, 7, XDP_DROP, 0)


def firewall_state() -> dict[str, Any]:
    """Prefixes and 5-tuple rules on the pools of sim/packets.py, and nonzero counters.

    10.1.2.3 is both a rule source and inside a blocked prefix (the prefix wins); 10.10.10.10
    sits in a /16 and a /32 (longest first). Rules: the first four pooled sources to every
    pooled destination, TCP and UDP on six pooled ports each way, and port-less rules for
    ICMP, TCP and UDP (fragments).
    """
    blocked = [{"key": u32(plen) + ip(addr), "value": u32(i + 1)}
               for i, (addr, plen) in enumerate(BLOCKED)]
    rules = []
    tuples = itertools.chain(
        itertools.product(POOL_V4[:4], POOL_V4, POOL_PORTS[:6], POOL_PORTS[:6], (6, 17)),
        itertools.product(POOL_V4[:4], POOL_V4, (0,), (0,), (1, 6, 17)))
    for i, (src, dst, sport, dport, proto) in enumerate(tuples):
        key = ip(src) + ip(dst) + sport.to_bytes(2, "big").hex() + \
            dport.to_bytes(2, "big").hex() + bytes([proto, 0, 0, 0]).hex()
        rules.append({"key": key, "value": u32(RULE_ACTIONS[i % len(RULE_ACTIONS)])})
    stats = [{"key": u32(a), "values": [u64(1000 * a + 7)]} for a in range(5)]
    return {"maps": {"blocked_src": blocked, "flow_rules": rules, "verdict_stats": stats}}


def proto_stats_state() -> dict[str, Any]:
    """Nonzero starting counters for parser_counters (packets i, bytes 1000 * i)."""
    return {"maps": {"proto_stats": [{"key": u32(i), "values": [u64(i) + u64(1000 * i)]}
                                     for i in range(16)]}}


# -- tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_config_fits_in_one_pass(name):
    """Each configuration validates, uses its stages in one pass: II 1, latency 55 cycles."""
    config = load_config(config_path(name))
    timing = TimingModel(config)
    assert len(config.stages) == STAGES[name]
    assert config.num_passes == 1
    assert timing.initiation_interval(64) == 1
    assert timing.latency_cycles() == 55
    assert timing.simulate([64] * 100).sustained_ii == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_config_memory_images_round_trip(name, tmp_path):
    """The memory images of each configuration decode back to the canonical configuration."""
    config = load_config(config_path(name))
    write_memory_images(config, tmp_path)
    assert read_memory_images(tmp_path) == canonical(config)


def test_xdp_drop_matches_vm(packets):
    """xdp_drop: every packet dropped unchanged, as the VM does; only jumbo frames punted."""
    run = compare("xdp_drop", packets)
    assert run.punted == run.too_long == num_too_long(packets) > 0
    assert set(run.verdicts) == {XDP_DROP}


def test_parser_counters_matches_vm(packets):
    """parser_counters: counters updated in the pipeline; no punt but the jumbo frames."""
    run = compare("parser_counters", packets, proto_stats_state())
    assert run.punted == run.too_long == num_too_long(packets) > 0
    assert set(run.verdicts) == {XDP_PASS}
    moved = sum(1 for r in run.results if r.register_writes)
    assert moved == len(packets) - run.too_long  # every other packet counts in the pipeline


def test_parser_counters_uses_ten_units_in_five_stages():
    """proto_stats is split into 10 register slices: packets and bytes x 5 entry ranges."""
    config = load_config(config_path("parser_counters"))
    units = {s: len(st.stateful) for s, st in enumerate(config.stages) if st.stateful}
    assert units == {s: 2 for s in COUNTER_STAGES}
    m = config.get_map("proto_stats")
    assert m is not None and not m.tables and len(m.registers) == 10
    for i in range(PROTO_MAX):
        stage = next(s for s, (lo, hi) in COUNTER_STAGES.items() if lo <= i < hi)
        assert m.get_register(i, 0) == (stage, 0, i)  # packets
        assert m.get_register(i, 1) == (stage, 1, i)  # bytes
    assert TimingModel(config).latency_cycles() == 55


def test_parser_counters_updates_match_vm_per_packet(packets):
    """Per packet, the pipeline's register writes are exactly the VM's counter changes."""
    seen = check_counters(packets)
    assert set(seen) == set(range(13)), "every proto_stats index is exercised"


def check_counters(packets: list[bytes]) -> Counter[int]:
    """Per packet: the (entry, word) registers written, by how much, equal the VM's changes.

    Returns how often each proto_stats index was counted. Jumbo frames are punted (the host
    counts them): they write no register.
    """
    config = load_config(config_path("parser_counters"))
    m = config.get_map("proto_stats")
    assert m is not None
    where = {m.get_register(i, w): (i, w) for i in range(PROTO_MAX) for w in range(2)}
    model = PipelineModel(config)
    vm, maps = new_vm("parser_counters", None)
    seen: Counter[int] = Counter()
    for i, pkt in enumerate(packets):
        before = _counters(maps)
        vm.run_xdp(pkt)
        after = _counters(maps)
        r = model.process(pkt)
        if r.punted:
            assert r.punt_reason == O.PUNT_FRAME_TOO_LONG and not r.register_writes
            continue
        deltas = {where[(w.stage, w.unit, w.addr)]: w.new - w.old for w in r.register_writes}
        assert len(deltas) == len(r.register_writes), f"packet {i}: a word written twice"
        expected = {(x, k): after[x][k] - before[x][k] for x in range(PROTO_MAX)
                    for k in range(2) if after[x][k] != before[x][k]}
        assert deltas == expected, f"packet {i}: writes {deltas} (expected {expected})"
        assert all(d == (1 if k == 0 else len(pkt)) for (_x, k), d in deltas.items())
        seen.update(x for x, k in deltas if k == 0)
    return seen


def _counters(maps: dict[str, Any]) -> list[tuple[int, int]]:
    """proto_stats on CPU 0: (packets, bytes) per index."""
    out = []
    for x in range(PROTO_MAX):
        raw = bytes(maps["proto_stats"].lookup(x.to_bytes(4, "little"), cpu=0))
        out.append((int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")))
    return out


def test_firewall_matches_vm_without_rules(packets):
    """firewall, empty maps: IPv4 malformed dropped, the rest passed, counters equal."""
    run = compare("firewall", packets)
    assert run.punted == run.too_long == num_too_long(packets)
    assert set(run.verdicts) == {XDP_DROP, XDP_PASS}


def test_firewall_matches_vm_with_rules(packets):
    """firewall with prefixes and rules that hit: DROP, PASS and TX (MACs swapped) all agree."""
    run = compare("firewall", packets, firewall_state())
    assert run.punted == run.too_long == num_too_long(packets)
    assert set(run.verdicts) == {XDP_DROP, XDP_PASS, XDP_TX}
    hits = Counter((stage, slot) for r in run.results for stage, slot, index in r.table_hits
                   if index is not None)
    assert hits[(3, 0)] > 0 and hits[(6, 0)] > 0  # blocked_src, flow_rules


def rule_tuple(state: dict[str, Any], proto: int, action: int) -> tuple[str, str, int, int]:
    """(saddr, daddr, sport, dport) of the first flow_rules entry for ``proto`` -> ``action``."""
    for rule in state["maps"]["flow_rules"]:
        key = bytes.fromhex(rule["key"])
        if key[12] == proto and key[8:12] != bytes(4) and int(rule["value"][:2], 16) == action:
            return (socket.inet_ntoa(key[0:4]), socket.inet_ntoa(key[4:8]),
                    int.from_bytes(key[8:10], "big"), int.from_bytes(key[10:12], "big"))
    raise AssertionError(f"no rule for protocol {proto} -> {action}")


def truncations() -> list[bytes]:
    """Every prefix (14 bytes up) of frames that walk each header, tag, protocol and rule kind."""
    state = firewall_state()
    ts, td, tsp, tdp = rule_tuple(state, 6, XDP_TX)
    us, ud, usp, udp = rule_tuple(state, 17, XDP_TX)
    ds, dd, dsp, ddp = rule_tuple(state, 6, XDP_DROP)
    eth = Ether(src="02:00:00:00:00:01", dst="52:54:00:12:34:56")
    opts = [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b"")]
    frames = [
        eth / IP(src=ts, dst=td, options=[IPOption_RR(routers=["0.0.0.0"] * 2)]) /
        TCP(sport=tsp, dport=tdp, options=opts) / (b"t" * 6),
        eth / Dot1AD(vlan=3) / Dot1Q(vlan=4) / IP(src=us, dst=ud) /
        UDP(sport=usp, dport=udp) / (b"u" * 5),
        eth / Dot1Q(vlan=7) / IP(src=ds, dst=dd) / TCP(sport=dsp, dport=ddp),
        eth / Dot1Q(vlan=9) / IP(src=POOL_V4[0], dst=POOL_V4[1]) / ICMP() / b"ping",
        eth / IP(src=POOL_V4[0], dst=POOL_V4[1], flags="MF") / TCP(sport=80, dport=22),
        eth / IP(src=POOL_V4[1], dst=POOL_V4[2], frag=185) / UDP() / b"x",
        eth / IPv6() / TCP(options=opts),
        eth / Dot1Q(vlan=2) / IPv6() / UDP() / b"v6",
        eth / IPv6() / ICMPv6EchoRequest(),
        eth / IP(src=POOL_V4[3], dst=POOL_V4[0], proto=47) / b"gre.",
        eth / ARP(psrc=POOL_V4[0], pdst=POOL_V4[1]),
    ]
    out = []
    for f in frames:
        raw = bytes(f)
        out.extend(raw[:n] for n in range(14, len(raw) + 1))
    return out


@pytest.mark.parametrize("name", ["parser_counters", "firewall"])
def test_truncation_at_every_length_matches_vm(name):
    """Frames cut at every length hit each bounds check on both sides of its boundary."""
    frames = truncations()
    state = firewall_state() if name == "firewall" else None
    run = compare(name, frames, state)
    assert run.punted == 0
    if name == "firewall":
        assert set(run.verdicts) == {XDP_DROP, XDP_PASS, XDP_TX}
    else:
        assert set(check_counters(frames)) == set(range(13))


@pytest.mark.parametrize("name", NAMES)
def test_jumbo_frames_are_punted_unchanged(name, packets):
    """Frames beyond frame_end go to the host untouched: reason 3, faulted, no side effect."""
    model = PipelineModel(load_config(config_path(name)))
    long = [p for p in packets if len(p) > model.target.frame_end]
    assert long
    for pkt in long:
        r = model.process(pkt)
        reason, fault, _, _, words, frame = parse_punt(r.punt.frame)
        assert (reason, fault, frame) == (O.PUNT_FRAME_TOO_LONG, True, pkt)
        assert r.action == "punt" and r.get_meta("fault") == 1 and not r.register_writes
        assert len(words) == len(model.config.punt_containers)
