"""ebpf.kernel against the running kernel: test runs, maps and state, globals, tail calls,
program info, verifier rejections, fd hygiene.

Every test that needs bpf(2) skips with bpf_permitted()'s one-line reason when it is not
permitted; the others (ctx packing, the denied path) run everywhere.
"""

from __future__ import annotations

import json
import os
import socket
import struct

import pytest
from elftools.elf.elffile import ELFFile
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

import ebpf.kernel.bridge
from ebpf.errors import KernelError
from ebpf.kernel.bridge import KernelObject
from ebpf.kernel.load import load_object
from ebpf.kernel.results import KernelCallError, KernelLoadError, XdpMd
from ebpf.maps.state import MapStateError
from tests.conftest import compile_bpf, corpus_object

needs_bpf = pytest.mark.kernel  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX = 0, 1, 2, 3
MAC_A, MAC_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"

BROKEN_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Reads the first packet byte without comparing against data_end. */
SEC("xdp")
int xdp_unchecked(struct xdp_md *ctx)
{
	return *(unsigned char *)(long)ctx->data;
}

char LICENSE[] SEC("license") = "GPL";
"""

CTX_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* What the program sees of the test run's struct xdp_md. */
SEC("xdp")
int xdp_ctx_echo(struct xdp_md *ctx)
{
	return ctx->ingress_ifindex * 1000 + ctx->rx_queue_index;
}

char LICENSE[] SEC("license") = "GPL";
"""

MAP_IN_MAP_SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps");

/* inner[0] of the map in outer slot 0; 99 when the slot is empty. */
SEC("xdp")
int xdp_mim(struct xdp_md *ctx)
{
	__u32 zero = 0, *v;
	void *in = bpf_map_lookup_elem(&outer, &zero);

	if (!in)
		return 99;
	v = bpf_map_lookup_elem(in, &zero);
	return v ? *v : 98;
}

char LICENSE[] SEC("license") = "GPL";
"""


def udp_packet(src="10.0.0.1", dst="10.0.0.2", sport=1234, dport=53, payload=b"x" * 18):
    return bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst)
                 / UDP(sport=sport, dport=dport) / payload)


def tcp_packet(src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=80):
    return bytes(Ether(src=MAC_A, dst=MAC_B) / IP(src=src, dst=dst)
                 / TCP(sport=sport, dport=dport, flags="S"))


def flow_key(saddr: str, daddr: str, sport: int, dport: int, proto: int) -> bytes:
    """firewall.c struct flow_key: be32 saddr, be32 daddr, be16 sport, be16 dport, u8 proto,
    u8 pad[3]."""
    return struct.pack("!4s4sHHB3x", socket.inet_aton(saddr), socket.inet_aton(daddr),
                       sport, dport, proto)


def lpm_key(prefixlen: int, addr: str) -> bytes:
    """firewall.c struct lpm_v4_key: host-order u32 prefixlen, be32 addr."""
    return struct.pack("<I", prefixlen) + socket.inet_aton(addr)


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def percpu_sum(entry: dict) -> int:
    return sum(int.from_bytes(bytes.fromhex(v), "little") for v in entry["values"])


def data_symbols(path: os.PathLike[str]) -> dict[str, tuple[int, int]]:
    """Global variables of an object: name -> (offset in its section, size), from .symtab."""
    out = {}
    with open(path, "rb") as f:
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            if sym["st_info"]["type"] == "STT_OBJECT":
                out[sym.name] = (sym["st_value"], sym["st_size"])
    return out


def field(data: bytes, symbols: dict[str, tuple[int, int]], name: str) -> int:
    offset, size = symbols[name]
    return int.from_bytes(data[offset: offset + size], "little")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- no kernel needed ------------------------------------------------------------------------
def test_xdp_md_packs_like_the_uapi_struct():
    """XdpMd packs to the 24-byte struct xdp_md and back; short input is zero-extended."""
    md = XdpMd(data=4, data_end=64, ingress_ifindex=1, rx_queue_index=2)
    raw = md.pack()
    assert len(raw) == XdpMd.SIZE == 24
    assert raw[12:16] == u32(1)
    assert XdpMd.unpack(raw) == md
    assert XdpMd.unpack(raw[:8]) == XdpMd(data=4, data_end=64)


def test_denied_bpf_raises_with_the_reason(monkeypatch):
    """Where bpf(2) is denied, KernelObject raises KernelError with bpf_permitted()'s reason."""
    monkeypatch.setattr(ebpf.kernel.bridge, "bpf_permitted", lambda: (False, "EPERM for the test"))
    with pytest.raises(KernelError, match=r"bpf\(2\) not usable: EPERM for the test$"):
        KernelObject(corpus_object("xdp_pass"))


