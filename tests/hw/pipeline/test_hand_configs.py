"""Hand-written configurations of corpus programs (examples/pipeline/) against the reference VM.

Each configuration runs the seeded random packet mix of sim/packets.py; for every packet the
pipeline's verdict and output bytes must equal the VM's, and the final map contents must be
the VM's. A packet the pipeline punts (a mapper cut, before any side effect) is finished by
the host: a second VM, which re-runs the program from the start on the punted packet; the
combined result is compared. Frames longer than the target's frame_end (3520 bytes) never
reach the pipeline (docs/pipeline.md, section 3): they are checked to be refused and left
out of the comparison on both sides.
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

from ebpf.elf import load
from ebpf.map_state import dump_state, load_state
from ebpf.vm import Vm
from hw.pipeline import (
    PipelineError,
    PipelineModel,
    PipelineResult,
    TimingModel,
    canonical,
    load_config,
    parse_punt,
    read_memory_images,
    write_memory_images,
)
from sim.packets import POOL_PORTS, POOL_V4, random_packets
from tests.conftest import ROOT, corpus_object

CONFIGS = ROOT / "examples" / "pipeline"
NAMES = ("xdp_drop", "parser_counters", "firewall")
STAGES = {"xdp_drop": 0, "parser_counters": 9, "firewall": 10}
# random_packets(2000, seed=1) and the next 100 of the same stream, so that at least 2000
# packets fit the parser (the mix has ~3.7 % jumbo frames beyond frame_end)
NUM_PACKETS = 2100
XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3
PROTO_NONE = 16  # parser_counters.json: "no count() call" in a punt container


def config_path(name: str) -> Path:
    return CONFIGS / f"{name}.json"


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    """The seeded packet mix (the first 2000 are random_packets(2000, seed=1))."""
    return random_packets(NUM_PACKETS, seed=1)


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
    refused: int = 0
    verdicts: Counter[int] = field(default_factory=Counter)
    results: list[PipelineResult] = field(default_factory=list)
    vm_state: dict[str, Any] = field(default_factory=dict)
    combined_state: dict[str, Any] = field(default_factory=dict)


def compare(name: str, packets: list[bytes], state: dict[str, Any] | None = None, *,
            min_compared: int = 2000) -> Comparison:
    """Run ``packets`` through the VM and through pipeline + host; assert per-packet equality."""
    config = load_config(config_path(name))
    vm, maps = new_vm(name, state)
    host, host_maps = new_vm(name, state)
    model = PipelineModel(config)
    bound = {m.name for m in config.maps}
    written = {m.name for m in config.maps if m.registers is not None}
    if state:
        model.state.load_maps({"maps": {k: v for k, v in state["maps"].items() if k in bound}})
    host_before = dump_state({k: host_maps[k] for k in written})
    out = Comparison()
    t = config.target
    for i, pkt in enumerate(packets):
        if not t.min_packet_bytes <= len(pkt) <= t.frame_end:
            with pytest.raises(PipelineError, match="outside"):
                model.process(pkt)
            out.refused += 1
            continue
        ref = vm.run_xdp(pkt)
        r = model.process(pkt)
        out.results.append(r)
        if r.punted:
            reason, fault, _, _, _, frame = parse_punt(r.punt.frame)
            # a mapper cut before any side effect: the host re-runs from the start
            assert reason >= 16 and not fault, f"packet {i}: punt reason {reason}"
            assert not r.register_writes and frame == pkt, f"packet {i}: side effect"
            done = host.run_xdp(frame)
            verdict, packet_out = done.verdict, done.packet_out
            out.punted += 1
        else:
            verdict, packet_out = r.verdict, r.packet_out
        assert verdict == ref.verdict, f"packet {i}: verdict {verdict} (expected {ref.verdict})"
        assert packet_out == ref.packet_out, f"packet {i}: output bytes differ"
        out.verdicts[verdict] += 1
        out.compared += 1
    # maps whose values the pipeline writes are its own; the host's copies stay untouched
    assert dump_state({k: host_maps[k] for k in written}) == host_before
    combined = dump_state(host_maps)["maps"]
    combined.update(model.state.dump_maps()["maps"])
    out.vm_state = dump_state(maps)
    out.combined_state = {"maps": combined}
    assert out.combined_state == out.vm_state
    assert out.compared >= min_compared
    return out


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
    """xdp_drop: every packet dropped unchanged, as the VM does, with no stage used."""
    run = compare("xdp_drop", packets)
    assert run.punted == 0 and set(run.verdicts) == {XDP_DROP}


def test_parser_counters_matches_vm_through_the_host(packets):
    """parser_counters: every packet is cut to the host before its first count(); same result."""
    run = compare("parser_counters", packets, proto_stats_state())
    assert run.punted == run.compared and set(run.verdicts) == {XDP_PASS}


def test_parser_counters_punt_header_names_the_counters(packets):
    """The punt header carries the proto_stats indices and byte count the VM then bumps."""
    seen = check_punt_counters(packets)
    assert set(seen) == set(range(13)), "every proto_stats index is exercised"


def check_punt_counters(packets: list[bytes]) -> Counter[int]:
    """Per packet: the punted indices are exactly the VM's counters that moved, by 1 and len."""
    model = PipelineModel(load_config(config_path("parser_counters")))
    vm, maps = new_vm("parser_counters", None)
    seen: Counter[int] = Counter()
    for i, pkt in enumerate(packets):
        if len(pkt) > model.target.frame_end:
            continue
        before = _counters(maps)
        vm.run_xdp(pkt)
        after = _counters(maps)
        *indices, nbytes = model.process(pkt).punt_metadata
        called = [x for x in indices if x != PROTO_NONE]
        assert nbytes == len(pkt) and all(x < 13 for x in called), f"packet {i}: {indices}"
        assert len(set(called)) == len(called), f"packet {i}: {indices}"
        expected = {x: (before[x][0] + 1, before[x][1] + nbytes) for x in called}
        changed = {x: after[x] for x in range(16) if after[x] != before[x]}
        assert changed == expected, f"packet {i}: indices {indices}"
        seen.update(called)
    return seen


