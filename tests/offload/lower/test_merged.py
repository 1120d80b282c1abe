"""offload.lower.merged: one lookup call on several maps (clang's merged tails) lowers to one
table per map, selected by the edges; the equivalence run (VM oracle) holds with both maps hit."""

from __future__ import annotations

import json

from offload.lower.ir import Const, Lookup, MapPtr, MapVal, Stack
from offload.lower.merged import along, leg_guard, map_leaves
from offload.lower.state import Phi, is_merged_value
from sim.packets import random_packets
from tests.offload.lower import COMMON_H, PRELUDE, map_c
from tests.rtl.test_rtl_units import needs_sim

HEADER = r"""
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	__type(key, __u16); __type(value, VALUE); } tcp_ports SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	__type(key, __u16); __type(value, VALUE); } udp_ports SEC(".maps");

static __always_inline int parse(struct xdp_md *ctx, struct iphdr **ipp, __u16 *dport)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return 0;
	__u16 *ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return 0;
	*ipp = ip;
	*dport = ports[1];
	return 1;
}
"""

# clang merges the two lookups into one call: r1 a phi of the two map pointers
PORT_FILTER = r"""
struct rule { __u32 action; __u32 mark; };
#define VALUE struct rule
""" + HEADER + r"""
SEC("xdp") int prog(struct xdp_md *ctx)
{
	struct iphdr *ip;
	__u16 dport;
	if (!parse(ctx, &ip, &dport))
		return XDP_PASS;
	struct rule *r;
	if (ip->protocol == IPPROTO_TCP)
		r = bpf_map_lookup_elem(&tcp_ports, &dport);
	else if (ip->protocol == IPPROTO_UDP)
		r = bpf_map_lookup_elem(&udp_ports, &dport);
	else
		return XDP_PASS;
	if (!r)
		return XDP_PASS;
	if (r->mark)
		ip->tos = r->mark;
	return r->action == 1 ? XDP_DROP : r->action == 3 ? XDP_TX : XDP_PASS;
}
"""

# two calls (the asm keeps clang from merging them) whose unchecked results meet in a phi
TWO_CALLS = r"""
#define VALUE __u32
""" + HEADER + r"""
SEC("xdp") int prog(struct xdp_md *ctx)
{
	struct iphdr *ip;
	__u16 dport;
	if (!parse(ctx, &ip, &dport))
		return XDP_PASS;
	__u32 *action;
	if (ip->protocol == IPPROTO_TCP) {
		action = bpf_map_lookup_elem(&tcp_ports, &dport);
		asm volatile("%0 = %0" : "+r"(action));
	} else {
		action = bpf_map_lookup_elem(&udp_ports, &dport);
		asm volatile("%0 = %0\n\t%0 = %0" : "+r"(action));
	}
	if (!action)
		return XDP_ABORTED;
	return *action == 1 ? XDP_DROP : XDP_PASS;
}
"""

PACKETS = random_packets(2000, seed=1)


def _ports(packets: list[bytes]) -> dict[int, dict[bytes, int]]:
    """Destination ports (as the packet holds them) of option-less IPv4 TCP / UDP packets."""
    out: dict[int, dict[bytes, int]] = {6: {}, 17: {}}
    for p in packets:
        if len(p) >= 38 and p[12:14] == b"\x08\x00" and p[14] & 15 == 5 and p[23] in out:
            out[p[23]][p[36:38]] = out[p[23]].get(p[36:38], 0) + 1
    return out


def _rules(tmp_path, value_size: int, packets: list[bytes] = PACKETS,
           ) -> tuple[str, dict[int, dict[bytes, tuple[int, int]]]]:
    """A state file with 30 rules per map on ports the trace uses: action i % 4, mark."""
    rules: dict[int, dict[bytes, tuple[int, int]]] = {}
    maps = {}
    for proto, name in ((6, "tcp_ports"), (17, "udp_ports")):
        rules[proto] = {k: (i % 4, (i * 7) % 3) for i, k in
                        enumerate(sorted(_ports(packets)[proto])[:30])}
        maps[name] = [{"key": k.hex(), "value": (a.to_bytes(4, "little") + m.to_bytes(
            4, "little"))[:value_size].hex()} for k, (a, m) in rules[proto].items()]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"maps": maps}))
    return str(path), rules


def _expected_drops(rules: dict) -> dict[int, int]:
    """Packets each map's rules drop (action 1), counted from the packets themselves."""
    ports = _ports(PACKETS)
    return {proto: sum(n for k, n in ports[proto].items()
                       if rules[proto].get(k, (0, 0))[0] == 1) for proto in (6, 17)}


