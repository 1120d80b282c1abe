"""The simulator's behaviour run in batches (sim.behaviour) against the packet-by-packet
loop with traces (``run_behaviour(batched=False)``): the same classes, verdicts, costs,
punts, labels and counts, on pipelines with full and partial mappings (real punts) and on
run-to-completion NICs that class packets by path; the paths and costs against the VM."""

from __future__ import annotations

import numpy as np
import pytest

import sim.scenario
from ebpf.columns import tail_records
from ebpf.differential import Scenario as MapScenario
from ebpf.executor import open_executor
from ebpf.loader.elf import load
from hw.targets import load_target
from offload.sim_cost import mapped_nic_cost
from sim.behaviour import path_trace
from sim.model import NicCost, TraceCost
from sim.scenario import Scenario, run_behaviour
from sim.spec import parse_traffic
from sim.traffic import generate
from tests.conftest import ROOT, corpus_object

SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"
MIXED = "imix@100G,proto=udp/tcp/icmp/udp6/tcp6/random,flows=256"


def _setup(name: str, target: str, traffic: str, n: int, seed: int,
           program: str | None = None):
    t = load_target(target)
    traffic = traffic.replace("@100G", f"@{t.line_rate_gbps:g}G")
    sc = Scenario(program=str(corpus_object(name)), maps=str(SCENARIOS / f"{name}.json"),
                  target=target, traffic=traffic, packets=n, seed=seed, host_cost="model",
                  program_name=program)
    tr = generate(parse_traffic(traffic, line_rate_gbps=t.line_rate_gbps), n, seed,
                  line_rate_gbps=t.line_rate_gbps)
    cost = mapped_nic_cost(sc.program, None, t, maps=sc.maps) if t.kind == "pipeline" \
        else NicCost()
    return sc, tr, cost


def _trace_view(t) -> tuple:
    """What the cost models read of a class's trace (hw.cost.nic, hw.rtc)."""
    return (t.program, t.verdict, list(t.path), t.insns,
            [(h.slot, h.id, h.name) for h in t.helper_calls],
            [(x.slot, x.map, x.index, x.target, x.path_index) for x in t.tail_calls])


def _same(a, b) -> None:
    assert a.executor == b.executor == "compiled"
    assert a.klass.tolist() == b.klass.tolist()
    assert a.verdicts == b.verdicts
    assert a.costs == b.costs
    assert a.labels == b.labels
    assert a.counts == b.counts
    assert a.packets == b.packets
    assert [_trace_view(t) for t in a.traces] == [_trace_view(t) for t in b.traces]


def _both(sc, tr, cost, paths):
    made = []
    real = sim.scenario.PipelinePunts

    def tracked(*args):
        made.append(real(*args))
        return made[-1]

    sim.scenario.PipelinePunts = tracked
    try:
        fast = run_behaviour(sc, tr, "compiled", cost, paths=paths)
        slow = run_behaviour(sc, tr, "compiled", cost, paths=paths, batched=False)
    finally:
        sim.scenario.PipelinePunts = real
    return fast, slow, made


@pytest.mark.parametrize("name, target, seed", [
    ("firewall", "pipe", 1), ("firewall", "pipe", 2), ("parser_counters", "pipe", 1),
    ("lpm_router", "pipe", 1), ("katran_lb", "pipe", 3), ("lpm_router", "rmt", 2),
    ("rate_limiter", "pipe", 1)])
def test_pipelines_batched_equal_packet_by_packet(name, target, seed):
    """Full and partial mappings (lpm_router and katran_lb punt on mixed traffic, their
    model running ahead of the executor up to each punt; firewall's configuration can only
    punt long frames): the same behaviour, class for class, as the loop with traces."""
    sc, tr, cost = _setup(name, target, MIXED, 3000, seed)
    fast, slow, made = _both(sc, tr, cost, paths=False)
    _same(fast, slow)
    if cost.punt == "model":
        assert made[0].punts == made[1].punts
        punted = sum(c for c, tc in zip(fast.counts, fast.costs, strict=True) if tc.punted)
        assert punted == made[1].punts
        if name in ("lpm_router", "katran_lb") and target == "pipe":
            # lpm_router binds no map; katran_lb binds vip_map, which it never writes
            assert 0 < punted < 3000 and not made[0].static and made[0].ahead
        if name == "firewall":
            assert made[0].static and made[0].modelled == 0 < made[1].modelled


@pytest.mark.parametrize("name, target", [("firewall", "nfp"), ("lpm_router", "hxdp"),
                                          ("katran_lb", "nfp"), ("bpf2bpf_loop", "hxdp")])
