"""Feasibility of every corpus program on every target, the reasons, and the verdict rule."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

from ebpf.analysis import analyze
from ebpf.loader.elf import ElfObject, load
from hw.targets import BUILTIN_DIR
from offload.feasibility import check
from tests.conftest import CORPUS_NAMES, compile_bpf, corpus_object
from tests.ebpf.analysis import asm_program

TARGETS = ("pipe", "rmt", "nfp", "hxdp", "dpu", "host")
F, P, H = "full", "partial", "host-only"
# One row per program: the verdict on pipe, rmt, nfp, hxdp, dpu, host.
EXPECTED = {
    ("adjust_tail", "xdp_adjust_tail"): (F, P, F, F, F, F),
    ("bpf2bpf_loop", "xdp_bpf2bpf_loop"): (P, P, F, F, F, F),
    ("fib_router", "xdp_fib_router"): (P, P, P, P, F, F),
    ("firewall", "xdp_firewall"): (F, H, H, H, F, F),
    ("globals", "xdp_globals"): (H, H, H, F, F, F),
    ("icmp_echo", "xdp_icmp_echo"): (F, P, F, F, F, F),
    ("katran_lb", "xdp_katran_lb"): (P, P, P, P, F, F),
    ("lpm_router", "xdp_lpm_router"): (P, P, P, P, F, F),
    ("nat", "xdp_snat"): (F, P, P, F, F, F),
    ("parser_counters", "xdp_parser_counters"): (F, H, H, H, F, F),
    ("rate_limiter", "xdp_rate_limiter"): (F, P, P, F, F, F),
    ("syn_flood", "xdp_syn_flood"): (P, P, P, P, F, F),
    ("tail_call", "xdp_tcp"): (F, P, F, F, F, F),
    ("tail_call", "xdp_udp"): (F, P, F, F, F, F),
    ("tail_call", "xdp_dispatch"): (P, P, P, P, F, F),
    ("xdp_drop", "xdp_drop_prog"): (F, F, F, F, F, F),
    ("xdp_pass", "xdp_pass_prog"): (F, F, F, F, F, F),
    ("xdp_pass", "xdp_pass_frags"): (F, F, F, F, F, F),
    ("xdp_tx", "xdp_tx_prog"): (F, F, F, F, F, F),
}


@cache
def result(name: str, program: str | None, target: str):
    obj = _object(name)
    prog = obj.get_program(program)
    return check(obj, prog.name, target, analysis=_analysis(name, prog.name))


@cache
def _object(name: str) -> ElfObject:
    return load(corpus_object(name))


@cache
def _analysis(name: str, program: str):
    obj = _object(name)
    return analyze(obj.get_program(program), obj)


def reasons(name: str, target: str, kind: str, program: str | None = None):
    return [r for r in result(name, program, target).reasons if r.kind == kind]


def test_table_covers_the_corpus():
    """Every program of every corpus object has a row in the expected table."""
    have = {(n, p.name) for n in CORPUS_NAMES for p in _object(n).programs}
    assert have == set(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: k[1])
def test_verdicts(key):
    """Each program gets its expected verdict on pipe, rmt, nfp, hxdp, dpu and host."""
    got = tuple(result(key[0], key[1], t).verdict for t in TARGETS)
    assert dict(zip(TARGETS, got, strict=True)) == dict(zip(TARGETS, EXPECTED[key], strict=True))


@pytest.mark.parametrize("target", TARGETS)
def test_every_reason_names_insn_file_line_and_fix(target):
    """Every reason on the corpus has a reachable slot, a C file and line, and a fix."""
    for name, program in EXPECTED:
        res = result(name, program, target)
        an = _analysis(name, program)
        for r in res.reasons:
            assert isinstance(r.insn, int) and r.insn in r.insns
            assert all(an.is_reachable(s) for s in r.insns), r
            assert r.file and os.path.basename(r.file).endswith((".c", ".h")), r
            assert isinstance(r.line, int) and r.line > 0, r
            assert r.what and r.fix, r
        assert (res.verdict == "full") == (not res.reasons)


def test_host_and_dpu_accept_everything():
    """Targets that run the kernel JIT have no reason against any program."""
    for name, program in EXPECTED:
        for target in ("host", "dpu"):
            assert result(name, program, target).reasons == []


def test_rmt_rejects_variable_offsets_in_parser_counters():
    """rmt has no variable-offset access: the VLAN- and IHL-dependent reads are named."""
    found = reasons("parser_counters", "rmt", "variable_offset")
    lines = {(Path(r.file).name, r.line) for r in found}
    assert ("parser_counters.c", 82) in lines and ("parser_counters.c", 84) in lines
    ihl = next(r for r in found if r.line == 82)
    assert "14..22" in ihl.what and "14, 18, 22" in ihl.fix
    assert not reasons("parser_counters", "pipe", "variable_offset")


def test_nfp_rejects_lpm_fib_lookup_and_redirect():
    """nfp: no lpm_trie (firewall), no bpf_fib_lookup (fib_router), no XDP_REDIRECT."""
    lpm = reasons("firewall", "nfp", "map_type")
    assert any("'blocked_src' is a lpm_trie" in r.what for r in lpm)
    assert any(Path(r.file).name == "firewall.c" for r in lpm)
    fib = reasons("fib_router", "nfp", "helper")
    assert any("bpf_fib_lookup" in r.what and r.line == 55 for r in fib)
    for name in ("lpm_router", "fib_router"):
        (verdict,) = reasons(name, "nfp", "verdict")
        assert "XDP_REDIRECT" in verdict.what
    assert any("bpf_redirect_map" in r.what for r in reasons("lpm_router", "nfp", "helper"))


def test_alu_limits():
    """rmt has no multiplier; pipe has no divider; nfp divides by constants only."""
    assert any("multiplication" in r.what for r in reasons("katran_lb", "rmt", "alu"))
    assert any("division (r2 div= 61)" in r.what for r in reasons("katran_lb", "pipe", "alu"))
    assert not reasons("katran_lb", "nfp", "alu")
    assert any("non-constant" in r.what for r in reasons("globals", "nfp", "alu"))


def test_loops_on_pipelines():
    """bpf2bpf_loop's bounded loops are too deep to unroll into pipe's stages."""
    loops = reasons("bpf2bpf_loop", "pipe", "loop")
    assert {r.what.split()[2] for r in loops} == {"sum_words", "skip_ipv6_exthdrs"}
    assert any("up to 30 times" in r.what for r in loops)
    stats = result("bpf2bpf_loop", None, "pipe").stats["loops"]
    assert {(s["function"], s["trips"], s["unrollable"]) for s in stats} == {
        ("sum_words", 30, False), ("skip_ipv6_exthdrs", 8, False)}
    assert not reasons("bpf2bpf_loop", "nfp", "loop")


def test_map_memory_on_pipe():
    """lpm_router's 16384 routes do not fit pipe's TCAM; nothing overflows rmt's."""
    (tcam,) = reasons("lpm_router", "pipe", "map_memory")
    assert "'routes'" in tcam.what and "TCAM" in tcam.what
    assert not reasons("lpm_router", "rmt", "map_memory")


