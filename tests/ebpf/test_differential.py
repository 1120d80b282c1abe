"""The corpus on the VM and in the kernel (ebpf.differential), on the same packets.

Every program of every object in examples/xdp runs on ``random_packets(2000, seed=1)`` with
its scenario (examples/xdp/scenarios/<object>.json): verdicts, output bytes and final map
contents must agree. The scenarios are also checked on the VM alone: the maps a program
looks up with keys taken from the packet must be both hit and missed, so that the
comparison covers both paths. Hypothesis then feeds a few programs with generated frames
(tests/ebpf/packet_strategies.py), and planted VM bugs show that the harness reports what
differs, with the packet index.

Tests that need bpf(2) skip with ``bpf_permitted()``'s reason when it is not permitted.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ebpf.vm.xdp
from ebpf.differential import DiffReport, Scenario, VmSide, differential, num_cpus, prepare
from ebpf.loader.elf import load
from ebpf.loader.program import ElfObject
from ebpf.maps.hash import LruHashMap
from ebpf.maps.state import MapStateError
from ebpf.vm.xdp import XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, XdpResult
from sim.packets import POOL_MACS, random_packets
from tests.budget import examples
from tests.conftest import CORPUS_NAMES, ROOT, corpus_object
from tests.ebpf.packet_strategies import packets

needs_bpf = pytest.mark.kernel  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)

SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"
PACKETS = random_packets(2000, seed=1)

# Maps looked up with keys taken from packet fields: the scenario must make each of them
# both hit and miss on PACKETS.
HIT_AND_MISS = {
    "firewall": {"blocked_src", "flow_rules"},
    "lpm_router": {"routes", "tx_ports"},
    "katran_lb": {"vip_map", "conn_table"},
    "nat": {"nat_rules"},
    "syn_flood": {"syn_counters"},
    "rate_limiter": {"buckets"},
}
# Verdicts the scenario must produce on PACKETS (each at least once).
VERDICT_MIX = {
    "firewall": {XDP_PASS, XDP_DROP, XDP_TX},
    "lpm_router": {XDP_PASS, XDP_REDIRECT, XDP_ABORTED},
    "katran_lb": {XDP_PASS, XDP_DROP, XDP_TX},
    "globals": {XDP_PASS, XDP_DROP},
    "syn_flood": {XDP_PASS, XDP_DROP},
    "rate_limiter": {XDP_PASS, XDP_DROP},
    "fib_router": {XDP_PASS, XDP_REDIRECT},
}
# bpf_fib_lookup results fib_router's routes must produce: SUCCESS, BLACKHOLE, NOT_FWDED,
# NO_NEIGH, FRAG_NEEDED.
FIB_RESULTS = {0, 1, 4, 7, 8}


@functools.cache
def corpus(name: str) -> tuple[str, ElfObject]:
    path = corpus_object(name)
    return str(path), load(path)


def scenario_doc(name: str) -> dict:
    return json.loads((SCENARIOS / f"{name}.json").read_text())


@functools.cache
def scenario(name: str) -> Scenario:
    """The object's scenario, per-CPU values stretched or cut to this machine's CPU count
    (the files list two)."""
    doc = scenario_doc(name)
    cpus = num_cpus()
    for entries in doc.get("maps", {}).values():
        for entry in entries:
            if "values" in entry:
                values = entry["values"]
                entry["values"] = [values[i % len(values)] for i in range(cpus)]
    return Scenario.from_dict(doc, str(SCENARIOS / f"{name}.json"))


def _programs() -> list[tuple[str, str]]:
    return [(name, prog.name) for name in CORPUS_NAMES for prog in corpus(name)[1].programs]


PROGRAMS = _programs()


def vm_results(name: str, program: str | None = None) -> list[XdpResult]:
    """PACKETS through the VM side alone, as differential() runs it (clock included)."""
    sc = scenario(name)
    run_obj, clock = prepare(corpus(name)[1], sc)
    side = VmSide(run_obj, program, sc)
    out = []
    for i, packet in enumerate(PACKETS):
        if clock:
            side.set_clock(sc.clock_ns(i))
        out.append(side.run(packet))
    return out


def describe(report: DiffReport, packets: list[bytes]) -> str:
    lines = [f"{report.program}: {len(report.mismatches)} mismatches; verdicts "
             f"{report.to_dict()['verdicts']}"]
    for m in report.mismatches[:5]:
        lines.append(f"  packet {m.index} {m.what}: vm {m.vm[:160]} kernel {m.kernel[:160]}")
        if m.index >= 0:
            lines.append(f"    packet hex {packets[m.index].hex()}")
    return "\n".join(lines)


# --- the scenarios, on the VM -------------------------------------------------------------

def test_every_corpus_object_has_a_described_scenario():
    """Each examples/xdp/*.c has a scenario file with a description, and the loader ignores
    the description key."""
    for name in CORPUS_NAMES:
        doc = scenario_doc(name)
        assert doc.get("description"), name
        assert Scenario.from_dict(doc).state == {"maps": doc["maps"], "max_entries": {}}


@pytest.mark.parametrize("name", sorted(HIT_AND_MISS))
def test_scenario_lookups_hit_and_miss(name):
    """On the VM, every packet-keyed map lookup of the program both hits and misses."""
    seen: Counter = Counter()
    for result in vm_results(name):
        for op in result.trace.map_ops:
            if op.op == "lookup":
                seen[op.map, op.hit] += 1
    for map_name in HIT_AND_MISS[name]:
        assert seen[map_name, True] and seen[map_name, False], (
            f"{name}: map {map_name} hit {seen[map_name, True]} times, missed "
            f"{seen[map_name, False]} times")


@pytest.mark.parametrize("name", sorted(VERDICT_MIX))
def test_scenario_verdict_mix(name):
    """On the VM, the scenario makes the program return each verdict it is meant to."""
    verdicts = Counter(r.verdict for r in vm_results(name))
    assert VERDICT_MIX[name] <= set(verdicts), f"{name}: verdicts {dict(verdicts)}"


def test_fib_router_scenario_reaches_every_lookup_result():
    """On the VM, fib_router's routes give SUCCESS, BLACKHOLE, NOT_FWDED, NO_NEIGH and
    FRAG_NEEDED."""
    results = Counter(call.ret for r in vm_results("fib_router")
                      for call in r.trace.helper_calls if call.name == "fib_lookup")
    assert FIB_RESULTS <= set(results), dict(results)


def test_nat_scenario_rewrites_some_packets():
    """On the VM, the NAT rules rewrite some packets and leave the others untouched."""
    changed = sum(r.packet_out != p for r, p in zip(vm_results("nat"), PACKETS, strict=True))
    assert 0 < changed < len(PACKETS)


# --- VM against the kernel ----------------------------------------------------------------

@needs_bpf
@pytest.mark.parametrize("name,program", PROGRAMS, ids=[f"{n}:{p}" for n, p in PROGRAMS])
def test_corpus_program_matches_kernel(name, program):
    """Verdicts, output bytes and final maps agree on 2000 random packets with the
    object's scenario."""
    path, obj = corpus(name)
    report = differential(path, obj, PACKETS, scenario(name), program)
    assert report.packets == len(PACKETS)
    assert not report.mismatches, describe(report, PACKETS)


@needs_bpf
@pytest.mark.parametrize("name", ["parser_counters", "firewall", "icmp_echo", "nat",
                                  "katran_lb"])
@settings(max_examples=examples(50), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(batch=st.lists(packets(), min_size=1, max_size=20))
def test_generated_packets_match_kernel(name, batch):
    """Generated frames (valid, malformed, truncated, jumbo) give no mismatch."""
    path, obj = corpus(name)
    report = differential(path, obj, batch, scenario(name))
    assert not report.mismatches, describe(report, batch)


@needs_bpf
def test_fib_router_does_not_forward_from_link_scope_ipv6_sources():
    """IPv6 from a multicast, link-local or loopback source is not forwarded, though its
    destination has a route (found by random_packets(3000, seed=14), packet 259)."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    eth = Ether(src=POOL_MACS[0], dst=POOL_MACS[1])
    batch = [bytes(eth / IPv6(src=src, dst="fd00::10") / TCP())
             for src in ("2001:db8::1", "ff02::1", "ffc1:f513:9c02:8d2a::1", "fe80::1", "::1")]
    path, obj = corpus("fib_router")
    report = differential(path, obj, batch, scenario("fib_router"))
    assert report.kernel_verdicts == Counter({XDP_REDIRECT: 1, XDP_PASS: 4})
    assert not report.mismatches, describe(report, batch)


# --- the harness notices a wrong VM -------------------------------------------------------

@needs_bpf
def test_planted_verdict_bug_is_reported(monkeypatch):
    """A VM that turns XDP_TX into XDP_PASS gives a verdict mismatch for every TX packet,
    with its index."""
    batch = PACKETS[:300]
    tx = [i for i, r in enumerate(vm_results("icmp_echo")[:300]) if r.verdict == XDP_TX]
    assert tx, "no echo request among the packets"
    real = ebpf.vm.xdp.run_xdp

    def tx_as_pass(*args, **kwargs):
        result = real(*args, **kwargs)
        if result.verdict == XDP_TX:
            result.verdict = XDP_PASS
        return result

    monkeypatch.setattr(ebpf.vm.xdp, "run_xdp", tx_as_pass)
    path, obj = corpus("icmp_echo")
    report = differential(path, obj, batch, scenario("icmp_echo"))
    assert [(m.index, m.what, m.vm, m.kernel) for m in report.mismatches] == [
        (i, "verdict", "XDP_PASS", "XDP_TX") for i in tx]
    assert report.first_packet == batch[tx[0]]


@needs_bpf
def test_planted_output_bug_is_reported(monkeypatch):
    """A VM that flips one output byte of packet 7 gives exactly one data mismatch, at
    index 7."""
    real = ebpf.vm.xdp.run_xdp
    calls = []

    def flip_seventh(*args, **kwargs):
        result = real(*args, **kwargs)
        if len(calls) == 7:
            out = bytearray(result.packet_out)
            out[-1] ^= 0x01
            result.packet_out = bytes(out)
        calls.append(1)
        return result

    monkeypatch.setattr(ebpf.vm.xdp, "run_xdp", flip_seventh)
    path, obj = corpus("parser_counters")
    batch = PACKETS[:20]
    report = differential(path, obj, batch, scenario("parser_counters"))
    assert [(m.index, m.what) for m in report.mismatches] == [(7, "data")]
    mismatch = report.mismatches[0]
    assert bytes.fromhex(mismatch.kernel) == batch[7]
    assert bytes.fromhex(mismatch.vm) != batch[7]
    assert report.first_packet == batch[7]


@needs_bpf
def test_planted_map_bug_is_reported(monkeypatch):
    """A VM whose LRU hash stores a wrong value makes the final conn_table differ (index -1,
    the map named)."""
    real = LruHashMap.update

    def off_by_one(self, key, value, flags=0, **kwargs):
        value = bytes(value)
        return real(self, key, bytes([value[0] ^ 1]) + value[1:], flags, **kwargs)

    monkeypatch.setattr(LruHashMap, "update", off_by_one)
    path, obj = corpus("katran_lb")
    report = differential(path, obj, PACKETS, scenario("katran_lb"))
    assert any(m.index == -1 and m.what == "map conn_table" for m in report.mismatches), \
        report.mismatches


def test_scenario_files_are_json_with_known_top_level_keys():
    """Scenario files use only maps, routes, clock and description at the top level."""
    for path in sorted(Path(SCENARIOS).glob("*.json")):
        doc = json.loads(path.read_text())
        assert set(doc) <= {"maps", "routes", "clock", "description"}, path.name


@pytest.mark.parametrize("doc, message", [
    ({"maps": {}, "routes": 5}, '"routes" must be a list, got int'),
    ({"maps": {}, "clock": [1]}, '"clock" must be an object, got list'),
    ({"maps": {}, "clock": {"start_ns": 1 << 64}}, "clock.start_ns: expected an integer in "
                                                  "0..18446744073709551615"),
    ({"maps": {}, "clock": {"step_ns": 1.5}}, "clock.step_ns: expected an integer"),
    ({"maps": {}, "clock": {"step_ns": True}}, "clock.step_ns: expected an integer"),
    ({"maps": {}, "routes": [{"prefix": 5, "ifindex": 2}]}, r"routes\[0\].prefix: expected "
                                                            "a string"),
    ({"maps": {}, "routes": [{"prefix": "10.0.0.0/8", "ifindex": 1 << 40}]},
     r"routes\[0\].ifindex: expected an integer in 0..2147483647"),
    ({"maps": {}, "routes": [{"prefix": "10.0.0.0/8", "ifindex": 2, "mtu": 20}]},
     r"routes\[0\].mtu: expected 68..65535"),
])
def test_state_document_types_and_ranges_are_checked(doc, message):
    """Wrong types and values out of the kernel's range in a state document are one
    MapStateError naming the field, never a TypeError or a silently truncated value."""
    with pytest.raises(MapStateError, match=f"^s.json: {message}"):
        Scenario.from_dict(doc, "s.json")


def test_deeply_nested_state_file_is_one_error(tmp_path):
    """A state file nested 50,000 deep is one MapStateError, not a RecursionError."""
    path = tmp_path / "deep.json"
    path.write_text('{"maps": ' + "[" * 50_000 + "]" * 50_000 + "}")
    with pytest.raises(MapStateError, match="deep.json: not JSON we read: nested too deeply"):
        Scenario.load(path)


LOADER_SIZED_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");
SEC("xdp")
int xdp_sized(struct xdp_md *ctx)
{
	__u32 k = ctx->rx_queue_index;
	__u64 *v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_loader_sized_map_needs_its_size_from_the_state(tmp_path):
    """max_entries 0 in the ELF (the loader sizes it): without "max_entries" in the state
    the error names the object and the map; with it the VM and the kernel agree."""
    from ebpf.differential import size_maps
    from ebpf.errors import ElfError
    from ebpf.loader.elf import load
    from ebpf.maps.state import MapStateError
    from tests.conftest import compile_bpf

    obj_path = compile_bpf(tmp_path, LOADER_SIZED_SOURCE, "sized")
    obj = load(obj_path)
    with pytest.raises(ElfError, match=r"sized\.o: map 'counts' has max_entries 0 .*"
                                       r"\"max_entries\": \{\"counts\""):
        size_maps(obj, Scenario())
    with pytest.raises(MapStateError, match="no map named 'nope'"):
        size_maps(obj, Scenario.from_dict({"maps": {}, "max_entries": {"nope": 4}}))
    scenario = Scenario.from_dict({"maps": {}, "max_entries": {"counts": 8}})
    assert size_maps(obj, scenario).get_map("counts").max_entries == 8
    from ebpf.kernel.load import bpf_permitted

    if bpf_permitted()[0]:  # the kernel half needs bpf(2); the sizing above does not
        report = differential(str(obj_path), obj, PACKETS[:50], scenario)
        assert not report.mismatches and report.packets == 50
