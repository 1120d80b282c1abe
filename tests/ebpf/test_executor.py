"""The executors behind one interface: the kernel backend against `offload kernel` and the
VM, every corpus program, maps persisting and the clock injected."""

from __future__ import annotations

import json

import pytest

from ebpf.differential import Scenario
from ebpf.errors import EbpfError
from ebpf.executor import ExecutorError, VmExecutor, open_executor
from ebpf.kernel.load import bpf_permitted
from ebpf.loader.elf import load
from sim.packets import random_packets
from tests.conftest import CORPUS_NAMES, ROOT, corpus_object
from tests.offload.test_cli import offload

PERMITTED, REASON = bpf_permitted()
needs_bpf = pytest.mark.skipif(not PERMITTED, reason=f"bpf(2) not permitted: {REASON}")
SCENARIOS = ROOT / "examples" / "xdp" / "scenarios"
PACKETS = random_packets(1500, seed=5)


def _scenario(name: str) -> Scenario:
    return Scenario.load(SCENARIOS / f"{name}.json")


def _results(kind: str, name: str, packets: list[bytes]):
    path = str(corpus_object(name))
    with open_executor(kind, path, load(path), None, _scenario(name)) as ex:
        assert ex.name == kind
        out = ex.run_all(packets, [i * _scenario(name).clock_step_ns
                                   for i in range(len(packets))])
        return out, ex.dump_maps()


@needs_bpf
@pytest.mark.parametrize("name", ["rate_limiter", "syn_flood", "katran_lb", "firewall"])
def test_kernel_executor_is_offload_kernel(name):
    """The kernel executor gives `offload kernel`'s verdict and output length on every
    packet and its final maps (stateful programs, the clock injected)."""
    path = str(corpus_object(name))
    pcap = ROOT / "build" / f"executor-{name}.pcap"
    from sim.pcap import write_pcap

    write_pcap(pcap, PACKETS[:600])
    try:
        doc = json.loads(offload("kernel", path, "--pcap", str(pcap), "--maps",
                                 str(SCENARIOS / f"{name}.json"), "--json", check=True).stdout)
    finally:
        pcap.unlink()
    mine, maps = _results("kernel", name, PACKETS[:600])
    assert [(r.verdict_name, len(r.packet)) for r in mine] == [
        (r["verdict"], r["len_out"]) for r in doc["results"]]
    assert maps["maps"] == doc["maps"]


@needs_bpf
@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_kernel_executor_equals_vm(name):
    """On every corpus program with its scenario, the kernel executor and the VM give the
    same verdict and output bytes on every packet, in order, and the same maps after."""
    vm, vm_maps = _results("vm", name, PACKETS)
    kernel, kernel_maps = _results("kernel", name, PACKETS)
    for i, (a, b) in enumerate(zip(vm, kernel, strict=True)):
        assert (a.verdict, a.packet_out) == (b.verdict, b.packet_out), f"packet {i}"
    for m, entries in kernel_maps["maps"].items():
        if m in vm_maps["maps"] and entries and "values" not in entries[0]:
            assert vm_maps["maps"][m] == entries, m


def test_vm_executor_returns_trace_and_redirect():
    """The VM backend returns the trace (map writes included) and the redirect target."""
    out, _ = _results("vm", "lpm_router", PACKETS[:400])
    redirected = [r for r in out if r.verdict == 4]
    assert redirected and all(r.redirect is not None for r in redirected)
    assert any(op.op == "lookup" for r in out for op in r.trace.map_ops)


def test_unknown_executor_is_one_clear_error():
    """An unknown backend name is an ExecutorError naming the choices."""
    path = str(corpus_object("xdp_pass"))
    with pytest.raises(ExecutorError,
                       match="expected one of auto, kernel, compiled, vm, got 'jit'"):
        open_executor("jit", path, load(path))


def test_auto_falls_back_to_the_vm(monkeypatch):
    """auto runs on the VM when the program does not compile and the kernel refuses it."""
    import ebpf.executor as mod
    from ebpf.compiled import CompiledUnsupported

    def refuse(*args, **kwargs):
        raise EbpfError("BPF_PROG_LOAD: Operation not permitted")

    def not_compiled(*args, **kwargs):
        raise CompiledUnsupported("not compiled")

    monkeypatch.setattr(mod, "KernelExecutor", refuse)
    monkeypatch.setattr(mod, "CompiledExecutor", not_compiled)
    path = str(corpus_object("xdp_drop"))
    with open_executor("auto", path, load(path)) as ex:
        assert isinstance(ex, VmExecutor)
        assert ex.run(PACKETS[0]).verdict == 1
    with pytest.raises(EbpfError, match="not permitted"):
        open_executor("kernel", path, load(path))


