"""`offload run`, `offload kernel` and `offload diff` from the command line."""

from __future__ import annotations

import json

import pytest

from sim.packets import random_packets
from sim.pcap import read_pcap, write_pcap
from tests.conftest import corpus_object
from tests.offload.test_cli import offload

needs_kernel = pytest.mark.kernel  # skips, or fails under REQUIRE_BPF=1 (tests/conftest.py)


@pytest.fixture
def pcap(tmp_path):
    path = tmp_path / "in.pcap"
    write_pcap(path, random_packets(40, seed=2))
    return path


def test_run_writes_output_pcap(tmp_path, pcap):
    """run on xdp_tx writes every packet with its MACs swapped."""
    out = tmp_path / "out.pcap"
    proc = offload("run", str(corpus_object("xdp_tx")), "--pcap", str(pcap), "--out", str(out),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["packets"] == 40 and doc["verdicts"] == {"XDP_TX": 40}
    for before, after in zip(read_pcap(pcap), read_pcap(out), strict=True):
        assert after.data == before.data[6:12] + before.data[0:6] + before.data[12:]


def test_run_trace_in_json(pcap):
    """run --json carries each packet's trace (path, instructions, map operations)."""
    doc = json.loads(offload("run", str(corpus_object("parser_counters")), "--pcap", str(pcap),
                             "--json", check=True).stdout)
    trace = doc["results"][0]["trace"]
    assert trace["insns"] > 0 and trace["path"] and trace["map_ops"]
    assert "proto_stats" in doc["maps"]


@needs_kernel
def test_kernel_reports_timing(pcap):
    """kernel --repeat reports the kernel's ns per packet and the JIT size."""
    doc = json.loads(offload("kernel", str(corpus_object("xdp_drop")), "--pcap", str(pcap),
                             "--repeat", "50", "--json", check=True).stdout)
    assert doc["verdicts"] == {"XDP_DROP": 40}
    assert doc["ns_per_packet"] > 0 and doc["jited_bytes"] > 0


@needs_kernel
def test_kernel_repeat_runs_on_fresh_copies(tmp_path):
    """kernel --repeat 5 on adjust_tail truncates a fresh copy every run: each of the 3 long
    frames is counted 5 times (a re-used buffer would be 128 B after the first run, passed
    uncounted), and every output is the truncated 128 B frame."""
    path = tmp_path / "long.pcap"
    write_pcap(path, [bytes(14) + bytes([i]) * 186 for i in range(3)])
    doc = json.loads(offload("kernel", str(corpus_object("adjust_tail")), "--pcap", str(path),
                             "--repeat", "5", "--json", check=True).stdout)
    assert doc["verdicts"] == {"XDP_PASS": 3}
    assert [r["len_out"] for r in doc["results"]] == [128, 128, 128]
    (entry,) = doc["maps"]["trunc_stats"]
    assert int.from_bytes(bytes.fromhex(entry["value"]), "little") == 3 * 5


@needs_kernel
def test_diff_agrees(pcap):
    """diff of the VM and the kernel on icmp_echo finds no mismatch and exits 0."""
    proc = offload("diff", str(corpus_object("icmp_echo")), "--random", "200", "--seed", "1",
                   "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["packets"], doc["mismatches"]) == (200, 0)


@pytest.mark.parametrize("args,needle", [
    (["run", "{obj}", "--pcap", "{bad}"], "not a readable pcap"),
    (["run", "{obj}", "--pcap", "{pcap}", "--maps", "{badstate}"], "badstate.json"),
    (["run", "{obj}", "--pcap", "{pcap}", "--program", "nope"], "no program named 'nope'"),
    (["diff", "{obj}", "--random", "3", "--maps", "{unknown_map}"], "no such map"),
])
def test_bad_input_one_line(tmp_path, pcap, args, needle):
    """Malformed pcap, state file or program name: one line, exit 2."""
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 40)
    badstate = tmp_path / "badstate.json"
    badstate.write_text("{not json")
    unknown_map = tmp_path / "unknown.json"
    unknown_map.write_text(json.dumps({"maps": {"nope": []}}))
    values = {"obj": str(corpus_object("firewall")), "bad": str(bad), "pcap": str(pcap),
              "badstate": str(badstate), "unknown_map": str(unknown_map)}
    proc = offload(*[a.format(**values) for a in args])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_vm_fault_one_line(tmp_path):
    """A wild packet read on the VM is one line naming the instruction and the C line."""
    from tests.conftest import compile_bpf

    obj = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp")
int peek(struct xdp_md *ctx)
{
    unsigned char *data = (void *)(long)ctx->data;
    return data[5000] ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
""", name="wild")
    proc = offload("run", str(obj), "--random", "3")
    assert proc.returncode == 2
    line, = proc.stderr.strip().splitlines()
    assert "packet 0" in line and "insn" in line and "wild.c:7" in line, line


def test_unknown_helper_one_line(tmp_path):
    """A helper the VM does not implement is named by id and name."""
    from tests.conftest import compile_bpf

    obj = compile_bpf(tmp_path, """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp")
int f(struct xdp_md *ctx)
{
    return bpf_get_current_pid_tgid() ? XDP_DROP : XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
""", name="unk")
    proc = offload("run", str(obj), "--random", "1")
    assert proc.returncode == 2
    line, = proc.stderr.strip().splitlines()
    assert "get_current_pid_tgid" in line and "14" in line, line


@needs_kernel
def test_run_on_the_kernel_executor(tmp_path, pcap):
    """run --executor kernel gives the VM's verdicts, output packets and final maps on a
    stateful, clock-reading program, and names its executor."""
    out = {}
    for kind in ("vm", "kernel"):
        dst = tmp_path / f"{kind}.pcap"
        doc = json.loads(offload("run", str(corpus_object("rate_limiter")), "--pcap",
                                 str(pcap), "--executor", kind, "--out", str(dst), "--json",
                                 check=True).stdout)
        assert doc["executor"] == kind and doc["clock_injected"]
        out[kind] = (doc["verdicts"], [r["verdict"] for r in doc["results"]], doc["maps"],
                     [p.data for p in read_pcap(dst)])
    assert out["vm"] == out["kernel"]


def test_run_on_the_compiled_executor(tmp_path, pcap):
    """run --executor compiled (text output: native batches) writes the VM's output
    packets and names its executor; with --json it gives the VM's verdicts and maps."""
    prog = str(corpus_object("rate_limiter"))
    vm_out, cc_out = tmp_path / "vm.pcap", tmp_path / "cc.pcap"
    vm = json.loads(offload("run", prog, "--pcap", str(pcap), "--executor", "vm", "--out",
                            str(vm_out), "--json", check=True).stdout)
    text = offload("run", prog, "--pcap", str(pcap), "--executor", "compiled", "--out",
                   str(cc_out), check=True).stdout
    assert "packets on the compiled code" in text
    assert [p.data for p in read_pcap(cc_out)] == [p.data for p in read_pcap(vm_out)]
    cc = json.loads(offload("run", prog, "--pcap", str(pcap), "--executor", "compiled",
                            "--json", check=True).stdout)
    assert cc["executor"] == "compiled"
    assert (cc["verdicts"], cc["maps"]) == (vm["verdicts"], vm["maps"])
    assert [r["verdict"] for r in cc["results"]] == [r["verdict"] for r in vm["results"]]