# -- test runs -----------------------------------------------------------------------------
@needs_bpf
def test_xdp_drop_returns_drop():
    """xdp_drop returns XDP_DROP (1)."""
    with KernelObject(corpus_object("xdp_drop")) as k:
        assert k.test_run(udp_packet()).retval == XDP_DROP


@needs_bpf
def test_xdp_pass_returns_the_packet_unchanged():
    """xdp_pass returns XDP_PASS (2), data_out equals the packet, no metadata."""
    packet = udp_packet()
    with KernelObject(corpus_object("xdp_pass")) as k:
        result = k.test_run(packet)
        assert result.retval == XDP_PASS
        assert result.data_out == packet
        assert result.meta_out == b""


@needs_bpf
def test_xdp_tx_swaps_macs():
    """xdp_tx returns XDP_TX (3) with source and destination MACs swapped, rest untouched."""
    packet = udp_packet()
    with KernelObject(corpus_object("xdp_tx")) as k:
        result = k.test_run(packet)
    assert result.retval == XDP_TX
    out = Ether(result.data_out)
    assert (out.src, out.dst) == (MAC_B, MAC_A)
    assert result.data_out[12:] == packet[12:]


@needs_bpf
def test_repeat_reuses_one_buffer():
    """With repeat=2 xdp_tx swaps twice on the same buffer: the packet comes back as sent."""
    packet = udp_packet()
    with KernelObject(corpus_object("xdp_tx")) as k:
        result = k.test_run(packet, repeat=2)
    assert result.retval == XDP_TX
    assert result.data_out == packet


@needs_bpf
def test_short_packet_is_einval_with_the_rule():
    """A frame shorter than an Ethernet header is refused: EINVAL naming the 14-byte minimum."""
    with KernelObject(corpus_object("xdp_pass")) as k:
        with pytest.raises(KernelCallError, match=r"EINVAL.*at least 14") as info:
            k.test_run(bytes(13))
    assert info.value.errno == 22


@needs_bpf
def test_ctx_ingress_ifindex_queue_and_metadata(tmp_path):
    """ctx: default device is lo (1), a queue needs a device, unknown device ENODEV, meta split."""
    obj = compile_bpf(tmp_path, CTX_SOURCE, "ctx_echo")
    packet = udp_packet()
    with KernelObject(obj) as k:
        assert k.test_run(packet).retval == 1000
        assert k.test_run(packet, ingress_ifindex=1, rx_queue_index=0).retval == 1000
        with pytest.raises(KernelCallError, match="needs an ingress_ifindex"):
            k.test_run(packet, rx_queue_index=1)
        with pytest.raises(KernelCallError, match="ENODEV"):
            k.test_run(packet, ingress_ifindex=0x7FFFFFF0)
        with pytest.raises(KernelCallError, match="egress_ifindex must be 0"):
            k.test_run(packet, ctx=XdpMd(data_end=len(packet), egress_ifindex=1))
        result = k.test_run(packet, meta=b"meta")
        assert result.meta_out == b"meta"
        assert result.data_out == packet
        assert result.ctx_out == XdpMd(data=4, data_end=4 + len(packet))