# --- random programs on every backend ------------------------------------------------------

ALU = ["add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "mod", "xor", "mov", "arsh"]


def _random_body(draw) -> str:
    """Straight-line ALU on r0 (64- and 32-bit, register or immediate operands), a branch
    on r0, all over the two packet words the prologue loads (the verifier cannot fold)."""
    from hypothesis import strategies as st

    lines = []
    for _ in range(draw(st.integers(1, 8))):
        name, width = draw(st.sampled_from(ALU)), draw(st.sampled_from(["", "32"]))
        imm = st.integers(-(1 << 31), (1 << 31) - 1)
        if name in ("lsh", "rsh", "arsh"):  # the verifier refuses constant shifts >= width
            imm = st.integers(0, 31 if width else 63)
        elif name in ("div", "mod"):  # and constant division by zero
            imm = imm.filter(bool)
        src = draw(st.sampled_from(["%r6", "%r7"]) | imm.map(str))
        lines.append(f"{name}{width} %r0, {src}")
    lines.append(f"jsgt %r0, {draw(st.integers(-1000, 1000))}, big")
    return "\n".join(lines) + "\nja done\nbig:\nadd %r0, 1\ndone:"


def _random_case():
    from hypothesis import strategies as st

    @st.composite
    def case(draw):
        body = _random_body(draw)
        stream = draw(st.lists(st.tuples(st.integers(0, (1 << 64) - 1),
                                         st.integers(0, (1 << 64) - 1),
                                         st.integers(0, 40)), min_size=1, max_size=12))
        return body, stream
    return case()


@needs_bpf
def test_random_program_and_stream_equal_on_all_backends(tmp_path_factory):
    """A random program and packet stream give the same verdict and bytes per packet on
    every backend (the VM, the kernel, the compiled code, and auto)."""
    import shutil
    import struct

    from hypothesis import given, settings

    from ebpf.code.asm import assemble
    from tests.budget import examples
    from tests.ebpf.code.test_isa_kernel import EPILOGUE, PROLOGUE, elf_from_code

    if shutil.which("llvm-mc") is None:
        pytest.skip("llvm-mc not installed")

    @settings(max_examples=examples(25), deadline=None, database=None)
    @given(_random_case())
    def check(case):
        body, stream = case
        path = str(elf_from_code(tmp_path_factory.mktemp("rand"), "rand",
                                 assemble(PROLOGUE + body + EPILOGUE)))
        packets = [bytes(8) + struct.pack("<QQ", a, b) + bytes(tail) for a, b, tail in stream]
        outs = []
        for kind in ("vm", "kernel", "compiled", "auto"):
            with open_executor(kind, path, load(path)) as ex:
                outs.append([(r.verdict, r.packet_out) for r in ex.run_all(packets)])
        assert outs[0] == outs[1] == outs[2] == outs[3], body
    check()


# --- the compiled backend against the VM ----------------------------------------------------

def _states(name: str) -> dict[str, Scenario]:
    """The program's scenario, and the same with every map empty (routes and sizes kept)."""
    doc = json.loads((SCENARIOS / f"{name}.json").read_text())
    return {"scenario": Scenario.from_dict(doc),
            "empty": Scenario.from_dict({**doc, "maps": {}})}


def _observed(kind: str, name: str, state: Scenario, packets: list[bytes], seed: int, *,
              traces: bool = False):
    """Per packet what the backend returns, and the maps after. ``traces``: one ``run``
    per packet with the trace's instruction count, path and helper calls; else the
    stream at once (``iter_results``: the compiled backend's batches)."""
    path = str(corpus_object(name))
    times = [i * state.clock_step_ns for i in range(len(packets))]
    with open_executor(kind, path, load(path), None, state, seed=seed) as ex:
        assert ex.name == kind
        if traces:
            results = [ex.run(p, t) for p, t in zip(packets, times, strict=True)]
            out = [(r.verdict, r.packet_out, r.meta_len, r.redirect, r.trace.insns,
                    r.trace.path, [(h.name, h.args, h.ret) for h in r.trace.helper_calls])
                   for r in results]
        else:
            out = [(r.verdict, r.packet_out, r.meta_len, r.redirect)
                   for r in ex.iter_results(packets, times)]
        return out, ex.dump_maps()


@pytest.mark.parametrize("name", CORPUS_NAMES)
@pytest.mark.parametrize("seed,state", [(1, "scenario"), (2, "scenario"), (3, "empty")])
def test_compiled_equals_vm_on_the_corpus(name, seed, state):
    """10,000 packets per program, seed and map state, run as one stream (native batches):
    the compiled backend gives the VM's verdict, output bytes, metadata and redirect target
    on every packet, in order, and the VM's maps after (every map write)."""
    packets = random_packets(10_000, seed=seed)
    scenario = _states(name)[state]
    vm, vm_maps = _observed("vm", name, scenario, packets, seed)
    native, native_maps = _observed("compiled", name, scenario, packets, seed)
    for i, (a, b) in enumerate(zip(vm, native, strict=True)):
        assert a == b, f"packet {i}"
    assert native_maps == vm_maps


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_compiled_traces_equal_the_vm(name):
    """Packet by packet (``run``), the compiled backend's trace is the VM's: instruction
    count, basic-block path and helper calls (arguments and results), besides the result."""
    packets = random_packets(2000, seed=4)
    scenario = _states(name)["scenario"]
    vm, vm_maps = _observed("vm", name, scenario, packets, 4, traces=True)
    native, native_maps = _observed("compiled", name, scenario, packets, 4, traces=True)
    for i, (a, b) in enumerate(zip(vm, native, strict=True)):
        assert a == b, f"packet {i}"
    assert native_maps == vm_maps


def test_compiled_refusal_is_one_line(tmp_path):
    """`--executor compiled` on a program it does not compile (bpf_loop) is one line, exit
    status 2; auto runs it on another backend with the VM's result."""
    import shutil

    from ebpf.code.asm import assemble
    from tests.ebpf.code.test_isa_kernel import elf_from_code

    if shutil.which("llvm-mc") is None:
        pytest.skip("llvm-mc not installed")
    code = assemble("mov %r1, 0\nlddw %r2, 0\nmov %r3, 0\nmov %r4, 0\ncall 181\n"
                    "mov %r0, 2\nexit")
    path = str(elf_from_code(tmp_path, "loop", code))
    proc = offload("run", path, "--random", "3", "--executor", "compiled")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert "compiled executor cannot run it" in proc.stderr and "bpf_loop" in proc.stderr
    with open_executor("auto", path, load(path)) as ex:
        assert ex.name in ("kernel", "vm")
        assert ex.run(PACKETS[0]).verdict == 2


def _batch_paths_equal(name: str, program: str | None, seed: int, state: str,
                       monkeypatch) -> list:
    """``run_batch_paths`` on vm and compiled, a path log small enough that chunks stop and
    resume on it: each packet's result, steps, path and tail calls, and the maps after,
    equal; returns the compiled side's tail calls per packet."""
    from ebpf.compiled import batch

    monkeypatch.setattr(batch, "PLOG_WORDS", 3 * 4096)
    packets = random_packets(3000, seed=seed)
    scenario = _states(name)[state]
    times = [i * scenario.clock_step_ns for i in range(len(packets))]
    got = {}
    for kind in ("vm", "compiled"):
        path = str(corpus_object(name))
        with open_executor(kind, path, load(path), program, _states(name)[state],
                           seed=seed) as ex:
            cols, pc = ex.run_batch_paths(packets, times)
            got[kind] = ([(r.verdict, r.packet_out, r.meta_len, r.redirect) for r in cols],
                         [(int(s), pc.paths[k], pc.tail_calls[k])
                          for s, k in zip(pc.steps, pc.path_id, strict=True)],
                         ex.dump_maps())
    vm, native = got["vm"], got["compiled"]
    for i in range(len(packets)):
        assert (vm[0][i], vm[1][i]) == (native[0][i], native[1][i]), f"packet {i}"
    assert native[2] == vm[2]
    return [t for _s, _p, t in native[1]]


@pytest.mark.parametrize("name", CORPUS_NAMES)
@pytest.mark.parametrize("seed,state", [(1, "scenario"), (3, "empty")])
def test_compiled_batch_paths_equal_the_vm_traces(name, seed, state, monkeypatch):
    """``run_batch_paths`` on each corpus program's first program: per packet, the
    compiled batches' instruction count, basic-block path and tail calls are the VM's
    trace's (run one packet at a time), with the VM's results and maps after."""
    _batch_paths_equal(name, None, seed, state, monkeypatch)


@pytest.mark.parametrize("seed", [1, 2])
def test_compiled_batch_paths_follow_tail_calls(seed, monkeypatch):
    """tail_call.o's dispatcher in batches: every packet's path across the programs it
    tail-called into, its steps and its tail calls (taken to xdp_tcp / xdp_udp, or
    falling through on an empty slot) are the VM's trace's; both kinds occur."""
    tails = _batch_paths_equal("tail_call", "xdp_dispatch", seed, "scenario", monkeypatch)
    targets = {t[0][3] for t in tails if t}
    assert {"xdp_tcp", "xdp_udp", None} <= targets