def check_asm(text: str, target: str = "pipe"):
    return check(ElfObject("<asm>", [asm_program(text)], []), None, target)


def test_verdict_rule_on_hand_written_programs():
    """partial: a clean path and no effect before the cut; host-only otherwise."""
    partial = check_asm("""
        ldxw %r2, [%r1+16]
        jeq %r2, 0, out
        call 8
    out:
        mov %r0, 2
        exit
    """)
    assert partial.verdict == "partial" and [r.insn for r in partial.reasons] == [2]
    assert partial.reasons[0].file is None and partial.stats["nic_insns"] == 4
    every_path = check_asm("call 8\nmov %r0, 2\nexit\n")
    assert every_path.verdict == "host-only" and "every path" in every_path.explanation
    effect_first = check_asm("""
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 14
        jgt %r4, %r3, out
        stb [%r2+0], 1
        ldxw %r5, [%r1+16]
        jeq %r5, 0, out
        call 8
    out:
        mov %r0, 2
        exit
    """)
    assert effect_first.verdict == "host-only"
    assert "store u8 to packet at slot 5" in effect_first.explanation


def test_program_size_is_program_wide(tmp_path):
    """A program longer than max_insns is host-only, whatever its paths."""
    text = (BUILTIN_DIR / "nfp.toml").read_text()
    small = tmp_path / "tiny.toml"
    small.write_text(text.replace('name = "nfp"', 'name = "tiny"').replace(
        "max_insns = 4096", "max_insns = 16"))
    res = check(corpus_object("xdp_tx"), None, "tiny", extra_targets=[str(small)])
    assert res.verdict == "host-only"
    (r,) = res.reasons
    assert r.kind == "program_size" and r.scope == "program" and r.insn == 0