# -- maps and state --------------------------------------------------------------------------
@needs_bpf
def test_firewall_rule_changes_verdict_and_counts():
    """firewall: a 5-tuple rule turns PASS into DROP; per-CPU verdict_stats sum to the runs."""
    packet = udp_packet(sport=1234, dport=53)
    with KernelObject(corpus_object("firewall")) as k:
        assert k.test_run(packet).retval == XDP_PASS
        k.update("flow_rules", flow_key("10.0.0.1", "10.0.0.2", 1234, 53, 17), u32(XDP_DROP))
        assert k.test_run(packet).retval == XDP_DROP
        assert k.test_run(udp_packet(sport=1235)).retval == XDP_PASS
        stats = k.dump_state(["verdict_stats"])["maps"]["verdict_stats"]
    assert [e["key"] for e in stats] == [u32(XDP_DROP).hex(), u32(XDP_PASS).hex()]
    by_action = {int.from_bytes(bytes.fromhex(e["key"]), "little"): percpu_sum(e) for e in stats}
    assert by_action == {XDP_DROP: 1, XDP_PASS: 2}


@needs_bpf
def test_firewall_blocked_prefix_drops():
    """firewall: a /32 in the blocked_src LPM trie drops its source; lookup and delete work."""
    key = lpm_key(32, "10.0.0.1")
    with KernelObject(corpus_object("firewall")) as k:
        k.update("blocked_src", key, u32(7))
        assert k.lookup("blocked_src", key) == u32(7)
        assert k.test_run(udp_packet()).retval == XDP_DROP
        assert k.delete("blocked_src", key) is True
        assert k.delete("blocked_src", key) is False
        assert k.lookup("blocked_src", key) is None
        assert k.test_run(udp_packet()).retval == XDP_PASS


@needs_bpf
def test_percpu_update_and_lookup():
    """A per-CPU map takes one value for every CPU or a list, and reads back as a list."""
    with KernelObject(corpus_object("firewall")) as k:
        ncpu = k.num_possible_cpus
        k.update("verdict_stats", u32(3), u64(5))
        assert k.lookup("verdict_stats", u32(3)) == [u64(5)] * ncpu
        values = [u64(i + 1) for i in range(ncpu)]
        k.update("verdict_stats", u32(4), values)
        assert k.lookup("verdict_stats", u32(4)) == values
        with pytest.raises(KernelError, match="one entry per possible CPU"):
            k.update("verdict_stats", u32(4), values + [u64(0)])


@needs_bpf
def test_state_round_trip_through_the_kernel(tmp_path):
    """load_state (from a JSON file) then dump_state gives the same entries back."""
    with KernelObject(corpus_object("firewall")) as k:
        ncpu = k.num_possible_cpus
        doc = {"maps": {
            "flow_rules": sorted([
                {"key": flow_key("10.0.0.1", "10.0.0.2", 1234, 53, 17).hex(),
                 "value": u32(XDP_DROP).hex()},
                {"key": flow_key("192.168.1.1", "10.0.0.2", 0, 0, 1).hex(),
                 "value": u32(XDP_TX).hex()},
            ], key=lambda e: e["key"]),
            "blocked_src": sorted([
                {"key": lpm_key(24, "172.16.5.0").hex(), "value": u32(1).hex()},
                {"key": lpm_key(32, "10.9.9.9").hex(), "value": u32(2).hex()},
            ], key=lambda e: e["key"]),
            "verdict_stats": [
                {"key": u32(i).hex(), "values": [u64(10 * i + c).hex() for c in range(ncpu)]}
                for i in range(5)
            ],
        }}
        path = tmp_path / "state.json"
        path.write_text(json.dumps(doc))
        k.load_state(path)
        assert k.dump_state() == doc
        k.load_state({"maps": {"flow_rules": []}})
        dumped = k.dump_state()["maps"]
        assert dumped["flow_rules"] == []
        assert dumped["blocked_src"] == doc["maps"]["blocked_src"]


@needs_bpf
def test_bad_state_changes_nothing():
    """A document with a wrong size or an unknown map is refused before any map changes."""
    with KernelObject(corpus_object("firewall")) as k:
        k.update("flow_rules", flow_key("1.2.3.4", "5.6.7.8", 1, 2, 6), u32(1))
        before = k.dump_state()
        with pytest.raises(MapStateError, match=r"map 'nope': no such map"):
            k.load_state({"maps": {"flow_rules": [], "nope": []}})
        with pytest.raises(MapStateError, match=r"value is 2 bytes, expected 4"):
            k.load_state({"maps": {"flow_rules": [], "blocked_src": [
                {"key": lpm_key(8, "10.0.0.0").hex(), "value": "0000"}]}})
        assert k.dump_state() == before