def test_nics_with_paths_batched_equal_packet_by_packet(name, target):
    """Run-to-completion NICs class packets by path (paths=True): the same classes and the
    same traces as the cost models read them (path, instructions, helper calls)."""
    sc, tr, cost = _setup(name, target, MIXED, 2000, 4)
    fast, slow, _made = _both(sc, tr, cost, paths=True)
    _same(fast, slow)


@pytest.mark.parametrize("target", ["pipe", "rmt", "nfp", "hxdp", "host"])
def test_tail_calls_batched_equal_packet_by_packet(target, monkeypatch):
    """tail_call.o's dispatcher (tail calls into xdp_tcp / xdp_udp, falling through on
    other protocols) in batches: the same classes, verdicts, costs, punts, labels, counts
    and traces (tail calls included) as the loop with traces; classed by path on the
    run-to-completion NICs and the host."""
    from ebpf.compiled import CompiledVm

    batched = []
    real = CompiledVm.run_xdp_paths
    monkeypatch.setattr(CompiledVm, "run_xdp_paths",
                        lambda vm, *a: batched.append(len(a[0])) or real(vm, *a))
    sc, tr, cost = _setup("tail_call", target, MIXED, 2500, 6, program="xdp_dispatch")
    fast, slow, made = _both(sc, tr, cost, paths=target not in ("pipe", "rmt"))
    _same(fast, slow)
    assert sum(batched) > 2000  # the batched side did run in batches
    targets = {x.target for t in fast.traces for x in t.tail_calls}
    assert {"xdp_tcp", "xdp_udp", None} <= targets
    if cost.punt == "model":
        assert made[0].punts == made[1].punts


def test_long_frames_punted_by_length():
    """Frames longer than the window's frame_end (3,520 bytes) are punted, the others not,
    on a configuration that can punt nothing else: as the model decides them."""
    sc, tr, cost = _setup("firewall", "pipe", "9000B@100G,flows=8", 40, 1)
    fast, slow, made = _both(sc, tr, cost, paths=False)
    _same(fast, slow)
    assert [tc.punted for tc in fast.costs] == [True] and made[1].punts == 40


@pytest.mark.parametrize("name, program", [
    ("firewall", None), ("rate_limiter", None), ("katran_lb", None), ("nat", None),
    ("parser_counters", None), ("tail_call", "xdp_dispatch")])
def test_path_costs_equal_the_vm_traces(name, program):
    """Per packet, the batch's instruction count, path and tail calls, and the helper calls
    read off the path across the programs it tail-called into (path_trace), are the
    reference VM's trace of that packet (maps persisting, the clock running)."""
    state = MapScenario.load(SCENARIOS / f"{name}.json")
    path = str(corpus_object(name))
    tr = generate(parse_traffic(MIXED, line_rate_gbps=100), 2500, 5, line_rate_gbps=100)
    packets = [tr.reps[r] for r in tr.rep.tolist()]
    times = tr.arrival_ns.tolist()
    with open_executor("compiled", path, load(path), program, state) as ex:
        cols, pc = ex.run_batch_paths(packets, times)
        obj, program = ex.obj, ex.program
    with open_executor("vm", path, load(path), program, MapScenario.load(
            SCENARIOS / f"{name}.json")) as vm:
        traces = [vm.run(p, t).trace for p, t in zip(packets, times, strict=True)]
    assert np.array_equal(cols.verdict, [t.verdict for t in traces])
    for i, t in enumerate(traces):
        p, tails = pc.paths[pc.path_id[i]], pc.tail_calls[pc.path_id[i]]
        assert (pc.steps[i], p, tails) == (t.insns, tuple(t.path),
                                           tail_records(t.tail_calls)), f"packet {i}"
    for j, p in enumerate(pc.paths):
        i = int(np.flatnonzero(pc.path_id == j)[0])
        got = path_trace(obj, program, p, int(pc.steps[i]), tail_calls=pc.tail_calls[j])
        assert [(h.slot, h.id, h.name) for h in got.helper_calls] == \
            [(h.slot, h.id, h.name) for h in traces[i].helper_calls]
        assert TraceCost.from_trace(got) == TraceCost.from_trace(traces[i])


@pytest.mark.parametrize("name", ["firewall", "lpm_router"])
def test_runt_is_the_models_error_in_both(name):
    """A packet shorter than the pipeline's min_packet_bytes is refused by the model's
    parser: the same error, naming the same packet, batched or not (firewall's punts come
    from lengths; lpm_router's model decides spans ahead, once per distinct packet)."""
    from hw.errors import HwError

    sc, tr, cost = _setup(name, "pipe", "64B@100G,flows=4", 50, 1)
    tr.reps[tr.rep[30]] = tr.reps[tr.rep[30]][:12]
    first = int(np.flatnonzero(tr.rep == tr.rep[30])[0])
    errors = []
    for batched in (True, False):
        with pytest.raises(HwError) as info:
            run_behaviour(sc, tr, "compiled", cost, batched=batched)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert f"packet {first} (" in errors[0] and "min_packet_bytes 14" in errors[0]


