"""If-conversion by control dependence, the DAG it works on, and the emitted document."""

from __future__ import annotations

from ebpf.analysis import analyze
from ebpf.loader.elf import load
from hw.pipeline import canonical, load_config, read_memory_images, write_memory_images
from hw.targets import load_target
from offload.lower import lower_program
from offload.lower.dag import build_dag
from offload.lower.ifconvert import IfConverter
from offload.lower.ir import lower_params
from offload.lower.translate import Translator
from tests.conftest import compile_bpf, corpus_object
from tests.offload.lower import COMMON_H, PRELUDE, map_c

DIAMOND = """
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    if (data + 15 > end) return XDP_PASS;
    unsigned char b = *(unsigned char *)(data + 14);
    int v;
    if (b & 1) v = 3; else v = 1;
    asm volatile("" : "+r"(v));
    return v;
}
"""


def translate(tmp_path, body: str):
    (tmp_path / "common.h").write_text(COMMON_H.read_text())
    obj = load(compile_bpf(tmp_path, PRELUDE + body))
    prog = obj.programs[0]
    an = analyze(prog, obj)
    dag = build_dag(an, set(), {})
    tr = Translator(an, obj, prog, lower_params(load_target("pipe")), dag)
    tr.run()
    return tr


def test_join_of_a_diamond_has_the_branch_predicate(tmp_path):
    """The exit after an if/else (and the early return) post-dominates both branches: it is
    control dependent on nothing, so its predicate is the constant 1 (no gateway)."""
    tr = translate(tmp_path, DIAMOND)
    assert not tr.reasons and len(tr.conds) == 2
    ifc = IfConverter(tr)
    exit_node = tr.exits[0][0]
    assert ifc.cd[exit_node] == frozenset()
    assert ifc.node_pred(exit_node) == (None, False)
    inner = [n for n in ifc.order if ifc.cd[n] and n != exit_node]
    assert inner and all(len(ifc.cd[n]) == 1 for n in inner)


def test_verdict_phi_leaves_become_grouped_writes(tmp_path):
    """r0 = phi(3, 1) at the one exit: one verdict write for the non-default value, and the
    packets get the VM's verdicts."""
    r = map_c(tmp_path, DIAMOND)
    assert r.verdict == "full" and r.equivalence["ok"], r.explanation
    writes = [o for st in r.config["stages"] for o in st["ops"] if o["slot"] == 51]
    assert len(writes) == 2  # the bounds-check exit and one of the two values
    assert set(r.equivalence["verdicts"]) >= {"1", "3"}


def test_dag_inlines_calls_per_call_string(tmp_path):
    """A sub-program called twice appears twice in the DAG (once per call string)."""
    body = """
static __attribute__((noinline)) int byte_at(void *data, void *end, int off) {
    if (data + off + 1 > end) return -1;
    return *(unsigned char *)(data + off);
}
SEC("xdp") int prog(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    int a = byte_at(data, end, 14), b = byte_at(data, end, 15);
    return a == b ? XDP_DROP : XDP_PASS;
}
"""
    tr = translate(tmp_path, body)
    contexts = {tr.dag.nodes[n].cs for n in tr.live}
    assert len([cs for cs in contexts if cs]) == 2


def test_cut_slots_end_their_paths_in_punt_nodes():
    """Cutting a slot turns its node into a punt: the rest of that block is not lowered."""
    obj = load(corpus_object("tail_call"))
    prog = obj.get_program("xdp_dispatch")
    an = analyze(prog, obj)
    tail = next(s for s in an.reachable_slots()
                if an.insn_at[s].kind.value == "call" and an.insn_at[s].imm == 12)
    dag = build_dag(an, {tail}, {})
    punts = [n for n in dag.nodes if n.term == "punt"]
    assert punts and all(n.cut == tail for n in punts)


def test_emitted_document_validates_and_round_trips_through_images(tmp_path):
    """The configuration of a corpus program validates, and its memory images decode back."""
    obj = load(corpus_object("firewall"))
    prog = obj.programs[0]
    an = analyze(prog, obj)
    low = lower_program(an, obj, prog, load_target("pipe"), set())
    assert low.ok, low.reasons
    from offload.lower import compile_pipeline
    compiled = compile_pipeline(low, load_target("pipe"), prog.name, time_limit_s=2)
    config = load_config(compiled.config)
    write_memory_images(config, tmp_path)
    assert read_memory_images(tmp_path) == canonical(config)