@needs_bpf
def test_map_in_map_slots_set_by_name(tmp_path):
    """Map-in-map slots are set and dumped by inner map name; the program reads through them."""
    obj = compile_bpf(tmp_path, MAP_IN_MAP_SOURCE, "map_in_map")
    with KernelObject(obj) as k:
        assert k.test_run(udp_packet()).retval == 99
        doc = {"maps": {
            "inner_a": [{"key": u32(i).hex(), "value": u32(7 if i == 0 else 0).hex()}
                        for i in range(4)],
            "outer": [{"key": u32(0).hex(), "inner": "inner_a"}],
            "outer_hash": [{"key": u32(5).hex(), "inner": "inner_b"}],
        }}
        k.load_state(doc)
        assert k.test_run(udp_packet()).retval == 7
        doc["maps"]["inner_a"] = doc["maps"]["inner_a"][:1]  # zero entries are not dumped
        assert k.dump_state(["inner_a", "outer", "outer_hash"]) == doc
        k.update("outer", u32(0), "inner_b")
        assert k.lookup("outer", u32(0)) == "inner_b"
        assert k.test_run(udp_packet()).retval == 0
        with pytest.raises(MapStateError, match="inner map 'nope' does not exist"):
            k.load_state({"maps": {"outer": [{"key": u32(1).hex(), "inner": "nope"}]}})


# -- global data -----------------------------------------------------------------------------
@needs_bpf
def test_rodata_set_before_load_through_state():
    """globals: a .rodata port set via state before load drops that port; frozen after load."""
    obj = corpus_object("globals")
    syms = data_symbols(obj)
    packet = udp_packet(dport=53)
    with KernelObject(obj) as k:
        entries = k.dump_state(["globals.rodata"])["maps"]["globals.rodata"]
        assert [e["key"] for e in entries] == [u32(0).hex()]
        rodata = bytearray.fromhex(entries[0]["value"])
        assert [field(rodata, syms, n) for n in ("cfg_enabled", "cfg_blocked_port",
                                                 "cfg_min_len")] == [1, 23, 60]
        assert k.test_run(packet).retval == XDP_PASS
    offset, size = syms["cfg_blocked_port"]
    rodata[offset: offset + size] = (53).to_bytes(size, "little")
    state = {"maps": {"globals.rodata": [{"key": u32(0).hex(), "value": rodata.hex()}]}}
    with KernelObject(obj, state=state) as k:
        assert k.dump_state(["globals.rodata"]) == state
        assert k.test_run(packet).retval == XDP_DROP
        assert k.test_run(udp_packet(dport=23)).retval == XDP_PASS
        bss = bytes.fromhex(k.dump_state(["globals.bss"])["maps"]["globals.bss"][0]["value"])
        assert (field(bss, syms, "pkt_count"), field(bss, syms, "drop_count")) == (2, 1)
        with pytest.raises(MapStateError, match="frozen after load"):
            k.load_state(state)


# -- tail calls ------------------------------------------------------------------------------
@needs_bpf
def test_tail_call_through_prog_array_set_by_name():
    """tail_call: jmp_table set by name; TCP reaches xdp_tcp (proto_hits), empty slots pass."""
    state = {"maps": {"jmp_table": [{"key": u32(6).hex(), "prog": "xdp_tcp"}]}}
    with KernelObject(corpus_object("tail_call"), state=state) as k:
        assert k.dump_state(["jmp_table"]) == state
        assert k.test_run(tcp_packet(dport=80), "xdp_dispatch").retval == XDP_PASS
        assert k.test_run(tcp_packet(dport=23), "xdp_dispatch").retval == XDP_DROP
        assert k.test_run(udp_packet(sport=19), "xdp_dispatch").retval == XDP_PASS
        assert k.lookup("proto_hits", u32(6)) == u64(2)
        assert k.lookup("proto_hits", u32(17)) == u64(0)
        k.update("jmp_table", u32(17), "xdp_udp")
        assert k.lookup("jmp_table", u32(17)) == "xdp_udp"
        assert k.test_run(udp_packet(sport=19), "xdp_dispatch").retval == XDP_DROP
        assert k.lookup("proto_hits", u32(17)) == u64(1)


