"""Map lookups as tables, written map words as stateful units, map bindings."""

from __future__ import annotations

import json

import pytest

from tests.offload.lower import COMMON_H, map_c

MAPS = """
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u32);
} acts SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");
"""

HASH_ON_SADDR = MAPS + """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *iph = data + sizeof(*eth);
    if ((void *)(iph + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
    __u32 key = iph->saddr;
    __u32 *act = bpf_map_lookup_elem(&acts, &key);
    if (!act) return XDP_PASS;
    return *act;
}
"""


def scenario(tmp_path, doc: dict) -> str:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(doc))
    return str(path)


def ip(a: str) -> str:
    return bytes(int(x) for x in a.split(".")).hex()


def test_hash_lookup_is_an_exact_table_with_action_data(tmp_path):
    """The value of a hash hit is the table's action data; a miss passes; equal to the VM."""
    scen = scenario(tmp_path, {"maps": {"acts": [{"key": ip("10.0.0.1"), "value": "03000000"},
                                                 {"key": ip("10.0.0.3"), "value": "01000000"}]}})
    r = map_c(tmp_path, HASH_ON_SADDR, scenario=scen)
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    tables = [t for st in r.config["stages"] for t in st["tables"]]
    assert [(t["name"], t["kind"], len(t["action"])) for t in tables] == [("acts", "exact", 1)]
    assert r.config["maps"]["acts"]["tables"]
    assert set(r.equivalence["verdicts"]) >= {"2", "3"}


def test_array_counter_is_a_stateful_add_indexed_by_the_key(tmp_path):
    """`__sync_fetch_and_add(&hits[idx], 1)` on an array: a stateful add, no table (the
    bounds check of the index is a gateway), register slices covering the whole map."""
    r = map_c(tmp_path, MAPS + """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 15 > end) return XDP_PASS;
    __u32 idx = *(unsigned char *)(data + 14) & 7;
    __u64 *c = bpf_map_lookup_elem(&hits, &idx);
    if (c) __sync_fetch_and_add(c, 1);
    return XDP_PASS;
}
""")
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    units = [u for st in r.config["stages"] for u in st["stateful"]]
    assert [(u["op"], u["imm"], "container" in u["index"]) for u in units] == [("add", 1, True)]
    assert not any(st["tables"] for st in r.config["stages"])
    regs = r.config["maps"]["hits"]["registers"]
    assert sum(s["entries"] for s in regs) == 4


def test_plain_increment_becomes_one_read_modify_write(tmp_path):
    """`(*c)++` (load, add, store) is one stateful add, not a read and a write."""
    r = map_c(tmp_path, MAPS + """
SEC("xdp") int prog(struct xdp_md *ctx) {
    __u32 zero = 0;
    __u64 *c = bpf_map_lookup_elem(&hits, &zero);
    if (c) (*c)++;
    return XDP_PASS;
}
""")
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    units = [u["op"] for st in r.config["stages"] for u in st["stateful"]]
    assert units == ["add"]


def test_counters_on_one_path_take_one_unit_each(tmp_path):
    """Two constant indices updated on one path: each entry in its own unit's registers."""
    r = map_c(tmp_path, MAPS + """
static __always_inline void count(__u32 i) {
    __u64 *c = bpf_map_lookup_elem(&hits, &i);
    if (c) *c += 1;
}
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    count(0);
    if (data + 34 > end) { count(3); return XDP_PASS; }
    count(1);
    return XDP_DROP;
}
""")
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    units = [u for st in r.config["stages"] for u in st["stateful"]]
    assert len(units) == 3
    regs = r.config["maps"]["hits"]["registers"]
    homes = {(s["stage"], s["unit"]) for s in regs}
    assert len(homes) == 3
    assert {0, 1, 3} <= {s["first_entry"] for s in regs if s["entries"] == 1 and s["base"] == 0}


def test_two_different_operations_on_one_word_are_a_reason(tmp_path):
    """An add on one path and a store on another of the same word need two operations in
    one unit: the lowering says so and cuts the second."""
    r = map_c(tmp_path, MAPS + """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u32 zero = 0;
    __u64 *c = bpf_map_lookup_elem(&hits, &zero);
    if (!c) return XDP_PASS;
    if (data + 60 > end) __sync_fetch_and_add(c, 1);
    else *c = 7;
    return XDP_PASS;
}
""")
    assert any(x.kind == "lowering" and "different operations" in x.what for x in r.reasons)
    assert r.verdict in ("partial", "host-only")
    if r.equivalence is not None:
        assert r.equivalence["ok"]


@pytest.mark.parametrize("target", ["pipe", "rmt"])
def test_lookup_results_agree_on_both_pipelines(tmp_path, target):
    """The same hash program on pipe and rmt: both configurations equal the VM."""
    scen = scenario(tmp_path, {"maps": {"acts": [{"key": ip("10.0.0.1"), "value": "01000000"}]}})
    r = map_c(tmp_path, HASH_ON_SADDR, target=target, scenario=scen)
    assert r.verdict in ("full", "partial"), r.explanation
    assert r.equivalence["ok"]


def test_map_too_big_for_a_stage_is_cut_and_smaller_one_maps(tmp_path):
    """nat_rules (16384 entries) needs 32 SRAM blocks of one stage: a reason with the size
    that fits; with 4096 entries the whole program maps, checksum externs included."""
    from pathlib import Path

    from offload.mapper import map_program
    from tests.conftest import compile_bpf, corpus_object

    scen = str(Path(corpus_object("nat")).parents[2] / "examples" / "xdp" / "scenarios" /
               "nat.json")
    big = map_program(corpus_object("nat"), "pipe", equivalence=False)
    why = [x for x in big.reasons if "SRAM blocks in one stage" in x.what]
    assert why and "lower max_entries to about 8192" in why[0].fix
    src = (Path(scen).parents[1] / "nat.c").read_text()
    (tmp_path / "common.h").write_text(COMMON_H.read_text())
    small = compile_bpf(tmp_path, src.replace("__uint(max_entries, 16384);",
                                              "__uint(max_entries, 4096);"), "nat")
    r = map_program(small, "pipe", scenario=scen, time_limit_s=5)
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    assert any(e["kind"] == "checksum" for st in r.config["stages"] for e in st["externs"])
