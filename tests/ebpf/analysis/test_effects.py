"""Side-effect sites: map writes, packet writes, redirects, tail calls."""

from __future__ import annotations

from ebpf.analysis import EffectKind, analyze, effects_by_block, find_effects
from ebpf.loader.elf import load
from tests.conftest import corpus_object
from tests.ebpf.analysis import asm_program


def effects(name: str, program: str | None = None):
    obj = load(corpus_object(name))
    an = analyze(obj.get_program(program), obj)
    return an, find_effects(an)


def test_katran_updates_conn_table_and_adjusts_head():
    """katran_lb writes conn_table with a helper and grows the head before writing it."""
    an, found = effects("katran_lb")
    update = [e for e in found if e.helper == "map_update_elem"]
    assert [(e.kind, e.map) for e in update] == [(EffectKind.MAP_WRITE, "conn_table")]
    adjust = [e for e in found if e.helper == "xdp_adjust_head"]
    assert len(adjust) == 1 and adjust[0].kind is EffectKind.PACKET_WRITE
    stores = [e for e in found if e.kind is EffectKind.PACKET_WRITE and e.helper is None]
    assert stores and min(e.slot for e in stores) > adjust[0].slot


def test_nat_writes_the_packet():
    """nat rewrites the source address, port and both checksums in the packet."""
    an, found = effects("nat")
    writes = [e for e in found if e.kind is EffectKind.PACKET_WRITE]
    lines = {an.prog.source_line(e.slot).line for e in writes}
    assert len(writes) == 4 and {105, 106, 107} <= lines
    assert all(e.visible for e in writes)


def test_tail_call_site():
    """xdp_dispatch's only effect is the tail call through jmp_table."""
    _, found = effects("tail_call", "xdp_dispatch")
    assert [(e.kind, e.map, e.helper) for e in found] == [
        (EffectKind.TAIL_CALL, "jmp_table", "tail_call")]


def test_map_value_stores_and_redirects():
    """Counters through value pointers are map writes; a redirect is not visible."""
    _, found = effects("parser_counters")
    assert {e.map for e in found} == {"proto_stats"}
    assert all(e.kind is EffectKind.MAP_WRITE for e in found)
    _, found = effects("fib_router")
    redirect = [e for e in found if e.kind is EffectKind.REDIRECT]
    assert len(redirect) == 1 and not redirect[0].visible


def test_effects_grouped_by_block():
    """Each site lands in the block that holds it; blocks without effects are absent."""
    an = analyze(asm_program("""
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 14
        jgt %r4, %r3, out
        stb [%r2+0], 1
        call 6
    out:
        mov %r0, 2
        exit
    """))
    by_block = effects_by_block(an)
    assert list(by_block) == [5]
    assert [(e.slot, e.kind) for e in by_block[5]] == [(5, EffectKind.PACKET_WRITE),
                                                       (6, EffectKind.OUTPUT)]


MERGED_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} left SEC(".maps"), right SEC(".maps");

SEC("xdp")
int xdp_merged(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u32 *v;

	if (ctx->rx_queue_index & 1)
		v = bpf_map_lookup_elem(&left, &k);
	else
		v = bpf_map_lookup_elem(&right, &k);
	if (v)
		*v = 5;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_store_through_a_merged_map_pointer_names_no_question_mark(tmp_path):
    """A store through a pointer merged from two maps' values says so, never "map '?'"."""
    from tests.conftest import compile_bpf

    obj = load(compile_bpf(tmp_path, MERGED_SOURCE, "merged"))
    writes = [e for e in find_effects(analyze(obj.programs[0], obj))
              if e.kind is EffectKind.MAP_WRITE]
    assert writes
    for e in writes:
        assert "'?'" not in e.what
        assert e.map in ("left", "right") or "several maps" in e.what
