"""offload.verdict: `check` gives the mapper's verdict on pipelines and the kernel's above all."""

from __future__ import annotations

import json

import pytest

from offload import cli
from offload.feasibility import check
from offload.mapper import map_program
from offload.verdict import check_program
from tests.conftest import compile_bpf, corpus_object
from tests.offload.test_kernel_check import UNCHECKED_SOURCE

# clang merges the two lookups into one call whose map pointer (and key pointer) is a phi
MERGED_MAPS_SOURCE = r"""
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	__type(key, __u16); __type(value, __u32); } tcp_ports SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
	__type(key, __u16); __type(value, __u32); } udp_ports SEC(".maps");

SEC("xdp")
int xdp_port_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	__u16 *ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return XDP_PASS;
	__u16 dport = ports[1];
	__u32 *action;
	if (ip->protocol == IPPROTO_TCP)
		action = bpf_map_lookup_elem(&tcp_ports, &dport);
	else if (ip->protocol == IPPROTO_UDP)
		action = bpf_map_lookup_elem(&udp_ports, &dport);
	else
		return XDP_PASS;
	if (!action)
		return XDP_PASS;
	return *action == 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _cli_json(capsys, *args: str) -> dict:
    assert cli.main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("target", ["pipe", "rmt"])
@pytest.mark.parametrize("name", ["katran_lb", "nat", "syn_flood", "parser_counters"])
def test_check_and_map_agree_on_pipelines(capsys, name, target):
    """`check --json` and `map --json` give one verdict, explanation and reason list."""
    obj = str(corpus_object(name))
    got = _cli_json(capsys, "check", obj, "--target", target, "--json", "--no-kernel")
    want = _cli_json(capsys, "map", obj, "--target", target, "--json")
    assert (got["verdict"], got["explanation"]) == (want["verdict"], want["explanation"])
    assert got["reasons"] == want["reasons"]


def test_merged_map_pointer_maps_without_a_cut(tmp_path):
    """The merged lookup (r1 a phi of two maps) is one table per map now: check and map
    agree on `full`, no lowering reason, the equivalence holds."""
    obj = compile_bpf(tmp_path, MERGED_MAPS_SOURCE, "merged")
    rep = map_program(obj, "pipe")
    res = check_program(obj, target="pipe", kernel=False)
    assert res.verdict == rep.verdict == "full", rep.reasons
    assert [r.kind for r in res.reasons] == [r.kind for r in rep.reasons]
    assert "lowering" not in {r.kind for r in res.reasons}
    assert res.stats["mapper"]["equivalence"] == "holds"
    assert res.stats["nic_insns"] == res.stats["reachable_insns"]


def test_lowering_cuts_reach_the_check(tmp_path):
    """A construct only the lowering refuses (bpf_ktime_get_ns: its pipeline value is not
    the host's) is a reason of check's too: the verdict is not `full` where the mapper cuts."""
    src = MERGED_MAPS_SOURCE.replace("return *action == 1 ? XDP_DROP : XDP_PASS;",
                                     "return (*action == 1 && (bpf_ktime_get_ns() & 1)) ? "
                                     "XDP_DROP : XDP_PASS;")
    obj = compile_bpf(tmp_path, src, "ktime")
    rep = map_program(obj, "pipe")
    res = check_program(obj, target="pipe", kernel=False)
    assert res.verdict == rep.verdict != "full"
    assert [r.kind for r in res.reasons] == [r.kind for r in rep.reasons]
    assert "lowering" in {r.kind for r in res.reasons}
    assert res.stats["mapper"]["equivalence"] == "holds"
    assert res.stats["nic_insns"] < res.stats["reachable_insns"]


def test_run_to_completion_targets_keep_the_check_verdict():
    """nfp: the verdict and reasons are the feasibility check's; a partial one says the
    share of packets and of work the NIC keeps, as the VM trace measures them."""
    obj = corpus_object("fib_router")
    plain = check(obj, target="nfp")
    res = check_program(obj, target="nfp", kernel=False)
    assert res.verdict == plain.verdict == "partial" and res.reasons == plain.reasons
    share = res.stats["nic_share"]
    assert 0 < share["work"] < share["packets"] < 1
    assert f"{100 * share['packets']:.1f} % of the trace's packets" in res.explanation


@pytest.mark.kernel
@pytest.mark.parametrize("target", ["pipe", "nfp", "host"])
def test_kernel_rejected_program_is_rejected_on_every_target(tmp_path, target):
    """A program the verifier refuses is `rejected` with the verifier's line first."""
    obj = compile_bpf(tmp_path, UNCHECKED_SOURCE, "unchecked")
    res = check_program(obj, "xdp_unchecked", target)
    assert res.verdict == "rejected" and res.stats["nic_insns"] == 0
    first = res.reasons[0]
    assert first.kind == "verifier" and first.scope == "program" and first.insn == 1
    assert "invalid access to packet" in first.what and "data[12]" in first.source


@pytest.mark.kernel
def test_accepted_program_says_so(tmp_path):
    """The verifier's yes is in the stats; the verdict is the target's."""
    res = check_program(corpus_object("xdp_drop"), target="pipe")
    assert res.stats["kernel"]["loaded"] is True and res.verdict == "full"


@pytest.mark.parametrize("target", ["pipe", "nfp", "host"])
def test_without_the_kernel_our_bounds_check_rejects(tmp_path, target):
    """--no-kernel: the unchecked read is `rejected` by the packet-bounds check, its reason
    first (kind packet_bounds, scope program, the read's insn and C line); nothing on the NIC."""
    obj = compile_bpf(tmp_path, UNCHECKED_SOURCE, "unchecked")
    res = check_program(obj, "xdp_unchecked", target, kernel=False)
    assert res.verdict == "rejected" and res.stats["nic_insns"] == 0
    first = res.reasons[0]
    assert (first.kind, first.scope, first.insn) == ("packet_bounds", "program", 1)
    assert "data[12]" in first.source and first.line is not None
    assert "--no-kernel" in res.explanation and "offset 12" in res.explanation
    assert res.stats["bounds"]["refused"] is True


def test_where_bpf_is_not_permitted_our_bounds_check_rejects(tmp_path, monkeypatch):
    """bpf(2) refused (EPERM): the kernel is not asked, the bounds check decides, and says
    why the kernel was not asked."""
    import offload.kernel_check as kc
    monkeypatch.setattr(kc, "bpf_permitted", lambda: (False, "bpf(BPF_PROG_LOAD) failed: "
                                                              "EPERM Operation not permitted"))
    obj = compile_bpf(tmp_path, UNCHECKED_SOURCE, "unchecked")
    res = check_program(obj, "xdp_unchecked", "pipe")
    assert res.stats["kernel"]["loaded"] is None
    assert res.verdict == "rejected" and res.reasons[0].kind == "packet_bounds"
    assert "EPERM" in res.explanation
    fine = check_program(obj, "xdp_fine", "pipe")
    assert fine.verdict == "full" and fine.stats["bounds"]["refused"] is False


@pytest.mark.parametrize("name", ["nat", "katran_lb", "bpf2bpf_loop"])
def test_accepted_corpus_programs_keep_the_mappers_verdict_without_the_kernel(name):
    """nat (a non-path-sensitive check would refuse it), katran_lb and the loop program:
    the bounds check proves every access, the verdict stays map's."""
    obj = corpus_object(name)
    res = check_program(obj, target="pipe", kernel=False)
    assert res.stats["bounds"]["refused"] is False and res.stats["bounds"]["complete"]
    assert res.verdict == map_program(obj, "pipe").verdict != "rejected"


@pytest.mark.kernel
def test_bounds_rejection_names_the_kernels_instruction(tmp_path):
    """The --no-kernel rejection and the kernel's own rejection name the same insn and line."""
    obj = compile_bpf(tmp_path, UNCHECKED_SOURCE, "unchecked")
    ours = check_program(obj, "xdp_unchecked", "pipe", kernel=False).reasons[0]
    theirs = check_program(obj, "xdp_unchecked", "pipe").reasons[0]
    assert theirs.kind == "verifier"
    assert (ours.insn, ours.line) == (theirs.insn, theirs.line)