LEARN_SOURCE = r"""
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} seen SEC(".maps");

SEC("xdp")
int xdp_learn(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	__u32 one = 1, k;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	k = iph->saddr;
	if (bpf_map_lookup_elem(&seen, &k))
		return XDP_DROP;
	bpf_map_update_elem(&seen, &k, &one, BPF_ANY); /* on the host: the NIC has no insert */
	return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""
"""A source's first packet punts (the host inserts it into ``seen``), its later ones hit
the pipeline's copy of ``seen`` and drop on the NIC: the punts depend on the host's writes."""


def _learner(tmp_path):
    from tests.conftest import compile_bpf

    obj = compile_bpf(tmp_path, LEARN_SOURCE, "learn")
    sc = Scenario(program=str(obj), target="pipe", traffic=MIXED, packets=1500, seed=2,
                  host_cost="model")
    tr = generate(parse_traffic(MIXED, line_rate_gbps=100), 1500, 2, line_rate_gbps=100)
    return sc, tr, mapped_nic_cost(sc.program, None, load_target("pipe"))


class _WatchAll(sim.scenario.PipelinePunts):
    """The oracle: the model on every packet, every bound map reloaded after every punt and
    the remembered decisions of none (what ``PipelinePunts`` did before it knew which
    state a decision reads)."""

    def __init__(self, config, vm_maps):
        super().__init__(config, vm_maps)
        self.watched, self.fetches, self._known = self.bound, True, None
        self._loaded = self._dump({n: vm_maps[n] for n in self.bound})


def _against_oracle(sc, tr, cost):
    """The batched run (the real ``PipelinePunts``) and the loop with ``_WatchAll``."""
    made = []
    real = sim.scenario.PipelinePunts

    def tracked(*args):
        made.append(real(*args))
        return made[-1]

    try:
        sim.scenario.PipelinePunts = tracked
        fast = run_behaviour(sc, tr, "compiled", cost)
        sim.scenario.PipelinePunts = lambda *args: made.append(_WatchAll(*args)) or made[-1]
        slow = run_behaviour(sc, tr, "compiled", cost, batched=False)
    finally:
        sim.scenario.PipelinePunts = real
    _same(fast, slow)
    assert made[0].punts == made[1].punts
    return made


@pytest.mark.parametrize("name, target, seed", [
    ("rate_limiter", "pipe", 1), ("rate_limiter", "rmt", 2), ("bpf2bpf_loop", "pipe", 2),
    ("bpf2bpf_loop", "rmt", 3), ("katran_lb", "pipe", 3), ("lpm_router", "rmt", 1)])
def test_punts_equal_the_model_reloaded_after_every_punt(name, target, seed):
    """Where a decision reads no state the program or the pipeline writes (bpf2bpf_loop's
    pipeline only counts in l4_hits; rate_limiter's binds no map; katran_lb's vip_map is
    never written), the model decides whole spans ahead, each distinct packet once: the
    same behaviour, class for class, as the loop with the model on every packet and every
    bound map reloaded after every punt."""
    sc, tr, cost = _setup(name, target, MIXED, 2500, seed)
    made = _against_oracle(sc, tr, cost)
    assert made[0].ahead and not made[0].static and made[1].modelled == 2500
    assert made[0].modelled < 2500 and made[0].punts > 0


def test_spans_stop_at_punts_where_a_reload_may_matter(tmp_path, monkeypatch):
    """A pipeline table the host writes (the learner's ``seen``): its model may not decide
    past a punt (not ``ahead``), and the batched run still equals the oracle loop; forcing
    ``ahead`` on it is caught by the check after the span."""
    from sim.errors import SimError
    from sim.mapping import PipelinePunts

    sc, tr, cost = _learner(tmp_path)
    assert cost.punt == "model"
    made = _against_oracle(sc, tr, cost)
    assert made[0].watched == ["seen"] and not made[0].ahead and made[0].punts > 0

    def forced(self, obj, program):
        self.ahead = True
    monkeypatch.setattr(PipelinePunts, "allow_ahead", forced)
    with pytest.raises(SimError, match="changed a map the pipeline holds"):
        run_behaviour(sc, tr, "compiled", cost)