def test_port_filter_maps_with_a_table_per_merged_map(tmp_path):
    """The merged call is one table per map, no cut; the equivalence run (pipeline model vs
    the VM, packets and verdicts) holds on a trace whose packets hit rules of both maps."""
    scenario, rules = _rules(tmp_path, 8)
    r = map_c(tmp_path, PORT_FILTER, packets=PACKETS, scenario=scenario)
    assert r.verdict == "full", (r.explanation, r.reasons)
    assert r.equivalence["ok"] and r.equivalence["punted"] == r.equivalence["punt_reasons"].get(
        "3", 0)  # only the pipeline's own window punts, no cut
    drops = _expected_drops(rules)
    assert drops[6] > 0 and drops[17] > 0
    assert r.equivalence["verdicts"]["1"] == drops[6] + drops[17]
    tables = {t["name"] for t in _tables(r.config)}
    assert {"tcp_ports", "udp_ports"} <= tables


def _tables(config: dict) -> list[dict]:
    return [t for st in config["stages"] for t in st.get("tables", [])]


def test_unchecked_lookups_meeting_in_a_phi_are_checked_by_their_hits(tmp_path):
    """Two calls whose results meet unchecked: the null check is the OR of (edge AND hit),
    not "never NULL" (a miss returns XDP_ABORTED, which "never NULL" would turn into a read
    of the missing value); before, the load through the phi was a cut."""
    scenario, rules = _rules(tmp_path, 4)
    r = map_c(tmp_path, TWO_CALLS, packets=PACKETS, scenario=scenario)
    assert r.verdict == "full", (r.explanation, r.reasons)
    assert r.equivalence["ok"]
    want = {0: 0, 1: 0}  # every other protocol looks in udp_ports; a miss is XDP_ABORTED
    for p in PACKETS:
        if len(p) >= 38 and p[12:14] == b"\x08\x00" and p[14] & 15 == 5:
            rule = rules[6 if p[23] == 6 else 17].get(p[36:38])
            if rule is None:
                want[0] += 1
            elif rule[0] == 1:
                want[1] += 1
    assert (r.equivalence["verdicts"]["0"], r.equivalence["verdicts"]["1"]) == \
        (want[0], want[1])
    assert want[0] > 0 and want[1] > 0


def test_merged_pointer_store_is_a_clean_cut(tmp_path):
    """A store through merged value pointers is a lowering reason, and the rest still maps."""
    body = PORT_FILTER.replace("ip->tos = r->mark;", "r->mark = 0;")
    scenario, _ = _rules(tmp_path, 8)
    r = map_c(tmp_path, body, packets=PACKETS, scenario=scenario)
    assert any(x.kind == "lowering" and "merged" in x.what for x in r.reasons), r.reasons
    assert r.equivalence["ok"]


def test_leaf_helpers_follow_the_edges():
    """along() resolves phis at a leaf's merges; map_leaves keeps the phi's shape; the leg
    guard of a nested leaf is its last edge (phi) and the earlier ones exactly."""
    inner = Phi(5, ((3, MapPtr(0)), (4, MapPtr(1))))
    outer = Phi(7, ((5, inner), (6, MapPtr(2))))
    keys = Phi(7, ((5, Stack(0, -2)), (6, Stack(0, -4))))
    paths = [p for p, _ in outer.leaves()]
    assert [along(keys, p) for p in paths] == [Stack(0, -2), Stack(0, -2), Stack(0, -4)]
    doubled = map_leaves(outer, lambda p, leaf: Const(leaf.map * 2))
    assert [s for _, s in doubled.leaves()] == [Const(0), Const(2), Const(4)]
    assert leg_guard(paths[0]) == ("and", (("phi", 5, 7), ("edge", 3, 5)))
    assert leg_guard(paths[2]) == ("phi", 6, 7)
    assert not is_merged_value(outer)


def test_one_lookup_merged_with_null_is_a_merged_value():
    """A lookup's pointer merged with NULL needs its hit (not one lookup's plain check)."""
    lk, other = Lookup(0, 0, 1, 8, None), Lookup(1, 1, 2, 9, None)
    assert is_merged_value(Phi(3, ((1, MapVal(lk)), (2, Const(0)))))
    assert is_merged_value(Phi(3, ((1, MapVal(lk)), (2, MapVal(other)))))
    assert not is_merged_value(Phi(3, ((1, MapVal(lk)), (2, MapVal(lk, 0)))))


@needs_sim
def test_port_filter_in_the_rtl(tmp_path):
    """The RTL against the pipeline model (bytes, registers, timing) and the model against
    the VM, on packets that hit rules of both merged maps: no difference."""
    from offload.cosim import cosim
    from tests.conftest import compile_bpf

    (tmp_path / "common.h").write_text(COMMON_H.read_text())
    obj = compile_bpf(tmp_path, PRELUDE + PORT_FILTER, "port_filter")
    scenario, rules = _rules(tmp_path, 8, random_packets(60, seed=1))
    assert all(rules[p] for p in (6, 17))
    res = cosim(obj, "prog", packets=60, seed=1, scenario=scenario, workdir=tmp_path / "w",
                quiet=True)
    assert res.verdict == "full" and res.table_hits > 0
    assert res.mismatches == 0 and res.output_mismatches == 0 and res.state_mismatches == 0
    assert res.vm_equivalence == "ok", res.differences


