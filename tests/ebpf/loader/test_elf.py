"""The ELF loader against independent oracles: llvm-objdump's symbol table and libbpf."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ebpf.code.isa import CallKind, Kind, PseudoSrc
from ebpf.errors import ElfError
from ebpf.kernel.load import load_object
from ebpf.loader.elf import _internal_map_name, load
from tests.conftest import compile_bpf, corpus_object


def objdump_functions(path: Path) -> dict[str, tuple[str, int]]:
    """FUNC symbols from `llvm-objdump -t`: name -> (section, size in slots)."""
    text = subprocess.run(["llvm-objdump", "-t", str(path)], capture_output=True, text=True,
                          check=True).stdout
    out = {}
    for line in text.splitlines():
        m = re.match(r"[0-9a-f]{16} (.{7}) (\S+)\s+([0-9a-f]{16}) (\S+)$", line)
        if m and "F" in m.group(1):
            out[m.group(4)] = (m.group(2), int(m.group(3), 16) // 8)
    return out


def test_programs_match_objdump_symbols(corpus_obj):
    """Every global function in a program section is a program with its objdump slot count."""
    obj = load(corpus_obj)
    funcs = objdump_functions(corpus_obj)
    progs = {p.name: p for p in obj.programs}
    expected = {name for name, (sec, _) in funcs.items() if sec != ".text"}
    assert set(progs) == expected
    for name, prog in progs.items():
        assert (prog.section, prog.own_slots) == funcs[name]


def test_maps_match_libbpf(corpus_obj):
    """Map names, types, sizes, max_entries and flags equal what libbpf reads from the object."""
    ours = {m.name: m for m in load(corpus_obj).maps}
    theirs = load_object(corpus_obj, open_only=True).maps
    assert set(ours) == {m["name"] for m in theirs}
    for m in theirs:
        mine = ours[m["name"]]
        assert (mine.type, mine.key_size, mine.value_size, mine.max_entries, mine.flags) == (
            m["type_id"], m["key_size"], m["value_size"], m["max_entries"], m["map_flags"]
        ), m["name"]


def test_map_references_are_map_indices():
    """lddw of a map becomes MAP_IDX with the map's index; global data MAP_IDX_VALUE."""
    obj = load(corpus_object("globals"))
    prog = obj.programs[0]
    kinds = {(i.src, obj.maps[i.imm].section) for i in prog.insns
             if i.kind is Kind.LDDW and i.src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_IDX_VALUE)}
    assert (PseudoSrc.MAP_IDX_VALUE, ".rodata") in kinds
    assert (PseudoSrc.MAP_IDX_VALUE, ".bss") in kinds
    assert (PseudoSrc.MAP_IDX_VALUE, ".data") in kinds


def test_global_data_initial_contents(tmp_path):
    """.data and .rodata maps start with the section bytes, .bss with zeros."""
    obj_path = compile_bpf(tmp_path, """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
const volatile __u32 limit = 0x11223344;
__u64 seen = 0x5566778899aabbccULL;
__u32 zero;
SEC("xdp") int p(struct xdp_md *ctx) { zero++; seen += limit; return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
""", name="gd")
    obj = load(obj_path)
    by_sec = {m.section: m for m in obj.maps}
    assert by_sec[".rodata"].initial == (0x11223344).to_bytes(4, "little")
    assert by_sec[".data"].initial == (0x5566778899AABBCC).to_bytes(8, "little")
    assert by_sec[".bss"].initial == bytes(4)
    assert by_sec[".rodata"].name == "gd.rodata"
    assert all(m.max_entries == 1 and m.key_size == 4 for m in obj.maps)


def test_internal_map_names_follow_libbpf():
    """Global-data map names are truncated the way libbpf names them."""
    assert _internal_map_name("globals", ".rodata") == "globals.rodata"
    assert _internal_map_name("katran_lb", ".bss") == "katran_l.bss"
    assert _internal_map_name("x", ".rodata.str1.1") == "x.rodata.str1.1"


def test_subprograms_are_linked():
    """bpf-to-bpf calls land on the first instruction of the appended sub-program."""
    obj = load(corpus_object("bpf2bpf_loop"))
    prog = obj.programs[0]
    assert len(prog.functions) >= 3  # entry + at least two sub-programs
    starts = {f.start: f.name for f in prog.functions}
    slot = 0
    calls = 0
    for insn in prog.insns:
        if insn.kind is Kind.CALL and insn.src == CallKind.LOCAL:
            assert slot + 1 + insn.imm in starts
            calls += 1
        slot += insn.slots
    assert calls >= 2
    assert sum(f.size for f in prog.functions) == prog.num_slots


def test_line_info_names_source(tmp_path):
    """Each instruction's C file and line come from .BTF.ext line info."""
    obj_path = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp")
int p(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    if (data + 1 > data_end)
        return XDP_DROP;
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
""", name="lines")
    prog = load(obj_path).programs[0]
    lines = {line.line for line in prog.lines.values()}
    assert {6, 7, 8}.issubset(lines)
    first_load = next(s for s, line in prog.lines.items() if line.line in (6, 7))
    line = prog.source_line(first_load)
    assert line.file.endswith("lines.c")
    assert "ctx->data" in line.text


def test_legacy_maps_section(tmp_path):
    """The legacy `maps` section (struct bpf_map_def) is read like libbpf 0.x did."""
    obj_path = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct legacy_def { unsigned int type, key_size, value_size, max_entries, map_flags; };
struct legacy_def counters SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 8, 16, 0 };
struct legacy_def flows SEC("maps") = { BPF_MAP_TYPE_HASH, 8, 4, 1024, 1 };
SEC("xdp") int p(struct xdp_md *ctx) {
    __u32 k = 0; __u64 *v = bpf_map_lookup_elem(&counters, &k);
    if (v) *v += 1;
    return bpf_map_lookup_elem(&flows, &k) ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
""", name="legacy")
    obj = load(obj_path)
    got = [(m.name, m.type_name, m.key_size, m.value_size, m.max_entries, m.flags)
           for m in obj.maps]
    assert got == [("counters", "array", 4, 8, 16, 0), ("flows", "hash", 8, 4, 1024, 1)]
    assert obj.programs[0].map_indices == [0, 1]