def _counters(maps: dict[str, Any]) -> list[tuple[int, int]]:
    """proto_stats on CPU 0: (packets, bytes) per index."""
    rows = dump_state({"proto_stats": maps["proto_stats"]})["maps"]["proto_stats"]
    out = []
    for row in rows:
        raw = bytes.fromhex(row["values"][0])
        out.append((int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")))
    return out


def test_firewall_matches_vm_without_rules(packets):
    """firewall, empty maps: IPv4 malformed dropped, the rest passed, counters equal."""
    run = compare("firewall", packets)
    assert run.punted == 0 and set(run.verdicts) == {XDP_DROP, XDP_PASS}


def test_firewall_matches_vm_with_rules(packets):
    """firewall with prefixes and rules that hit: DROP, PASS and TX (MACs swapped) all agree."""
    run = compare("firewall", packets, firewall_state())
    assert run.punted == 0 and set(run.verdicts) == {XDP_DROP, XDP_PASS, XDP_TX}
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
    run = compare(name, frames, state, min_compared=0)
    assert run.compared == len(frames)
    if name == "firewall":
        assert set(run.verdicts) == {XDP_DROP, XDP_PASS, XDP_TX}
    else:
        assert set(check_punt_counters(frames)) == set(range(13))


def test_oversize_frames_never_reach_the_pipeline(packets):
    """Frames beyond frame_end are refused by the parser (the VM would run them multi-buffer)."""
    model = PipelineModel(load_config(config_path("firewall")))
    long = [p for p in packets if len(p) > model.target.frame_end]
    assert long
    for pkt in long:
        with pytest.raises(PipelineError, match=r"outside \[14, 3520\]"):
            model.process(pkt)