# -- timing and program info ----------------------------------------------------------------
@needs_bpf
def test_repeat_timing_and_prog_info():
    """time_ns_per_packet is positive; prog_info has JIT code and xlated length 8 * insns."""
    with KernelObject(corpus_object("firewall")) as k:
        assert k.time_ns_per_packet(udp_packet(), repeat=1000) > 0
        info = k.prog_info("xdp_firewall")
        assert info.name == "xdp_firewall" and info.id > 0
        with open("/proc/sys/net/core/bpf_jit_enable") as f:
            if f.read().strip() == "0":
                pytest.skip("the BPF JIT is off (net.core.bpf_jit_enable = 0)")
        assert info.jited_prog_len > 0
        assert info.insn_cnt > 0
        assert info.xlated_prog_len == 8 * info.insn_cnt
        assert len(k.xlated_insns("xdp_firewall")) == info.xlated_prog_len
        assert info.verified_insns > 0


# -- failures and hygiene -------------------------------------------------------------------
@needs_bpf
def test_verifier_rejection_raises_with_log(tmp_path):
    """A verifier rejection raises a one-line KernelLoadError with the full log in .log."""
    obj = compile_bpf(tmp_path, BROKEN_SOURCE, "broken")
    with pytest.raises(KernelError, match=r"program 'xdp_unchecked' rejected by the verifier: "
                       ) as info:
        KernelObject(obj)
    err = info.value
    assert isinstance(err, KernelLoadError)
    assert "\n" not in str(err)
    assert str(err).startswith(f"{obj}: ")
    assert "invalid access to packet" in err.log
    assert err.program == "xdp_unchecked"


@needs_bpf
def test_closed_object_refuses_work():
    """After close() every operation raises KernelError; close() twice is harmless."""
    k = KernelObject(corpus_object("xdp_pass"))
    k.close()
    k.close()
    assert k.closed
    with pytest.raises(KernelError, match="closed"):
        k.test_run(udp_packet())


@needs_bpf
def test_no_fd_leaks():
    """A load / test_run / map / info / close cycle, and a failed load, leave no fd open."""

    def cycle() -> None:
        with KernelObject(corpus_object("tail_call")) as k:
            k.test_run(tcp_packet(), "xdp_dispatch")
            k.dump_state()
            k.prog_info("xdp_tcp")
            k.xlated_insns("xdp_tcp")
        with pytest.raises(MapStateError):
            KernelObject(corpus_object("tail_call"), state={"maps": {"nope": []}})
        load_object(corpus_object("firewall"))

    cycle()  # warm-up: libbpf's one-time feature probes
    before = open_fds()
    for _ in range(3):
        cycle()
    assert open_fds() == before


@needs_bpf
def test_time_fresh_runs_every_time_on_the_input():
    """time_fresh: each run truncates a fresh 200 B copy (adjust_tail counts 4 truncations,
    where repeat=4 on one buffer counts 1), the first run's result is returned, and fewer
    than one run is refused."""
    packet = bytes(14) + bytes(186)
    with KernelObject(corpus_object("adjust_tail")) as k:
        res, ns = k.time_fresh(packet, 4)
        assert len(res.data_out) == 128 and ns >= 0
        (value,) = [v for _, v in k.items("trunc_stats")]
        assert int.from_bytes(value, "little") == 4
        k.test_run(packet, repeat=4)
        (value,) = [v for _, v in k.items("trunc_stats")]
        assert int.from_bytes(value, "little") == 5
        with pytest.raises(KernelError, match="runs must be at least 1, got 0"):
            k.time_fresh(packet, 0)