PAST_WINDOW_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_deep(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	__u32 sum = 0;

	if (data + 310 > end)
		return XDP_PASS;
#pragma unroll
	for (int i = 300; i < 310; i++)
		sum += data[i];
	return sum == 7 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_reads_past_the_window_are_one_reason(tmp_path):
    """Ten one-byte reads past pipe's 256-byte window: one "window" reason naming the
    furthest byte and the count, with every read's instruction listed."""
    from tests.conftest import compile_bpf

    obj = compile_bpf(tmp_path, PAST_WINDOW_SOURCE, "deep")
    result = check(str(obj), None, "pipe")
    window = [r for r in result.reasons if r.kind == "window"]
    assert len(window) == 1, [r.what for r in window]
    assert window[0].what == "packet read up to byte 310, past the 256-byte window " \
                             "(10 accesses)"
    assert len(window[0].insns) == 10


# A filter returning the action its map holds, and logging every hit through a perf event
# array (max_entries left to libbpf, which sizes it to the possible CPUs).
MAP_ACTION_SOURCE = r"""
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	__type(key, __u32); __type(value, __u32); } actions SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4); __uint(value_size, 4); } events SEC(".maps");

SEC("xdp")
int xdp_map_action(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	__u32 key = eth->h_proto;
	__u32 *a = bpf_map_lookup_elem(&actions, &key);
	if (!a)
		return XDP_PASS;
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &key, sizeof(key));
	return *a;
}

SEC("xdp")
int xdp_bounce(struct xdp_md *ctx)
{
	return bpf_redirect(ctx->ingress_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_nfp_perf_event_array_is_offload_neutral(tmp_path):
    """nfp has bpf_perf_event_output, so its PERF_EVENT_ARRAY stays on the host (the
    kernel's bpf_map_offload_neutral): no map_type reason; a target without the helper
    still refuses the map."""
    obj = compile_bpf(tmp_path, MAP_ACTION_SOURCE, "action")
    nfp = check(obj, "xdp_map_action", "nfp")
    assert not [r for r in nfp.reasons if "events" in r.what], nfp.reasons
    hxdp = check(obj, "xdp_map_action", "hxdp")
    assert any(r.kind == "map_type" and "'events'" in r.what for r in hxdp.reasons)


def test_redirect_claimed_only_when_the_code_returns_it(tmp_path):
    """A verdict read from a map is not "may return XDP_REDIRECT" on nfp (the VM over a
    trace never sees 4 with the control plane's actions); bpf_redirect's return is."""
    from ebpf.differential import Scenario, size_maps
    from ebpf.vm.machine import Vm
    from sim.packets import random_packets

    obj = compile_bpf(tmp_path, MAP_ACTION_SOURCE, "action")
    res = check(obj, "xdp_map_action", "nfp")
    assert res.verdict == "full" and not res.reasons
    elf = size_maps(load(obj), Scenario.from_dict({}))  # libbpf's size for `events`
    vm = Vm(elf, elf.get_program("xdp_map_action"))
    vm.maps[0].update(bytes.fromhex("08000000"), bytes.fromhex("01000000"))
    seen = {vm.run_xdp(p).verdict for p in random_packets(300, seed=3)}
    assert 4 not in seen and 1 in seen  # the oracle: what the program returns
    bounce = check(obj, "xdp_bounce", "nfp")
    verdicts = [r for r in bounce.reasons if r.kind == "verdict"]
    assert len(verdicts) == 1 and "XDP_REDIRECT (4)" in verdicts[0].what
