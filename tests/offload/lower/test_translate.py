"""Translation of instructions: bounds checks, packet fields, stores, pointers, ALU, calls."""

from __future__ import annotations

from hw.pipeline import load_config
from tests.offload.lower import map_c

DROP_SHORT = """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 60 > end) return XDP_DROP;
    return XDP_PASS;
}
"""


def ops_of(config: dict) -> list[dict]:
    return [op for st in config["stages"] for op in st["ops"]]


def test_bounds_check_is_a_data_len_gateway(tmp_path):
    """`data + 60 > data_end` is one gateway on data_len (56) < 60; PASS is the default."""
    r = map_c(tmp_path, DROP_SHORT)
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    cfg = r.config
    default = cfg["deparser"]["default_verdict"]
    assert default in (1, 2)
    gws = [g for st in cfg["stages"] for g in st["gateways"]]
    assert [(g["a"], g["cmp"], g["imm"]) for g in gws] == [(56, "ult", 60)]
    assert [(o["slot"], o["imm"]) for o in ops_of(cfg)] == [(51, 3 - default)]
    assert r.stages == 1


def test_field_built_from_bytes_is_one_parser_extract(tmp_path):
    """`p[12] | p[13] << 8` compared with a constant needs no ALU op: an extract + gateway."""
    r = map_c(tmp_path, """
SEC("xdp") int prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    if ((void *)(p + 14) > end) return XDP_DROP;
    unsigned int t = p[12] | (p[13] << 8);
    if (t == 0x0008) return XDP_TX;
    return XDP_PASS;
}
""")
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    assert {"offset": 12, "size": 2} in [{k: e[k] for k in ("offset", "size")}
                                         for e in r.config["parser"]["extracts"]]
    assert all(o["slot"] == 51 for o in ops_of(r.config))


def test_mac_swap_stores_after_the_loads_of_the_original_bytes(tmp_path):
    """Swapping the MACs: loads are parser extracts of the original packet, the 12 stores
    go at most 4 per stage, the output bytes match the VM's."""
    r = map_c(tmp_path, """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end) return XDP_DROP;
    swap_macs(eth);
    return XDP_TX;
}
""")
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    for st in r.config["stages"]:
        assert sum(o["op"] in ("wst", "wstv") for o in st["ops"]) <= 4
    assert not any(o["op"] in ("wld", "wldv") for o in ops_of(r.config))


def test_variable_offset_after_vlan_tags_matches_the_vm(tmp_path):
    """The IPv4 header after 0-2 VLAN tags is read at a variable offset (wldv) and the
    protocol decides; truncated frames take every bounds check."""
    r = map_c(tmp_path, """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct hdr_cursor cur = { .pos = data };
    struct ethhdr *eth; struct iphdr *iph; int vlans;
    if (parse_ethhdr(&cur, end, &eth, &vlans) != bpf_htons(ETH_P_IP)) return XDP_PASS;
    int proto = parse_iphdr(&cur, end, &iph);
    if (proto == IPPROTO_UDP) return XDP_DROP;
    if (proto < 0) return XDP_ABORTED;
    return XDP_PASS;
}
""")
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    assert any(o["op"] == "wldv" for o in ops_of(r.config))
    assert set(r.equivalence["verdicts"]) >= {"0", "1", "2"}


def test_store_then_load_of_the_same_bytes_is_forwarded(tmp_path):
    """A field written then read back gives the written value without a window load."""
    r = map_c(tmp_path, """
SEC("xdp") int prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    if ((void *)(p + 20) > end) return XDP_PASS;
    p[14] = 0x45;
    if (*(volatile unsigned char *)(p + 14) == 0x45) p[15] = p[16];
    return XDP_TX;
}
""")
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    assert not any(o["op"] in ("wld", "wldv") for o in ops_of(r.config))


def test_helper_without_equivalent_is_cut_before_side_effects(tmp_path):
    """bpf_ktime_get_ns has no provably equal pipeline value: its path is cut (partial)."""
    r = map_c(tmp_path, """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 15 > end) return XDP_PASS;
    if (*(unsigned char *)(data + 14) == 7 && (bpf_ktime_get_ns() & 1)) return XDP_DROP;
    return XDP_PASS;
}
""")
    assert r.verdict == "partial", r.explanation
    assert any(x.kind == "lowering" and "ktime_get_ns" in x.what for x in r.reasons)
    assert r.equivalence["ok"]
    assert 0 < r.punted_fraction < 1


def test_cut_after_a_side_effect_makes_it_host_only(tmp_path):
    """A packet write before a construct the lowering cannot do: no legal cut."""
    r = map_c(tmp_path, """
SEC("xdp") int prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    if ((void *)(p + 15) > end) return XDP_PASS;
    p[14] = 1;
    if (bpf_ktime_get_ns() & 1) return XDP_DROP;
    return XDP_PASS;
}
""")
    assert r.verdict == "host-only"
    assert "runs before the infeasible construct" in r.explanation
    assert r.config is None


def test_subprogram_is_inlined_and_loop_unrolled(tmp_path):
    """A noinline sub-program with a counted loop: inlined per call, unrolled, equal."""
    r = map_c(tmp_path, """
static __attribute__((noinline)) int sum4(unsigned char *p, void *end) {
    int s = 0;
#pragma clang loop unroll(disable)
    for (int i = 0; i < 4; i++) {
        if ((void *)(p + i + 1) > end) return -1;
        s += p[i];
    }
    return s;
}
SEC("xdp") int prog(struct xdp_md *ctx) {
    unsigned char *p = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    int s = sum4(p, end);
    if (s < 0) return XDP_ABORTED;
    return (s & 1) ? XDP_DROP : XDP_PASS;
}
""")
    assert r.verdict == "full", [x.what for x in r.reasons]
    assert r.equivalence["ok"]
    assert set(r.equivalence["verdicts"]) >= {"1", "2"}
    load_config(r.config)


def test_bit_test_of_packet_pointers_is_a_clean_cut(tmp_path):
    """A JSET between two packet pointers (the verifier allows pointer tests; the lowering
    has no such gateway) is a reason naming the construct, not a KeyError."""
    r = map_c(tmp_path, """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 14 > end) return XDP_DROP;
    /* if r3 & r2 goto +1 (JSET, X): clang's assembler has no syntax for it */
    asm volatile("r3 = %[a]\\n\\tr2 = %[b]\\n\\tr0 = 2\\n\\t.quad 0x000000000001234d\\n\\t"
                 "r0 = 3\\n\\texit" :: [a] "r"(data + 14), [b] "r"(end) : "r0", "r2", "r3");
    return XDP_PASS;
}
""")
    assert r.verdict == "partial", r.explanation  # the bounds check stays on the NIC
    assert any("bit test" in reason.what for reason in r.reasons), r.reasons


def test_map_value_load_past_value_size_is_a_clean_cut(tmp_path):
    """A load of bytes 8..11 of a 4-byte map value (the kernel verifier refuses it; our
    check has no such rule) is a host cut naming the access, not an IndexError."""
    r = map_c(tmp_path, """
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} small SEC(".maps");

SEC("xdp") int prog(struct xdp_md *ctx) {
    __u32 k = 0;
    __u32 *v = bpf_map_lookup_elem(&small, &k);
    if (!v) return XDP_PASS;
    return v[2] == 7 ? XDP_DROP : XDP_PASS;
}
""")
    assert r.verdict == "host-only", r.explanation
    assert any("past" in reason.what for reason in r.reasons), r.reasons