# an array and a hash map merged: the array leaf's null check is its index in range
ARRAY_AND_HASH = r"""
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16);
	__type(key, __u32); __type(value, __u32); } tcp_cfg SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	__type(key, __u32); __type(value, __u32); } udp_cfg SEC(".maps");

SEC("xdp") int prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__u32 idx = ip->ttl & 31;
	__u32 *v;
	if (ip->protocol == IPPROTO_TCP)
		v = bpf_map_lookup_elem(&tcp_cfg, &idx);
	else if (ip->protocol == IPPROTO_UDP)
		v = bpf_map_lookup_elem(&udp_cfg, &idx);
	else
		return XDP_PASS;
	if (!v)
		return XDP_ABORTED;
	return *v == 1 ? XDP_DROP : XDP_PASS;
}
"""


def test_array_and_hash_merged(tmp_path):
    """An array leaf (index < max_entries) and a hash leaf (its hit) in one null check: the
    verdicts equal the VM's and the counts the packets give (index >= 16 or a missing key:
    XDP_ABORTED)."""
    tcp = {i: i % 3 for i in range(16)}
    udp = {i: i % 2 for i in range(0, 32, 3)}
    state = {"maps": {name: [{"key": k.to_bytes(4, "little").hex(),
                              "value": v.to_bytes(4, "little").hex()} for k, v in d.items()]
                      for name, d in (("tcp_cfg", tcp), ("udp_cfg", udp))}}
    (tmp_path / "cfg.json").write_text(json.dumps(state))
    r = map_c(tmp_path, ARRAY_AND_HASH, packets=PACKETS, scenario=str(tmp_path / "cfg.json"))
    assert r.verdict == "full" and r.equivalence["ok"], (r.explanation, r.reasons)
    want = {0: 0, 1: 0}
    for p in PACKETS:
        if len(p) >= 34 and p[12:14] == b"\x08\x00" and p[23] in (6, 17):
            v = (tcp if p[23] == 6 else udp).get(p[22] & 31)
            if v is None:
                want[0] += 1
            elif v == 1:
                want[1] += 1
    assert r.equivalence["verdicts"].get("0", 0) == want[0] > 0
    assert r.equivalence["verdicts"].get("1", 0) == want[1] > 0


# different keys: r1 a phi of two maps and r2 a phi of two stack slots
TWO_KEYS = PORT_FILTER.replace(
    "__type(key, __u16); __type(value, VALUE); } udp_ports",
    "__type(key, __u32); __type(value, VALUE); } udp_ports").replace(
    "r = bpf_map_lookup_elem(&udp_ports, &dport);",
    "r = bpf_map_lookup_elem(&udp_ports, &ukey);").replace(
    "struct rule *r;", "struct rule *r;\n\t__u32 ukey = dport;")


def test_merged_key_pointers_follow_each_leafs_edges(tmp_path):
    """With a key per map, r2 is a phi of two stack slots: each leaf's table takes the key
    its edges lead to, and the check leaves that call to the lowering (no `variable_stack`)."""
    scenario, rules = _rules(tmp_path, 8)
    doc = json.loads((tmp_path / "rules.json").read_text())
    for entry in doc["maps"]["udp_ports"]:  # the UDP key is the port widened to 4 bytes
        entry["key"] += "0000"
    (tmp_path / "rules.json").write_text(json.dumps(doc))
    r = map_c(tmp_path, TWO_KEYS, packets=PACKETS, scenario=scenario)
    assert r.verdict == "full", (r.explanation, r.reasons)
    drops = _expected_drops(rules)
    assert r.equivalence["ok"] and r.equivalence["verdicts"]["1"] == drops[6] + drops[17]


# one call, its key at a stack slot chosen by packet data (not by a phi of edges)
INDEXED_KEY = r"""
#define VALUE struct rule
struct rule { __u32 action; __u32 mark; };
""" + HEADER + r"""
SEC("xdp") int prog(struct xdp_md *ctx)
{
	struct iphdr *ip;
	__u16 dport;
	if (!parse(ctx, &ip, &dport))
		return XDP_PASS;
	__u16 keys[2] = { dport, dport ^ 0x100 };
	struct rule *r = bpf_map_lookup_elem(&tcp_ports, &keys[ip->ttl & 1]);
	if (!r)
		return XDP_PASS;
	return r->action == 1 ? XDP_DROP : XDP_PASS;
}
"""


def test_a_key_slot_chosen_by_packet_data_is_never_silently_lowered(tmp_path):
    """The check leaves a helper key at a few stack slots to the lowering; a slot chosen by
    packet data (no edge names it) is then cut by the lowering at that call, never lowered."""
    scenario, _ = _rules(tmp_path, 8)
    r = map_c(tmp_path, INDEXED_KEY, packets=PACKETS, scenario=scenario)
    assert r.equivalence["ok"], r.equivalence
    assert r.verdict == "partial", (r.verdict, r.reasons)
    cut = [x for x in r.reasons if x.kind == "lowering"]
    assert cut and "&keys[ip->ttl & 1]" in cut[0].source, r.reasons