def test_map_in_map_and_prog_array_values(tmp_path):
    """Inner map definitions and `values` initialisers of map-in-map and prog arrays load."""
    obj_path = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64);
               __uint(max_entries, 4); } in0 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __type(key, __u32); __uint(max_entries, 2);
         __array(values, struct inner); } outer SEC(".maps") = { .values = { &in0 } };
SEC("xdp") int b(struct xdp_md *ctx) { return XDP_DROP; }
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __type(key, __u32); __type(value, __u32);
         __uint(max_entries, 4); __array(values, int (void *)); } jt SEC(".maps") =
         { .values = { [2] = (void *)&b } };
SEC("xdp") int a(struct xdp_md *ctx) {
    __u32 k = 0;
    void *m = bpf_map_lookup_elem(&outer, &k);
    if (m) bpf_map_lookup_elem(m, &k);
    bpf_tail_call(ctx, &jt, 2);
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
""", name="mim")
    obj = load(obj_path)
    outer = obj.get_map("outer")
    assert outer.type_name == "array_of_maps" and outer.value_size == 4
    assert outer.inner is not None and outer.inner.type_name == "array"
    assert (outer.inner.key_size, outer.inner.value_size, outer.inner.max_entries) == (4, 8, 4)
    assert outer.values == {0: "in0"}
    assert obj.get_map("jt").values == {2: "b"}
    theirs = {m["name"]: m for m in load_object(obj_path, open_only=True).maps}
    assert theirs["outer"]["value_size"] == 4 and theirs["outer"]["type"] == "array_of_maps"


def test_program_types_from_sections():
    """xdp and xdp.frags sections are XDP programs; several programs share a section."""
    obj = load(corpus_object("xdp_pass"))
    assert {(p.section, p.prog_type) for p in obj.programs} == {("xdp", "xdp"),
                                                                 ("xdp.frags", "xdp")}
    assert len(load(corpus_object("tail_call")).programs) == 3


@pytest.mark.parametrize("section,expected", [
    ("xdp", "xdp"), ("xdp.frags", "xdp"), ("xdp/devmap", "xdp"), ("xdp/foo", "xdp"),
    ("tc", "sched_cls"), ("kprobe/do_sys_open", "kprobe"), ("socket", "socket_filter"),
    ("cgroup_skb/ingress", "cgroup_skb"), ("tracepoint/syscalls/x", "tracepoint"),
])
def test_section_program_types(section, expected):
    """Section names map to libbpf's program types."""
    from ebpf.loader.sections import program_type

    assert program_type(section)[0] == expected


def test_default_program_is_the_first_xdp_one(tmp_path):
    """With a tracepoint and a tc program first, the default program is the first XDP one;
    the others are listed with why they are skipped; any program can still be named."""
    from tests.mixed_sections import MIXED_SOURCE

    obj = load(compile_bpf(tmp_path, MIXED_SOURCE, "mixed"))
    assert obj.get_program().name == "xdp_first"
    assert [p.name for p in obj.iter_xdp_programs()] == ["xdp_first", "xdp_second"]
    skipped = {p.name: why for p, why in obj.iter_skipped_programs()}
    assert set(skipped) == {"trace_write", "tc_classify", "odd_one"}
    assert "sched_cls program (section 'tc'), not XDP" in skipped["tc_classify"]
    assert "not one libbpf knows" in skipped["odd_one"]
    assert obj.get_program("tc_classify").prog_type == "sched_cls"
    with pytest.raises(ElfError, match="tracepoint program .* not XDP"):
        obj.get_xdp_program("trace_write")
    assert "not XDP, skipped: trace_write" in obj.default_note()


def test_no_xdp_program_is_named_in_the_error(tmp_path):
    """An object without XDP programs: the default pick lists what it has."""
    obj = load(compile_bpf(tmp_path, '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
                           'SEC("tc") int cls(struct __sk_buff *s) { return 0; }\n'
                           'char LICENSE[] SEC("license") = "GPL";\n', "tc_only"))
    with pytest.raises(ElfError, match=r"no XDP program \(have: cls \(sched_cls"):
        obj.get_program()


STATIC_RODATA_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static const volatile __u32 limits[4] = {1, 2, 3, 4};	/* static: not mmapable */
__u32 seen = 7;						/* global: .data is mmapable */

SEC("xdp")
int xdp_static_ro(struct xdp_md *ctx)
{
	__u32 i = ctx->rx_queue_index & 3;
	seen++;
	return limits[i] > 2 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_global_data_flags_as_libbpf_sets_them(tmp_path):
    """A .rodata of static variables only is RDONLY_PROG without MMAPABLE (128, not 1152),
    a .data with a global variable MMAPABLE: the flags libbpf's open gives."""
    path = compile_bpf(tmp_path, STATIC_RODATA_SOURCE, "static_ro")
    ours = {m.name: m.flags for m in load(path).maps}
    theirs = {m["name"]: m["map_flags"] for m in load_object(path, open_only=True).maps}
    assert ours == theirs
    assert sorted(ours.values()) == [128, 1024]
